"""`nova pager serve` over HTTP: the webhook endpoint, health, recent pages, problems, the command line."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from alerts.pager.dedup import PageLedger
from alerts.pager.delivery import FileDestination
from alerts.pager.page import PageSources
from alerts.pager.receiver import Pager, PagerServer
from nova.pager_cli import pager_app
from tests.alerts.pager.conftest import LoopbackServer, payload, running_pager

PROBLEM_KEYS = {"type", "title", "status", "detail", "code"}


@pytest.fixture
def pager_url(tmp_path: Path) -> Iterator[str]:
    pager = Pager(PageSources(), [FileDestination(tmp_path / "pages.md")], PageLedger(tmp_path / "state.json"))
    server = PagerServer(("127.0.0.1", 0), pager)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_webhook_is_answered_with_what_the_pager_did(pager_url: str, tmp_path: Path) -> None:
    first = httpx.post(f"{pager_url}/alerts", content=payload("availability-page-firing"))
    second = httpx.post(f"{pager_url}/alerts", content=payload("availability-page-firing"))

    assert (first.status_code, first.json()["event"], first.json()["delivered"]) == (
        200,
        "trigger",
        [f"file:{tmp_path / 'pages.md'}"],
    )
    assert (second.status_code, second.json()["event"], second.json()["reason"]) == (200, None, "already paged")
    assert (tmp_path / "pages.md").read_text().count("# [PAGE] FIRING") == 1


def test_recent_pages_are_listed_as_json(pager_url: str) -> None:
    httpx.post(f"{pager_url}/alerts", content=payload("availability-page-firing"))

    pages = httpx.get(f"{pager_url}/pages").json()["pages"]

    assert [page["headline"].split(":")[0] for page in pages] == ["[PAGE] FIRING PaymentsAvailabilityBurn"]


def test_health_is_ok(pager_url: str) -> None:
    assert httpx.get(f"{pager_url}/healthz").json() == {"status": "ok"}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "invalid_json"),
        (b'{"version": "3", "status": "firing", "alerts": []}', "unsupported_version"),
        (b'{"version": "4", "status": "firing", "alerts": [], "groupKey": "{}:{}"}', "invalid_payload"),
    ],
)
def test_a_bad_payload_is_a_400_problem(pager_url: str, body: bytes, code: str) -> None:
    response = httpx.post(f"{pager_url}/alerts", content=body)

    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem.keys() >= PROBLEM_KEYS
    assert (problem["status"], problem["code"]) == (400, code)


def test_an_unknown_path_is_a_404_problem(pager_url: str) -> None:
    response = httpx.post(f"{pager_url}/api/v1/alerts", content=b"{}")

    assert (response.status_code, response.json()["code"]) == (404, "not_found")


def test_a_failed_delivery_is_a_503_so_alertmanager_retries(tmp_path: Path) -> None:
    (tmp_path / "blocked").write_text("a file where the pages folder should be")
    pager = Pager(PageSources(), [FileDestination(tmp_path / "blocked" / "pages.md")], PageLedger(None))
    server = PagerServer(("127.0.0.1", 0), pager)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        response = httpx.post(
            f"http://127.0.0.1:{server.server_address[1]}/alerts", content=payload("availability-page-firing")
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join()

    assert (response.status_code, response.json()["code"]) == (503, "delivery_failed")


runner = CliRunner()


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        (["--listen", "9095"], "--listen '9095': expected HOST:PORT"),
        (["--listen", "127.0.0.1:http"], "expected HOST:PORT"),
        (["--deliver", "email:ops@example.com"], "expected stdout, file:PATH, jsonl:PATH or webhook:URL"),
        (["--deliver", "stdout", "--deliver", "stdout"], "stdout given twice"),
        (["--pagerduty-routing-key-env", "NOVA_TEST_UNSET_KEY"], "$NOVA_TEST_UNSET_KEY is not set or empty"),
        (["--prometheus", "prometheus:9090"], "is not an http:// or https:// URL"),
        (["--traces", "/nonexistent/traces"], "--traces /nonexistent/traces: not a folder"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(arguments: list[str], reason: str, tmp_path: Path) -> None:
    result = runner.invoke(pager_app, ["serve", f"--data-dir={tmp_path}", *arguments])

    assert result.exit_code == 2
    assert reason in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_state_file_that_is_not_the_pagers_exits_2(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text("[]")

    result = runner.invoke(pager_app, ["serve", f"--state={tmp_path / 'state.json'}"])

    assert result.exit_code == 2
    assert "not a pager state file" in result.output


def test_the_served_pager_pages_pagerduty_without_logging_the_key_and_stops_on_sigterm(
    tmp_path: Path, webhook: LoopbackServer
) -> None:
    key = "pd-key-from-env-SECRET-9f3a"
    with running_pager(
        tmp_path,
        f"--deliver=file:{tmp_path / 'pages.md'}",
        "--deliver=stdout",
        "--pagerduty-routing-key-env=PAGER_TEST_ROUTING_KEY",
        f"--pagerduty-url={webhook.url}/v2/enqueue",
        env={"PAGER_TEST_ROUTING_KEY": key},
    ) as (url, process):
        answer = httpx.post(
            f"{url}/alerts",
            content=payload("availability-page-firing"),
            headers={"Authorization": "Bearer alertmanager-SECRET-token"},
        )
        process.popen.send_signal(signal.SIGTERM)
        code = process.popen.wait(timeout=10)

    assert answer.status_code == 200
    assert code == 0
    assert webhook.requests[0].json()["routing_key"] == key
    log = (tmp_path / "pager.log").read_text()
    assert "# [PAGE] FIRING PaymentsAvailabilityBurn" in log  # the stdout destination
    assert "pager stopped" in log
    assert key not in log
    assert "alertmanager-SECRET-token" not in log
    assert (tmp_path / "data" / "pager-state.json").is_file()
