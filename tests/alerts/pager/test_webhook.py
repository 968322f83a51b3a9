"""Parsing Alertmanager's webhook notifications (version 4), as a real Alertmanager sends them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from alerts.pager.errors import PayloadError
from alerts.pager.subject import subject_of
from alerts.pager.webhook import parse_notification
from tests.alerts.pager.conftest import edited, notification


def test_a_firing_burn_rate_page_is_read_with_its_group_key_labels_and_annotations() -> None:
    firing = notification("availability-page-firing")

    assert firing.status == "firing"
    assert firing.group_key == (
        '{}:{alertname="PaymentsAvailabilityBurn", sloth_id="payments-availability", sloth_severity="page"}'
    )
    assert firing.name == "PaymentsAvailabilityBurn"
    (alert,) = firing.alerts
    assert alert.labels["sloth_id"] == "payments-availability"
    assert alert.annotations["runbook_url"] == "runbooks/payments-availability-page.md"
    assert alert.starts_at.tzinfo is not None
    assert alert.ends_at is None  # Go's zero time: no end yet
    assert alert.fingerprint == "011676d60ed3b9f3"


def test_a_resolved_group_carries_every_alert_with_its_end() -> None:
    resolved = notification("availability-page-resolved")

    assert resolved.status == "resolved"
    assert {alert.status for alert in resolved.alerts} == {"resolved"}
    assert all(alert.ends_at is not None and alert.ends_at > alert.starts_at for alert in resolved.alerts)


def test_an_alert_keeps_its_identity_across_resends_and_a_new_start_is_a_new_identity() -> None:
    first = notification("availability-page-firing").alerts[0]
    resent = notification("availability-page-two-alerts").alerts

    assert first.identity in {alert.identity for alert in resent}
    assert len({alert.identity for alert in resent}) == 2


def test_burn_rate_alerts_are_about_their_slo_and_severity() -> None:
    subject = subject_of(notification("availability-page-firing").alerts[0])

    assert (subject.slo_id, subject.service, subject.slo) == ("payments-availability", "payments", "availability")
    assert (subject.severity, subject.kind) == ("page", "burn")


def test_predictive_and_budget_exhaustion_alerts_are_recognised() -> None:
    subjects = {
        alert.name: subject_of(alert)
        for name in ("predictive-firing", "budget-exhaustion-firing")
        for alert in notification(name).alerts
    }

    predicted = subjects["PaymentsAvailabilityPredictedBurn"]
    assert (predicted.kind, predicted.severity, predicted.slo_id) == ("predictive", "page", "payments-availability")
    exhaustion = subjects["PaymentsLatencyBurnBudgetExhaustion"]
    assert (exhaustion.kind, exhaustion.severity, exhaustion.slo_id) == ("exhaustion", "ticket", "payments-latency")


def test_a_predictive_alert_naming_the_slo_with_its_service_is_understood_too() -> None:
    def full_slo(document: dict[str, Any]) -> None:
        document["alerts"][0]["labels"]["slo"] = "payments-availability"

    alert = parse_notification(edited("predictive-firing", full_slo)).alerts[0]

    assert (subject_of(alert).slo_id, subject_of(alert).slo) == ("payments-availability", "availability")


def test_a_platform_alert_is_about_its_service_and_no_slo() -> None:
    subject = subject_of(notification("platform-not-ready-firing").alerts[0])

    assert (subject.service, subject.slo_id, subject.severity, subject.kind) == ("payments", "", "page", "other")


def test_a_scrape_failure_alert_is_about_the_job_it_names() -> None:
    def scrape_job(document: dict[str, Any]) -> None:
        labels = document["alerts"][0]["labels"]
        labels["job"] = labels.pop("service")

    alert = parse_notification(edited("platform-not-ready-firing", scrape_job)).alerts[0]

    assert subject_of(alert).service == "payments"


def test_nanosecond_times_from_go_are_read() -> None:
    def nanoseconds(document: dict[str, Any]) -> None:
        document["alerts"][0]["startsAt"] = "2026-11-25T16:05:12.948123456Z"

    alert = parse_notification(edited("availability-page-firing", nanoseconds)).alerts[0]

    assert alert.starts_at == datetime(2026, 11, 25, 16, 5, 12, 948123, tzinfo=UTC)


@pytest.mark.parametrize(
    ("change", "code", "words"),
    [
        (lambda d: d.update(version="3"), "unsupported_version", "version '3'"),
        (lambda d: d.pop("groupKey"), "invalid_payload", "groupKey"),
        (lambda d: d.update(alerts=[]), "invalid_payload", "alerts"),
        (lambda d: d.update(status="pending"), "invalid_payload", "status"),
        (lambda d: d["alerts"][0].pop("fingerprint"), "invalid_payload", "alerts[0].fingerprint"),
        (lambda d: d["alerts"][0].update(startsAt="yesterday"), "invalid_payload", "alerts[0].startsAt"),
        (lambda d: d["alerts"][0]["labels"].update(tier=1), "invalid_payload", "alerts[0].labels"),
    ],
)
def test_a_payload_that_is_not_a_v4_notification_is_refused_saying_where(change: Any, code: str, words: str) -> None:
    with pytest.raises(PayloadError) as refused:
        parse_notification(edited("availability-page-firing", change))

    assert refused.value.code == code
    assert words in str(refused.value)


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", json.dumps("firing").encode(), b"\xff\xfe"])
def test_a_body_that_is_not_a_json_object_is_refused(body: bytes) -> None:
    with pytest.raises(PayloadError):
        parse_notification(body)
