"""`nova gameday` end to end: the real platform, Locust, `chaos run`, Prometheus and Alertmanager.

The quick game day runs once per database (module fixtures) and each test asserts one claim of
its report: what issue 6 requires a game day to prove, judged from the files it wrote.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from chaos.gameday_plan import QUICK_EXPERIMENTS
from tests.chaos.conftest import REPO
from tests.chaos.test_postmortem import clock, timeline_rows
from tests.conftest import new_postgres_database

GAMEDAY_TIMEOUT_SECONDS = 400
CI_RATE = 100.0


@dataclass
class Run:
    out: Path
    returncode: int
    output: str
    seen_pids: set[int] = field(default_factory=set)

    @property
    def report(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads((self.out / "report.json").read_text())
        return document

    def phase(self, name: str) -> dict[str, Any]:
        return next(phase for phase in self.report["phases"] if phase["name"] == name)

    def check(self, phase: str, name: str) -> dict[str, Any]:
        return next(check for check in self.phase(phase)["checks"] if check["name"] == name)


def descendants(root: int) -> set[int]:
    """Every live process whose parent chain leads to `root`."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {root}
    while frontier:
        children = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= children
        frontier = children
    return found


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for a parent that never reaps it, and not the database server.

    A PostgreSQL game day starts the stopped server again (`pg_ctlcluster start`): the server is
    meant to outlive the game day, and may be seen under it before it detaches.
    """
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        executable = os.readlink(f"/proc/{pid}/exe")  # the server's backends too: their command lines are renamed
    except OSError:
        return False
    return state != "Z" and "/postgresql/" not in executable


def start_gameday(out: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "nova", "gameday", "--out", str(out), *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def run_gameday(out: Path, *args: str) -> Run:
    """Run a game day to its end, noting every process it started on the way."""
    process = start_gameday(out, *args)
    seen: set[int] = set()
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.5):
            seen.update(descendants(process.pid))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        output, _ = process.communicate(timeout=GAMEDAY_TIMEOUT_SECONDS)
    finally:
        done.set()
        watcher.join()
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    return Run(out, process.returncode, output, seen)


@pytest.fixture(scope="module")
def sqlite_gameday(tmp_path_factory: pytest.TempPathFactory) -> Run:
    # An open-model rate every 2-core CI machine holds: on one whose CPython runs 3x slower than the
    # machine the suite was built on, 250 requests/s is past capacity, and after the outage the
    # clients' retries kept it failing for 17 s. These tests are about the phases, the evidence and
    # the pages; the peak itself is `make gameday`'s (its default, 250, is tested in test_gameday_load).
    return run_gameday(tmp_path_factory.mktemp("gameday") / "sqlite", "--quick", "--rate", str(CI_RATE))


@pytest.fixture(scope="module")
def postgres_gameday(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    with new_postgres_database() as payments, new_postgres_database() as portfolio:
        out = tmp_path_factory.mktemp("gameday") / "postgres"
        # Closed-model users (--rate 0): PostgreSQL, Prometheus, Alertmanager, the pager and Locust on two
        # cores do not hold 250 requests/s through a worker kill (85% after retries in one CI run), and
        # these tests are about the real outage and the pages, not the peak (the SQLite run covers that).
        yield run_gameday(out, "--quick", "--rate", "0", "--payments-db", payments, "--portfolio-db", portfolio)


# -- the quick game day on SQLite --------------------------------------------------------------------


def test_the_quick_game_day_runs_every_phase_and_writes_its_report(sqlite_gameday: Run) -> None:
    assert sqlite_gameday.returncode in (0, 1), sqlite_gameday.output
    report = sqlite_gameday.report
    assert [phase["name"] for phase in report["phases"]] == ["baseline", *QUICK_EXPERIMENTS]
    assert report["ended"] - report["started"] < 240, "--quick must finish within 4 minutes (issue 12's limit)"
    for name in ("report.html", "report.md", "scenario/metrics.csv", "scenario/incidents.json"):
        assert (sqlite_gameday.out / name).is_file(), name
    for experiment in QUICK_EXPERIMENTS:
        assert (sqlite_gameday.out / "journals" / f"{experiment}.json").is_file()


def test_the_flaky_network_goes_through_the_fault_proxy_and_loses_nothing(sqlite_gameday: Run) -> None:
    phase = sqlite_gameday.phase("payments-flaky-network")
    assert phase["fault_kind"] == "network proxy" and phase["fault"] is not None
    assert sqlite_gameday.phase("payments-error-burn")["fault_kind"] == "in-app flag"
    journal = json.loads((sqlite_gameday.out / "journals" / "payments-flaky-network.json").read_text())
    toxics = [run for run in journal["run"] if run["activity"]["provider"]["module"] == "chaostoxi.toxic.actions"]
    assert len(toxics) == 6 and all(run["output"] is True for run in toxics)
    assert sqlite_gameday.check("payments-flaky-network", "no acknowledged payment lost or duplicated")["passed"]


def test_every_phase_offers_the_rate_asked_and_reports_what_it_achieved(sqlite_gameday: Run) -> None:
    """The quick game day offers `--rate` requests/s (open model) in every phase and says what was sent."""
    report = sqlite_gameday.report
    assert report["load_plan"]["rate"] == CI_RATE
    for phase in report["phases"]:
        load = phase["load"]
        assert load is not None, phase["name"]
        assert load["offered_rps"] >= 0.9 * CI_RATE, phase["name"]
        assert load["achieved_rps"] >= 0.9 * load["offered_rps"], (phase["name"], load)
        assert load["p99_corrected_ms"] >= load["p99_ms"], phase["name"]
        if phase["fault"] is not None:
            assert isinstance(phase["detection"], dict) and "recovery" in phase and "aborted" in phase


def test_a_worker_kill_keeps_availability_after_retries_and_loses_nothing(sqlite_gameday: Run) -> None:
    phase = sqlite_gameday.phase("worker-kill-under-load")
    assert phase["load"]["availability_after_retries"] >= 0.9999
    audit = phase["load"]["audit"]
    assert audit["passed"] and audit["payments_acknowledged"] > 0
    # every payer's balance is checked; the lookups are all payments or, at peak, a uniform sample of them
    assert audit["payments_confirmed"] == audit["payments_looked_up"] > 0 and audit["accounts_checked"] > 0
    assert sqlite_gameday.check("worker-kill-under-load", "no acknowledged payment lost or duplicated")["passed"]


def test_a_database_outage_answers_503_with_retry_after(sqlite_gameday: Run) -> None:
    check = sqlite_gameday.check("db-outage", "writes during the outage got 503 with Retry-After")
    assert check["passed"], check["detail"]
    assert sqlite_gameday.phase("db-outage")["load"]["statuses"].get("503", 0) > 0


def test_a_database_outage_loses_and_duplicates_nothing(sqlite_gameday: Run) -> None:
    audit = sqlite_gameday.phase("db-outage")["load"]["audit"]
    assert audit["passed"] and not audit["lost"] and not audit["balance_mismatches"]
    assert audit["payments_confirmed"] == audit["payments_looked_up"] > 0 and audit["accounts_checked"] > 0
    assert sqlite_gameday.phase("db-outage")["ledger"]["balanced"]


def test_the_platform_serves_again_within_5_s_of_the_database_returning(sqlite_gameday: Run) -> None:
    phase = sqlite_gameday.phase("db-outage")
    assert phase["recovery_seconds"] is not None and phase["recovery_seconds"] <= 5.0


def test_the_burn_rate_page_fires_during_sustained_errors(sqlite_gameday: Run) -> None:
    phase = sqlite_gameday.phase("payments-error-burn")
    pages = [a for a in phase["alerts"] if a["severity"] == "page" and a["sloth_id"] == "payments-availability"]
    assert pages, phase["alerts"]
    assert phase["fault"]["start"] <= pages[0]["start"] <= phase["fault"]["end"] + 60
    assert pages[0]["delay_seconds"] > 0


def test_no_page_fires_during_the_baseline(sqlite_gameday: Run) -> None:
    baseline = sqlite_gameday.phase("baseline")
    assert not [a for a in baseline["alerts"] if a["severity"] == "page"]
    assert baseline["load"]["requests"] > 0


def test_alertmanager_delivers_the_page_when_it_is_installed(sqlite_gameday: Run) -> None:
    if sqlite_gameday.report["monitoring"] != "prometheus+alertmanager":
        pytest.skip("Alertmanager is not installed here")
    pages = [a for a in sqlite_gameday.phase("payments-error-burn")["alerts"] if a["severity"] == "page"]
    assert any(a["notified_at"] is not None for a in pages)


def test_pages_go_through_the_real_alertmanager_and_pager_after_the_fault_starts(sqlite_gameday: Run) -> None:
    if sqlite_gameday.report["monitoring"] != "prometheus+alertmanager":
        pytest.skip("Alertmanager is not installed here")
    config = (sqlite_gameday.out / "monitoring" / "alertmanager.yml").read_text()
    pager_log = (sqlite_gameday.out / "pager" / "pager.log").read_text()
    port = re.search(r"pager listening on http://127\.0\.0\.1:(\d+)/alerts", pager_log)
    assert port and f"http://127.0.0.1:{port[1]}/alerts" in config, "Alertmanager routes to the pager it started"
    phase = sqlite_gameday.phase("payments-error-burn")
    pages = [p for p in phase["pages"] if p["event"] == "trigger" and p["alert"] == "PaymentsAvailabilityBurn"]
    assert pages, phase["pages"]
    for page in pages:
        assert page["delivered_at"] > phase["fault"]["start"] and page["seconds_after_fault"] > 0
        assert page["text"].startswith(f"# [{page['severity'].upper()}] FIRING PaymentsAvailabilityBurn")
        assert page["text"] in (sqlite_gameday.out / "pager" / "pages.md").read_text()
        event = page["pagerduty"]  # what the pager posted to the loopback PagerDuty Events API v2
        assert event["event_action"] == "trigger" and event["dedup_key"] == page["dedup_key"]
        assert event["payload"]["class"] == "PaymentsAvailabilityBurn"
    state = json.loads((sqlite_gameday.out / phase["pager_state"]).read_text())
    assert pages[0]["dedup_key"] in state["groups"]


def test_each_experiment_s_paging_runbook_named_the_injected_cause(sqlite_gameday: Run) -> None:
    if sqlite_gameday.report["monitoring"] != "prometheus+alertmanager":
        pytest.skip("Alertmanager is not installed here")
    causes = {"payments-error-burn": "error_rate", "db-outage": "database_unavailable"}
    for name, cause in causes.items():
        phase = sqlite_gameday.phase(name)
        assert phase["cause"] == cause
        # A page still firing from the error burn is not paged again in the outage: it may page nothing new.
        paging = [d for d in phase["diagnosis"] if d["severity"] == "page"]
        for diagnosis in paging:
            assert diagnosis["verdict"] == "right", (name, diagnosis)
            assert 0 < diagnosis["seconds_to_cause"] < 90
            assert (sqlite_gameday.out / diagnosis["output"]).is_file()
        if paging:
            check = sqlite_gameday.check(name, f"every paging runbook named the injected cause ({cause})")
            assert check["passed"], check["detail"]
    burn = sqlite_gameday.phase("payments-error-burn")["diagnosis"]
    assert ("PaymentsAvailabilityBurn", "page", "right") in {(d["alert"], d["severity"], d["verdict"]) for d in burn}


def test_each_fault_phase_has_a_postmortem_whose_figures_are_the_report_s(sqlite_gameday: Run) -> None:
    for name in QUICK_EXPERIMENTS:
        phase = sqlite_gameday.phase(name)
        assert phase["postmortem"] == f"postmortems/{name}.md"
        text = (sqlite_gameday.out / phase["postmortem"]).read_text()
        assert f'href="{phase["postmortem"]}"' in (sqlite_gameday.out / "report.html").read_text()
        rows = timeline_rows(text)
        assert rows[0][2].startswith("Fault start") and rows[0][1] == 0.0
        assert [offset for _, offset, _ in rows] == sorted(offset for _, offset, _ in rows)
        fault = phase["fault"]
        mitigation = next(row for row in rows if row[2].startswith("Mitigation"))
        assert mitigation[0] == clock(fault["end"])
        assert mitigation[1] == round(fault["end"] - fault["start"], 1)
        triggers = sorted(p["delivered_at"] for p in phase["pages"] if p["event"] == "trigger")
        if triggers:
            first = next(row for row in rows if row[2].startswith("First page delivered"))
            assert first[0] == clock(triggers[0])
        assert f"time to recover {phase['recovery_seconds']:.1f} s" in text
        load = phase["load"]
        assert f"{load['failures']} of {load['requests']} attempts failed" in text


def test_the_scenario_labels_one_incident_per_fault_window(sqlite_gameday: Run) -> None:
    incidents = json.loads((sqlite_gameday.out / "scenario" / "incidents.json").read_text())["incidents"]
    assert [incident["kind"] for incident in incidents] == list(QUICK_EXPERIMENTS)
    for incident in incidents:
        fault = sqlite_gameday.phase(incident["kind"])["fault"]
        assert incident["start"] == round(fault["start"]) and incident["end"] >= round(fault["end"])
    rows = (sqlite_gameday.out / "scenario" / "metrics.csv").read_text().splitlines()
    assert rows[0] == "timestamp,requests,errors,slow,p99_ms,cpu,db_pool"
    timestamps = [int(row.split(",")[0]) for row in rows[1:]]
    assert all(b - a == 15 for a, b in pairwise(timestamps))


def test_every_process_the_game_day_started_is_gone(sqlite_gameday: Run) -> None:
    assert sqlite_gameday.seen_pids, "the watcher saw no child process"
    assert not [pid for pid in sqlite_gameday.seen_pids if alive(pid)]


def test_no_secret_reaches_the_report_folder(sqlite_gameday: Run) -> None:
    for path in sqlite_gameday.out.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".log", ".md", ".html", ".csv", ".jsonl", ".yml"):
            text = path.read_text(errors="replace")
            assert "Bearer " not in text and "authorization" not in text.lower(), path
    assert not (sqlite_gameday.out / "platform" / "admin-token").exists()


# -- PostgreSQL --------------------------------------------------------------------------------------


@pytest.mark.postgres
def test_a_postgresql_game_day_survives_a_real_server_outage(postgres_gameday: Run) -> None:
    assert postgres_gameday.report["database"] == "postgresql", postgres_gameday.output
    outage = postgres_gameday.phase("db-outage")
    stopped = [probe for probe in outage["checks"] if probe["name"].startswith("writes during the outage")]
    assert stopped and stopped[0]["passed"], stopped
    assert outage["load"]["audit"]["passed"] and outage["ledger"]["balanced"]
    assert outage["recovery_seconds"] is not None and outage["recovery_seconds"] <= 5.0
    journal = json.loads((postgres_gameday.out / "journals" / "db-outage.json").read_text())
    stop = next(run for run in journal["run"] if run["activity"]["provider"]["func"] == "stop_database")
    assert stop["output"]["database"] == "postgresql" and stop["output"]["command"][-1] == "stop"


@pytest.mark.postgres
def test_a_postgresql_game_day_keeps_worker_kills_invisible_and_pages_on_errors(postgres_gameday: Run) -> None:
    assert postgres_gameday.phase("worker-kill-under-load")["load"]["availability_after_retries"] >= 0.9999
    assert postgres_gameday.check("payments-error-burn", "the payments availability page fired during the fault")[
        "passed"
    ]
    assert not [pid for pid in postgres_gameday.seen_pids if alive(pid)]


# -- Ctrl-C ------------------------------------------------------------------------------------------


def test_ctrl_c_during_a_fault_leaves_no_process_and_no_fault(tmp_path: Path) -> None:
    out = tmp_path / "interrupted"
    process = start_gameday(out, "--quick", "--experiments", "payments-error-burn")
    fault_file = out / "platform" / "faults" / "payments.json"
    seen: set[int] = set()
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and process.poll() is None:
            seen |= descendants(process.pid)
            if fault_file.exists() and json.loads(fault_file.read_text() or "{}").get("faults"):
                break
            time.sleep(0.2)
        assert fault_file.exists(), "the experiment never injected its fault"
        seen |= descendants(process.pid)
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, output
    assert "interrupted" in output.splitlines()[-1]
    assert not [pid for pid in seen if alive(pid)]
    for service in ("payments", "portfolio"):
        left = out / "platform" / "faults" / f"{service}.json"
        assert not left.exists() or not json.loads(left.read_text())["faults"], left.read_text()
    report = json.loads((out / "report.json").read_text())
    assert report["interrupted"] is True
    assert [phase["name"] for phase in report["phases"]][:1] == ["baseline"]  # what ran is still reported


def test_an_unknown_experiment_is_one_line_and_starts_nothing(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "nova", "gameday", "--experiments", "no-such-thing", "--out", str(tmp_path / "x")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "no such experiment: no-such-thing" in done.stderr
    assert not (tmp_path / "x").exists()
