"""OpenSLO `Timeslices` and `RatioTimeslices` compiled to rules, judged by `promtool test rules`:
a one-minute slice counts as bad exactly when its good ratio misses `timeSliceTarget`, and an
SLI window's error ratio is the share of bad slices in it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from slo.rules import RuleOptions, render
from slo.spec import TimesliceSLI, load_specs
from tests.slo.promtool import query_promtool

SPEC = """\
apiVersion: openslo/v1
kind: SLO
metadata:
  name: good-minutes
spec:
  service: shop
  budgetingMethod: {method}
  timeWindow:
    - duration: 1w
      isRolling: true
  objectives:
    - target: 0.99
      timeSliceTarget: 0.95
      timeSliceWindow: 1m
  indicator:
    spec:
      ratioMetric:
        counter: true
        good:
          metricSource:
            type: Prometheus
            spec:
              query: sum(rate(shop_good_total[{{{{.window}}}}]))
        total:
          metricSource:
            type: Prometheus
            spec:
              query: sum(rate(shop_requests_total[{{{{.window}}}}]))
"""
# Good requests in each minute, out of 100: 96 and 97 are good slices at 95%, 94 and 93 are not.
GOOD_PER_MINUTE = [100, 96, 94, 100, 50, 97, 93, 100, 0, 100, 99, 94]
SCRAPE = 15
PER_MINUTE = 60 // SCRAPE
SELECT = '{sloth_id="shop-good-minutes"}'


def _counters() -> dict[str, np.ndarray]:
    """Counters scraped every 15 s, each minute's requests spread evenly over its four scrapes."""
    good = np.concatenate([[0.0], np.repeat(np.array(GOOD_PER_MINUTE, dtype=float) / PER_MINUTE, PER_MINUTE)])
    total = np.concatenate([[0.0], np.full(len(GOOD_PER_MINUTE) * PER_MINUTE, 100.0 / PER_MINUTE)])
    return {"shop_good_total": np.cumsum(good), "shop_requests_total": np.cumsum(total)}


def _rules(tmp_path: Path, method: str) -> str:
    path = tmp_path / "slo.yaml"
    path.write_text(SPEC.format(method=method))
    slos = load_specs([path])
    assert isinstance(slos[0].sli, TimesliceSLI) and slos[0].sli.slice_seconds == 60
    return render(slos, RuleOptions(min_bad_events=0))


def _ask(tmp_path: Path, method: str, queries: list[str]) -> dict[tuple[str, float], list[float]]:
    minutes = range(1, len(GOOD_PER_MINUTE) + 1)
    got = query_promtool(
        _rules(tmp_path, method),
        _counters(),
        scrape_interval=SCRAPE,
        evaluation_interval=60,
        queries=queries,
        eval_times=[60 * m for m in minutes],
        workdir=tmp_path,
    )
    return {key: [sample.value for sample in samples] for key, samples in got.items()}


def test_a_timeslice_is_bad_exactly_when_its_ratio_misses_the_target(tmp_path: Path) -> None:
    query = f"slo:sli_timeslice_error:ratio{SELECT}"
    got = _ask(tmp_path, "Timeslices", [query])
    for minute, good in enumerate(GOOD_PER_MINUTE, start=1):
        bad = 1.0 if good / 100 < 0.95 else 0.0
        assert got[(query, 60.0 * minute)] == [bad], (minute, good)


def test_a_windows_error_ratio_is_the_share_of_bad_slices_in_it(tmp_path: Path) -> None:
    query = f"slo:sli_error:ratio_rate5m{SELECT}"
    got = _ask(tmp_path, "Timeslices", [query])
    bad = [1.0 if good / 100 < 0.95 else 0.0 for good in GOOD_PER_MINUTE]
    for minute in range(5, len(GOOD_PER_MINUTE) + 1):
        expected = sum(bad[minute - 5 : minute]) / 5  # the five slices ending at this minute, none twice
        assert got[(query, 60.0 * minute)] == [pytest.approx(expected, abs=1e-12)], minute


def test_ratio_timeslices_average_the_slices_error_ratios(tmp_path: Path) -> None:
    query = f"slo:sli_error:ratio_rate5m{SELECT}"
    got = _ask(tmp_path, "RatioTimeslices", [query])
    errors = [(100 - good) / 100 for good in GOOD_PER_MINUTE]
    for minute in range(5, len(GOOD_PER_MINUTE) + 1):
        expected = sum(errors[minute - 5 : minute]) / 5
        assert got[(query, 60.0 * minute)] == [pytest.approx(expected, abs=1e-12)], minute
