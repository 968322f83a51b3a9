"""The generated burn-rate alerts, judged by Prometheus itself (`promtool test rules`).

The SRE workbook's detection time: with a window of length W and threshold factor F, an error
ratio e that starts from a clean history trips the window once e * elapsed / W exceeds
F * budget, i.e. after W * F * budget / e.
"""

from __future__ import annotations

from pathlib import Path

from slo.rules import RuleOptions, render
from slo.spec import load_specs
from tests.slo.promtool import query_promtool
from tests.slo.scenarios import Phase, build, events_spec

FIRING = 'ALERTS{alertstate="firing"}'
MINUTE, HOUR, DAY = 60, 3600, 86400


def _firing(
    tmp_path: Path, phases: list[Phase], *, duration: int, every: int, scrape: int = 15
) -> dict[int, set[tuple[str, str]]]:
    spec = events_spec(tmp_path / "spec.yaml")
    scenario = build(phases, duration=duration, scrape=scrape)
    got = query_promtool(
        render(load_specs([spec]), RuleOptions()),
        scenario.series(),
        scrape_interval=scrape,
        evaluation_interval=MINUTE,
        queries=[FIRING],
        eval_times=list(range(0, duration + 1, every)),
        workdir=tmp_path,
    )
    return {
        int(t): {(s.labels["alertname"], s.labels["sloth_severity"]) for s in samples}
        for (_, t), samples in got.items()
    }


def test_page_fires_when_the_workbook_predicts_and_not_earlier(tmp_path: Path) -> None:
    # 99.9%: budget 0.001. Errors at 4% (40x burn) from T0; the 1h window crosses 14.4x after
    # 1h * 14.4 * 0.001 / 0.04 = 21.6 minutes, so the first evaluation that pages is T0 + 22m.
    start = 2 * HOUR
    firing = _firing(tmp_path, [Phase(0, 10, 0.0), Phase(start, 10, 0.04)], duration=start + 30 * MINUTE, every=MINUTE)
    pages = sorted(t for t, alerts in firing.items() if ("CheckoutBurn", "page") in alerts)
    assert pages, "the page never fired"
    assert pages[0] == start + 22 * MINUTE
    assert all(("CheckoutBurn", "page") not in firing[t] for t in range(0, start + 22 * MINUTE, MINUTE))


def test_slow_burn_opens_a_ticket_and_never_pages(tmp_path: Path) -> None:
    # 2x burn after a clean day: below both page factors (14.4, 6), above the slow ticket's 1x
    # over 6h and 3d; the 3d window (holding only the history there is) crosses 1x after another day.
    firing = _firing(
        tmp_path,
        [Phase(0, 5, 0.0), Phase(DAY, 5, 0.002)],
        duration=2 * DAY + 6 * HOUR,
        every=10 * MINUTE,
        scrape=60,
    )
    tickets = sorted(t for t, alerts in firing.items() if ("CheckoutBurn", "ticket") in alerts)
    assert tickets, "the slow burn never opened a ticket"
    assert 2 * DAY - HOUR <= tickets[0] <= 2 * DAY + HOUR
    assert not any(("CheckoutBurn", "page") in alerts for alerts in firing.values())


def test_a_burn_below_1x_stays_silent(tmp_path: Path) -> None:
    firing = _firing(tmp_path, [Phase(0, 5, 0.0008)], duration=2 * DAY, every=10 * MINUTE, scrape=60)
    assert not any(firing.values()), {t: a for t, a in firing.items() if a}


def test_one_failed_request_in_a_near_idle_hour_does_not_page(tmp_path: Path) -> None:
    # 1 request a minute, and one of them fails: 1/60 of the hour is 16x the 0.1% budget,
    # over the 14.4x factor, but a single bad event is under the traffic guard's 5.
    firing = _firing(
        tmp_path,
        [Phase(0, 1 / 60, 0.0), Phase(HOUR, 1 / 60, 1.0), Phase(HOUR + MINUTE, 1 / 60, 0.0)],
        duration=2 * HOUR,
        every=MINUTE,
        scrape=60,
    )
    assert not any(("CheckoutBurn", "page") in alerts for alerts in firing.values())


def test_the_same_burst_pages_without_the_traffic_guard(tmp_path: Path) -> None:
    """The guard, not the ratio, is what keeps the near-idle hour quiet."""
    spec = events_spec(tmp_path / "spec.yaml")
    scenario = build(
        [Phase(0, 1 / 60, 0.0), Phase(HOUR, 1 / 60, 1.0), Phase(HOUR + MINUTE, 1 / 60, 0.0)],
        duration=2 * HOUR,
        scrape=60,
    )
    got = query_promtool(
        render(load_specs([spec]), RuleOptions(min_bad_events=0)),
        scenario.series(),
        scrape_interval=60,
        evaluation_interval=MINUTE,
        queries=[FIRING],
        eval_times=list(range(HOUR, 2 * HOUR, MINUTE)),
        workdir=tmp_path,
    )
    assert any(s.labels["sloth_severity"] == "page" for samples in got.values() for s in samples)
