"""How `nova load` starts Locust: the locustfile's contract, and the admin token kept off the command line."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest

from loadtests.gate import Thresholds
from loadtests.locust_process import LOCUSTFILE, LocustError, LocustRun, collect
from loadtests.results import RunParameters, read_summary
from loadtests.samples import RequestSample, ServiceSample, write_samples, write_service_samples

RUN = RunParameters("market_open", 50, 60.0, 1.5, "payments", 1, "http://127.0.0.1:8001", "http://127.0.0.1:8002")
TOKEN = "secret-admin-token-0123456789"


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_the_command_follows_the_locustfile_contract(tmp_path: Path) -> None:
    command = LocustRun(RUN, tmp_path, TOKEN).command()
    assert command[:5] == [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE)]
    assert "--headless" in command
    assert option(command, "--host") == "http://127.0.0.1:8001"
    assert option(command, "--portfolio-url") == "http://127.0.0.1:8002"
    assert option(command, "--shape") == "market_open"
    assert option(command, "--peak-users") == "50"
    assert option(command, "--duration") == "60"
    assert option(command, "--user-rate") == "1.5"
    assert option(command, "--mix") == "payments"
    assert option(command, "--nova-results") == str(tmp_path)
    assert "--processes" not in command


def test_the_admin_token_goes_in_the_environment_only(tmp_path: Path) -> None:
    spec = LocustRun(RUN, tmp_path, TOKEN)
    assert all(TOKEN not in part for part in spec.command())
    assert spec.environment()["NOVA_ADMIN_TOKEN"] == TOKEN


def test_local_processes_get_a_private_loopback_master_port(tmp_path: Path) -> None:
    command = LocustRun(replace(RUN, processes=2), tmp_path, TOKEN).command()
    assert option(command, "--processes") == "2"
    assert option(command, "--master-bind-host") == "127.0.0.1"
    assert option(command, "--master-bind-port") == option(command, "--master-port") != "5557"


def test_the_web_ui_stays_on_loopback_and_is_not_headless(tmp_path: Path) -> None:
    command = LocustRun(RUN, tmp_path, TOKEN, web=True).command()
    assert "--headless" not in command
    assert option(command, "--web-host") == "127.0.0.1"


def test_collect_judges_the_samples_and_writes_the_results(tmp_path: Path) -> None:
    samples = [RequestSample(1000.0 + i * 0.1, "POST /v1/payments", 201, 20.0 + i % 7, 1) for i in range(300)]
    write_samples(tmp_path / "samples.csv", samples)
    write_service_samples(tmp_path / "services.csv", [ServiceSample(1010.0, "payments", 0.5, 0.25)])
    summary, files = collect(LocustRun(RUN, tmp_path, TOKEN), Thresholds(), 1)
    assert summary.passed and summary.gate.overall.requests == 300
    assert read_summary(files.summary) == summary
    assert (files.scenario / "metrics.csv").is_file()


def test_collect_after_a_warm_up_judges_only_what_came_later(tmp_path: Path) -> None:
    slow_start = [RequestSample(1000.0 + i * 0.1, "GET /v1/quotes/{symbol}", 200, 900.0, 1) for i in range(20)]
    steady = [RequestSample(1003.0 + i * 0.1, "GET /v1/quotes/{symbol}", 200, 9.0, 1) for i in range(100)]
    write_samples(tmp_path / "samples.csv", slow_start + steady)
    summary, _files = collect(LocustRun(RUN, tmp_path, TOKEN), Thresholds(), 0, warmup_seconds=3.0)
    assert summary.passed and summary.gate.overall.requests == 100
    assert (
        sum(int(line.split(",")[1]) for line in (tmp_path / "scenario" / "metrics.csv").read_text().split()[1:]) == 120
    )


def test_no_samples_file_is_an_error_naming_the_log(tmp_path: Path) -> None:
    (tmp_path / "locust.log").write_text("Traceback...\nValueError: unknown mix\n")
    with pytest.raises(LocustError, match=r"without writing .*samples\.csv .*unknown mix"):
        collect(LocustRun(RUN, tmp_path, TOKEN), Thresholds(), 1)
