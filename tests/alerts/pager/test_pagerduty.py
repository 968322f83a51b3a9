"""PagerDuty Events API v2 payloads: trigger while firing, resolve when resolved, one dedup_key per group."""

from __future__ import annotations

import hashlib

from alerts.pager.page import PageSources, build_page
from alerts.pager.pagerduty import pagerduty_event
from tests.alerts.pager.conftest import notification

KEY = "R0UTING-KEY-0123456789abcdef"


def _event(name: str) -> dict[str, object]:
    return pagerduty_event(build_page(notification(name), PageSources()), KEY)


def test_a_firing_page_group_triggers_a_critical_incident() -> None:
    event = _event("availability-page-firing")

    assert event["event_action"] == "trigger"
    assert event["routing_key"] == KEY
    payload = event["payload"]
    assert isinstance(payload, dict)
    assert payload["severity"] == "critical"
    assert payload["source"] == "payments"
    assert payload["component"] == "payments-availability"
    assert payload["group"] == "payments"
    assert payload["class"] == "PaymentsAvailabilityBurn"
    assert payload["summary"].startswith("[PAGE] FIRING PaymentsAvailabilityBurn: payments availability")
    assert len(payload["summary"]) <= 1024
    assert payload["custom_details"]["runbook"] == "runbooks/payments-availability-page.md"
    assert "nova runbooks run PaymentsAvailabilityBurn" in payload["custom_details"]["page"]
    assert event["client"] == "Nova pager"
    assert event["client_url"] == "http://alertmanager.example:9093"
    assert {"href": notification("availability-page-firing").alerts[0].generator_url, "text": "Alert rule"} in (
        event["links"]  # type: ignore[operator]
    )


def test_a_ticket_group_triggers_a_warning() -> None:
    payload = _event("budget-exhaustion-firing")["payload"]

    assert isinstance(payload, dict)
    assert payload["severity"] == "warning"


def test_a_resolved_group_resolves_the_same_incident() -> None:
    assert _event("availability-page-resolved") == {
        "routing_key": KEY,
        "event_action": "resolve",
        "dedup_key": _event("availability-page-firing")["dedup_key"],
    }


def test_the_dedup_key_is_the_sha256_of_the_group_key_stable_across_resends() -> None:
    group_key = notification("availability-page-firing").group_key

    keys = {_event(name)["dedup_key"] for name in ("availability-page-firing", "availability-page-two-alerts")}

    assert keys == {hashlib.sha256(group_key.encode()).hexdigest()}


def test_other_groups_get_other_dedup_keys() -> None:
    keys = [_event(name)["dedup_key"] for name in ("availability-page-firing", "budget-exhaustion-firing")]

    assert keys[0] != keys[1]


def test_an_absolute_runbook_url_becomes_a_link() -> None:
    firing = notification("availability-page-firing")
    firing.alerts[0].annotations["runbook_url"] = "https://runbooks.example/payments-availability-page.md"

    event = pagerduty_event(build_page(firing, PageSources()), KEY)

    assert event["links"][0] == {"href": "https://runbooks.example/payments-availability-page.md", "text": "Runbook"}
