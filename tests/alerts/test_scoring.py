"""Page scoring by DESIGN.md's definitions, on hand-made cases whose answers are known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from alerts.generator import generate_scenario
from alerts.scoring import burn_rate_pages, merge_pages, read_pages, score_pages, write_pages
from slo.errors import SourceError
from slo.scenario import Incident, Scenario

T0 = 1_790_000_000
WEEK_ROWS = 7 * 86400 // 15


def _scenario(*incidents: Incident, rows: int = WEEK_ROWS, name: str = "case") -> Scenario:
    zeros = np.zeros(rows, dtype=np.int64)
    return Scenario(
        timestamps=T0 + 15 * (np.arange(rows, dtype=np.int64) + 1),
        requests=zeros + 1000,
        errors=zeros,
        slow=zeros,
        p99_ms=np.full(rows, 80.0),
        cpu=np.full(rows, 0.3),
        db_pool=np.full(rows, 0.2),
        incidents=list(incidents),
        name=name,
    )


# an incident from 10:00 to 11:00 (relative to T0), breaching at 10:30
BREACHING = Incident("pool_exhaustion", T0 + 36000.0, T0 + 37800.0, T0 + 39600.0)
QUIET = Incident("memory_gc", T0 + 72000.0, None, T0 + 75600.0)
BASELINE: dict[str, list[float]] = {"case": []}


def test_pages_less_than_ten_minutes_apart_are_one_page() -> None:
    assert merge_pages([0, 300, 599, 600, 1100, 1300]) == [0, 600, 1300]


def test_merging_sorts_the_pages_first() -> None:
    assert merge_pages([900.0, 0.0]) == [0.0, 900.0]


def test_a_page_between_start_and_breach_is_on_time_with_its_lead() -> None:
    score = score_pages([_scenario(BREACHING)], {"case": [T0 + 37800.0 - 900]}, baseline=BASELINE)
    assert (score.true_pages, score.late_pages, score.false_pages) == (1, 0, 0)
    assert score.lead_times_s == (900.0,)
    assert score.median_lead_minutes == 15.0
    assert (score.recall, score.precision) == (1.0, 1.0)


def test_a_page_at_the_breach_itself_is_on_time_with_no_lead() -> None:
    score = score_pages([_scenario(BREACHING)], {"case": [BREACHING.breach or 0]}, baseline=BASELINE)
    assert score.true_pages == 1
    assert score.lead_times_s == (0.0,)


def test_a_page_after_the_breach_within_the_grace_is_late() -> None:
    score = score_pages([_scenario(BREACHING)], {"case": [BREACHING.end + 1800]}, baseline=BASELINE)
    assert (score.true_pages, score.late_pages, score.false_pages) == (0, 1, 0)
    assert (score.detected, score.missed, score.recall) == (1, 0, 1.0)
    assert score.lead_times_s == ()
    assert score.median_lead_minutes is None


def test_a_page_past_the_grace_is_false_and_the_incident_missed() -> None:
    score = score_pages([_scenario(BREACHING)], {"case": [BREACHING.end + 1801]}, baseline=BASELINE)
    assert (score.true_pages, score.late_pages, score.false_pages) == (0, 0, 1)
    assert (score.missed, score.recall, score.precision) == (1, 0.0, 0.0)


def test_a_page_before_the_incident_starts_is_false() -> None:
    score = score_pages([_scenario(BREACHING)], {"case": [BREACHING.start - 15]}, baseline=BASELINE)
    assert score.false_pages == 1


def test_a_page_during_an_incident_that_never_breaches_is_an_early_warning() -> None:
    score = score_pages([_scenario(QUIET)], {"case": [QUIET.start + 600]}, baseline=BASELINE)
    assert (score.early_warnings, score.true_pages, score.false_pages) == (1, 0, 0)
    assert (score.incidents, score.precision, score.recall) == (0, 1.0, 1.0)


def test_an_incident_is_credited_with_its_first_page_and_later_ones_are_repeats() -> None:
    pages = [BREACHING.start + 60, (BREACHING.breach or 0) + 900]
    score = score_pages([_scenario(BREACHING)], {"case": pages}, baseline=BASELINE)
    assert (score.true_pages, score.late_pages, score.false_pages, score.repeat_pages) == (1, 0, 0, 1)
    assert score.lead_times_s == ((BREACHING.breach or 0) - BREACHING.start - 60,)


def test_merged_pages_count_once() -> None:
    pages = [BREACHING.start - 3600, BREACHING.start - 3300]  # one false page, sent twice
    score = score_pages([_scenario(BREACHING)], {"case": pages}, baseline=BASELINE)
    assert score.false_pages == 1


def test_precision_counts_late_pages_as_right_and_recall_counts_late_detections() -> None:
    late = Incident("bad_deploy", T0 + 100000.0, T0 + 100300.0, T0 + 102000.0)
    missed = Incident("slow_dependency", T0 + 200000.0, T0 + 201000.0, T0 + 203000.0)
    pages = [BREACHING.start + 60, late.end + 60, T0 + 400000.0]
    score = score_pages([_scenario(BREACHING, late, missed)], {"case": pages}, baseline=BASELINE)
    assert (score.true_pages, score.late_pages, score.false_pages) == (1, 1, 1)
    assert (score.incidents, score.detected, score.missed) == (3, 2, 1)
    assert score.precision == pytest.approx(2 / 3)
    assert score.recall == pytest.approx(2 / 3)


def test_false_pages_per_week_divide_by_the_total_duration() -> None:
    scenarios = [_scenario(name="a"), _scenario(name="b")]
    score = score_pages(scenarios, {"a": [T0 + 1000.0], "b": [T0 + 1000.0, T0 + 90000.0]}, baseline={})
    assert score.weeks == 2.0
    assert score.false_pages_per_week == 1.5


def test_p10_lead_is_the_tenth_percentile_in_minutes() -> None:
    incidents = [
        Incident("pool_exhaustion", T0 + 10000.0 * k, T0 + 10000.0 * k + 3000, T0 + 10000.0 * k + 4000)
        for k in range(1, 11)
    ]
    pages = [i.breach - 60.0 * k for k, i in enumerate(incidents, start=1) if i.breach is not None]
    score = score_pages([_scenario(*incidents)], {"case": pages}, baseline=BASELINE)
    assert score.median_lead_minutes == 5.5
    assert score.p10_lead_minutes == pytest.approx(1.9)


def test_lead_over_the_baseline_is_the_baseline_page_minus_ours() -> None:
    pages = {"case": [BREACHING.start + 300]}
    baseline = {"case": [(BREACHING.breach or 0) + 60]}
    score = score_pages([_scenario(BREACHING)], pages, baseline=baseline)
    assert score.lead_vs_baseline_s == ((BREACHING.breach or 0) + 60 - BREACHING.start - 300,)


def test_pages_for_an_unknown_scenario_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown scenarios: other"):
        score_pages([_scenario()], {"other": [T0 + 1.0]})


def test_burn_rate_pages_come_at_or_after_each_breach() -> None:
    scenario = generate_scenario(11, incident_kinds=("pool_exhaustion", "bad_deploy", "slow_dependency"))
    pages = burn_rate_pages(scenario)
    breaching = [i for i in scenario.incidents if i.breach is not None]
    assert breaching
    for incident in breaching:
        assert incident.breach is not None
        matching = [p for p in pages if incident.start <= p <= incident.end + 1800]
        assert matching, incident
        assert matching[0] >= incident.breach


def test_the_burn_rate_baseline_scores_perfect_recall_with_no_lead() -> None:
    scenario = generate_scenario(11, incident_kinds=("pool_exhaustion", "memory_gc"), near_miss_kinds=("blip",))
    pages = {scenario.name: burn_rate_pages(scenario)}
    score = score_pages([scenario], pages)
    assert score.recall == 1.0
    assert score.false_pages == 0
    assert all(lead == 0.0 for lead in score.lead_times_s)


def test_pages_files_round_trip(tmp_path: Path) -> None:
    pages = {"b": [T0 + 30.0, T0 + 15.5], "a": []}
    write_pages(tmp_path / "PAGES.json", pages)
    assert read_pages(tmp_path / "PAGES.json") == {"a": [], "b": [T0 + 15.5, T0 + 30.0]}


@pytest.mark.parametrize("content", ["[1, 2]", '{"a": [1, "x"]}', '{"a": 3}', "not json"])
def test_a_bad_pages_file_is_one_source_error(tmp_path: Path, content: str) -> None:
    (tmp_path / "PAGES.json").write_text(content)
    with pytest.raises(SourceError, match=r"PAGES\.json"):
        read_pages(tmp_path / "PAGES.json")


def test_share_of_the_physical_limit_is_lead_over_fault_start_to_breach() -> None:
    from alerts.scoring import score_kinds, share_of_limit

    page = T0 + 36000.0 + 900  # 15 min after the fault start, 15 min before the breach (limit 30 min)
    kinds = score_kinds([_scenario(BREACHING, QUIET)], {"case": [page]})
    assert [k.kind for k in kinds] == ["pool_exhaustion"]  # only kinds that breach
    (kind,) = kinds
    assert (kind.incidents, kind.detected, kind.on_time) == (1, 1, 1)
    assert kind.median_lead_minutes == 15.0
    assert kind.median_limit_minutes == 30.0
    assert kind.median_share == 0.5
    assert share_of_limit(-300.0, 1800.0) < 0


def test_a_late_page_has_a_negative_lead_per_kind_and_a_miss_is_not_counted() -> None:
    from alerts.scoring import score_kinds

    late = (BREACHING.breach or 0) + 120
    (kind,) = score_kinds([_scenario(BREACHING)], {"case": [late]})
    assert kind.median_lead_minutes == -2.0 and kind.on_time == 0
    (missed,) = score_kinds([_scenario(BREACHING)], {"case": []})
    assert (missed.detected, missed.median_share) == (0, None)
