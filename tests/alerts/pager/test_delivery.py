"""Delivering pages: stdout, a file, a loopback webhook, a loopback PagerDuty; and no secret anywhere."""

from __future__ import annotations

import io
import json
import logging
import time
from pathlib import Path

import pytest

from alerts.pager.dedup import PageLedger
from alerts.pager.delivery import (
    FileDestination,
    JsonLinesDestination,
    PagerDutyDestination,
    StreamDestination,
    WebhookDestination,
    parse_destination,
    safe_url,
)
from alerts.pager.errors import DeliveryError, PagerError
from alerts.pager.page import Page, PageSources, build_page
from alerts.pager.receiver import Pager
from tests.alerts.pager.conftest import LoopbackServer, notification, payload

ROUTING_KEY = "pd-routing-key-SECRET-4b1d"


def _firing_page() -> Page:
    return build_page(notification("availability-page-firing"), PageSources())


def test_pages_are_appended_to_a_file_as_markdown(tmp_path: Path) -> None:
    destination = FileDestination(tmp_path / "pages" / "on-call.md")

    destination.deliver(_firing_page())
    destination.deliver(build_page(notification("availability-page-resolved"), PageSources()))

    text = (tmp_path / "pages" / "on-call.md").read_text()
    assert text.index("# [PAGE] FIRING PaymentsAvailabilityBurn") < text.index("# [PAGE] RESOLVED")


def test_pages_are_appended_to_a_file_as_json_lines_with_their_delivery_time(tmp_path: Path) -> None:
    destination = JsonLinesDestination(tmp_path / "pages.jsonl")
    before = time.time()

    destination.deliver(_firing_page())
    destination.deliver(build_page(notification("availability-page-resolved"), PageSources()))

    first, second = (json.loads(line) for line in (tmp_path / "pages.jsonl").read_text().splitlines())
    assert [first["event"], second["event"]] == ["trigger", "resolve"]
    assert before <= first["delivered_at"] <= second["delivered_at"] <= time.time()
    assert first["text"].startswith("# [PAGE] FIRING PaymentsAvailabilityBurn")
    assert first["dedup_key"] == second["dedup_key"]
    assert isinstance(parse_destination(f"jsonl:{tmp_path / 'x.jsonl'}"), JsonLinesDestination)


def test_pages_are_written_to_a_stream() -> None:
    stream = io.StringIO()

    StreamDestination(stream).deliver(_firing_page())

    assert stream.getvalue().startswith("# [PAGE] FIRING PaymentsAvailabilityBurn")


def test_a_webhook_gets_the_page_as_json(webhook: LoopbackServer) -> None:
    WebhookDestination(f"{webhook.url}/hooks/on-call").deliver(_firing_page())

    (request,) = webhook.requests
    assert request.path == "/hooks/on-call"
    assert request.headers["Content-Type"] == "application/json"
    body = request.json()
    assert body["event"] == "trigger"
    assert body["alerts"][0]["runbook_url"] == "runbooks/payments-availability-page.md"
    assert body["text"].startswith("# [PAGE] FIRING")


def test_pagerduty_gets_a_trigger_then_a_resolve_with_one_dedup_key(webhook: LoopbackServer) -> None:
    pager = Pager(PageSources(), [PagerDutyDestination(ROUTING_KEY, f"{webhook.url}/v2/enqueue")], PageLedger(None))

    pager.receive(payload("availability-page-firing"))
    pager.receive(payload("availability-page-firing"))
    pager.receive(payload("availability-page-resolved"))

    events = [request.json() for request in webhook.requests]
    assert [event["event_action"] for event in events] == ["trigger", "resolve"]
    assert events[0]["dedup_key"] == events[1]["dedup_key"]
    assert {event["routing_key"] for event in events} == {ROUTING_KEY}
    assert {request.path for request in webhook.requests} == {"/v2/enqueue"}


def test_a_refusing_webhook_is_a_delivery_error_naming_the_status(webhook: LoopbackServer) -> None:
    webhook.respond = lambda _method, _path: (400, {"status": "invalid event"})

    with pytest.raises(DeliveryError, match=r"webhook:http://127\.0\.0\.1:\d+/hook: answered 400"):
        WebhookDestination(f"{webhook.url}/hook").deliver(_firing_page())


def test_an_unreachable_webhook_is_a_delivery_error_naming_it() -> None:
    with pytest.raises(DeliveryError, match=r"webhook:http://127\.0\.0\.1:1/"):
        WebhookDestination("http://127.0.0.1:1/").deliver(_firing_page())


def test_no_secret_reaches_logs_pages_state_or_error_messages(
    tmp_path: Path, webhook: LoopbackServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    file = FileDestination(tmp_path / "pages.md")
    secret_hook = WebhookDestination(f"http://user:hunter2@127.0.0.1:1/hook?token={ROUTING_KEY}")
    pager = Pager(
        PageSources(),
        [file, PagerDutyDestination(ROUTING_KEY, "http://127.0.0.1:1/v2/enqueue"), secret_hook],
        PageLedger(tmp_path / "state.json"),
    )

    outcome = pager.receive(payload("availability-page-firing"))

    assert len(outcome.failed) == 2  # both refused: nothing listens on port 1
    seen = "\n".join(
        [
            caplog.text,
            (tmp_path / "pages.md").read_text(),
            (tmp_path / "state.json").read_text(),
            repr(outcome),
            str(pager.recent_pages()),
        ]
    )
    assert ROUTING_KEY not in seen
    assert "hunter2" not in seen
    assert "webhook:http://127.0.0.1:1/hook" in seen


def test_safe_urls_drop_credentials_and_queries() -> None:
    assert safe_url("https://u:p@hooks.example:8443/x/y?token=t#f") == "https://hooks.example:8443/x/y"


@pytest.mark.parametrize("spec", ["email:ops@example.com", "file:", "webhook:ftp://x", "webhook:", "stdout:x"])
def test_a_destination_the_pager_does_not_know_is_refused(spec: str) -> None:
    with pytest.raises(PagerError, match=r"--deliver|URL"):
        parse_destination(spec)
