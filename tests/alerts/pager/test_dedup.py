"""Alertmanager re-sends groups; on-call is paged once per piece of news, across restarts too."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from alerts.pager.dedup import PageLedger
from alerts.pager.errors import PagerError
from alerts.pager.page import PageSources
from alerts.pager.receiver import Pager
from tests.alerts.pager.conftest import RecordingDestination, edited, payload


def _pager(state: Path | None, *destinations: RecordingDestination) -> Pager:
    return Pager(PageSources(), destinations or (RecordingDestination(),), PageLedger(state))


def test_the_same_webhook_twice_pages_once() -> None:
    sink = RecordingDestination()
    pager = _pager(None, sink)

    first = pager.receive(payload("availability-page-firing"))
    second = pager.receive(payload("availability-page-firing"))

    assert (first.event, second.event) == ("trigger", "")
    assert second.reason == "already paged"
    assert sink.events == ["trigger"]


def test_a_restart_with_the_state_file_does_not_page_again(tmp_path: Path) -> None:
    before, after = RecordingDestination(), RecordingDestination()
    _pager(tmp_path / "state.json", before).receive(payload("availability-page-firing"))

    _pager(tmp_path / "state.json", after).receive(payload("availability-page-firing"))

    assert (before.events, after.events) == (["trigger"], [])


def test_the_state_file_keeps_each_group_by_hash_with_the_identities_it_paged(tmp_path: Path) -> None:
    _pager(tmp_path / "state.json").receive(payload("availability-page-firing"))

    state = json.loads((tmp_path / "state.json").read_text())

    assert state["version"] == 1
    (group,) = state["groups"].values()
    assert group["status"] == "firing"
    (alert,) = json.loads(payload("availability-page-firing"))["alerts"]
    assert group["paged"] == [f"{alert['fingerprint']}@{datetime.fromisoformat(alert['startsAt']).isoformat()}"]


def test_a_new_alert_joining_a_firing_group_pages_again() -> None:
    sink = RecordingDestination()
    pager = _pager(None, sink)

    pager.receive(payload("availability-page-firing"))
    joined = pager.receive(payload("availability-page-two-alerts"))

    assert joined.reason == "1 new alert"
    assert sink.events == ["trigger", "trigger"]
    assert len(sink.pages[1].sections) == 2


def test_an_alert_leaving_a_firing_group_is_not_news() -> None:
    sink = RecordingDestination()
    pager = _pager(None, sink)

    pager.receive(payload("availability-page-two-alerts"))
    pager.receive(payload("availability-page-firing"))

    assert sink.events == ["trigger"]


def test_a_resolve_is_delivered_once() -> None:
    sink = RecordingDestination()
    pager = _pager(None, sink)

    pager.receive(payload("availability-page-two-alerts"))
    pager.receive(payload("availability-page-resolved"))
    pager.receive(payload("availability-page-resolved"))

    assert sink.events == ["trigger", "resolve"]


def test_a_resolve_survives_a_restart_too(tmp_path: Path) -> None:
    sink = RecordingDestination()
    _pager(tmp_path / "state.json").receive(payload("availability-page-firing"))
    _pager(tmp_path / "state.json").receive(payload("availability-page-resolved"))

    _pager(tmp_path / "state.json", sink).receive(payload("availability-page-resolved"))

    assert sink.events == []


def test_the_same_alert_firing_again_after_its_resolve_pages_again() -> None:
    def restarted(document: dict[str, Any]) -> None:
        document["alerts"][0]["startsAt"] = "2026-11-25T17:00:00.000Z"

    sink = RecordingDestination()
    pager = _pager(None, sink)

    pager.receive(payload("availability-page-firing"))
    pager.receive(payload("availability-page-resolved"))
    pager.receive(edited("availability-page-firing", restarted))

    assert sink.events == ["trigger", "resolve", "trigger"]


def test_a_failed_destination_gets_the_page_on_alertmanagers_retry_and_the_others_do_not_get_it_twice() -> None:
    healthy, flaky = RecordingDestination("healthy"), RecordingDestination("flaky", failing=True)
    pager = _pager(None, healthy, flaky)

    failed = pager.receive(payload("availability-page-firing"))
    flaky.failing = False
    retried = pager.receive(payload("availability-page-firing"))
    again = pager.receive(payload("availability-page-firing"))

    assert failed.failed == {"flaky": "flaky: refused"}
    assert retried.delivered == ("flaky",)
    assert (healthy.events, flaky.events) == (["trigger"], ["trigger"])
    assert again.event == ""


def test_a_destination_that_failed_and_was_then_dropped_from_the_flags_is_not_retried(tmp_path: Path) -> None:
    healthy, dropped = RecordingDestination("healthy"), RecordingDestination("dropped", failing=True)
    _pager(tmp_path / "state.json", healthy, dropped).receive(payload("availability-page-firing"))

    after_restart = _pager(tmp_path / "state.json", healthy).receive(payload("availability-page-firing"))

    assert (after_restart.event, after_restart.reason) == ("", "already paged")
    assert healthy.events == ["trigger"]


def test_a_state_file_that_is_not_the_pagers_is_refused_rather_than_overwritten(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text('{"something": "else"}')

    with pytest.raises(PagerError, match="not a pager state file"):
        PageLedger(tmp_path / "state.json")
    assert (tmp_path / "state.json").read_text() == '{"something": "else"}'
