"""A streaming anomaly detector for one metric: novelty against the metric's own history.

The score of row i uses rows 0..i only (the detector is an online state machine: `update(value) -> score`),
so it can run on a live metric exactly as it runs on a NAB file. Two signals, each measured against what
the metric has done before, in units of the spread (max - min) of that history:

- novelty: the distance from the current value to the nearest value seen before. A value the metric has
  never come near (a new maximum or minimum, or a value inside a gap it has never visited) is surprising;
  a periodic spike the metric makes every day is not.
- level shift: how far the mean of the last `level_rows` rows lies outside the range of every earlier,
  non-overlapping mean of that length. It catches a sustained move (a drop to a new plateau) that single
  values inside the noise band would not.
- local surprise: how far the mean of the last `local_mean_rows` values lies from the median of the day
  before them, in robust standard deviations (MAD, floored at 1% of the history's range), *against the
  largest such surprise the metric has shown before*. A spike inside the usual range but far from its own
  neighbourhood (a burst of tweets at night, a jump on a quiet hour) is new; the metric's ordinary noise
  and its routine bursts set the bar, so the same setting fits a noisy count and a smooth CPU curve.

A new extreme of plain noise is also "never seen before", so on a noisy metric the default settings raise
a few alerts a fortnight; `QUIET` asks more of a novelty and pages less (see alerts/README.md).

`anomaly_score` maps the largest of the three ratios (each divided by its alert threshold) to [0, 1] with 0.5
exactly at the threshold: score >= 0.5 is an alert. After an alert the detector stays quiet (scores capped
just under 0.5) for `refractory_rows`, so one incident raises one alert, not one per row; and it says
nothing during `warmup_rows` while it learns what normal looks like.

The settings are one configuration for every metric (no per-series tuning), chosen leave-one-category-out on
NAB's six public categories; see alerts/README.md, "Anomaly detection", for the protocol and every figure.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

ALERT = 0.5
QUIET_CAP = 0.49  # the score during the refractory period: visible, but under the alert threshold


@dataclass(frozen=True)
class DetectorSettings:
    """One set of hyperparameters for every metric (rows are 5-minute samples in NAB: 288 rows = 1 day).

    The defaults are the configuration the leave-one-category-out folds on NAB's six public categories chose
    most often (`alerts.anomaly.loco`): they favour catching incidents and accept a few false alarms on plain
    noise (NAB charges a false positive 0.11 of a missed window).
    `QUIET` below trades recall for fewer pages.
    """

    novelty_threshold: float = 0.0267  # alert when the nearest earlier value is > 2.67% of the history's range away
    spacing_factor: float = 0.0  # ... and more than this many times the spacing of the values beyond it
    spacing_values: int = 5  # how many values beyond the nearest one measure that spacing
    level_rows: int = 36  # 3 hours at 5-minute steps
    level_threshold: float = 0.3  # alert when the 3-hour mean leaves the earlier means' range by > 30% of it
    level_min_means: int = 288  # earlier means (one day) the level signal needs before it may alert
    warmup_rows: int = 288  # learn one day before alerting
    refractory_rows: int = 36  # after an alert, stay quiet for three hours
    hold_quiet: bool = False  # True: an alarm that runs on past the quiet period stays one alert
    history_rows: int = 4032  # remember two weeks; older behaviour stops defining normal
    local_rows: int = 288  # the neighbourhood a local surprise is measured against (one day)
    local_mean_rows: int = 1  # the surprise is the mean of this many latest values
    local_floor: float = 0.01  # the robust spread is at least this share of the history's range
    local_min_rows: int = 288  # ... measured once it holds this many values
    local_burn_in_rows: int = 12  # surprises seen before the largest one may set the bar (one hour)
    local_factor: float = 1.6  # alert when the surprise is this many times the largest one seen before

    def __post_init__(self) -> None:
        if self.novelty_threshold <= 0 or self.level_threshold <= 0 or self.spacing_factor < 0:
            raise ValueError("thresholds must be positive")
        if (
            min(
                self.level_rows,
                self.history_rows,
                self.spacing_values,
                self.local_rows,
                self.local_mean_rows,
                self.local_min_rows,
            )
            < 1
        ):
            raise ValueError("level_rows, history_rows, spacing_values and the local rows must be at least 1")
        if self.local_mean_rows > self.local_rows:
            raise ValueError("local_mean_rows cannot exceed local_rows")
        if self.local_factor <= 0 or self.local_floor < 0:
            raise ValueError("local_factor must be positive and local_floor not negative")
        if min(self.warmup_rows, self.refractory_rows, self.level_min_means, self.local_burn_in_rows) < 0:
            raise ValueError("row counts cannot be negative")


# Fewer false alarms on noisy metrics (a new extreme must also stand well clear of the tail it extends):
# about 0.4 alerts per two weeks of Gaussian noise instead of 2.4, for a lower NAB score (see README).
QUIET = DetectorSettings(spacing_factor=12.0, hold_quiet=True)


class _SortedHistory:
    """The last `capacity` values, in arrival order and sorted (nearest neighbour and range in O(log n))."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._arrivals: deque[float] = deque()
        self._sorted: list[float] = []

    def __len__(self) -> int:
        return len(self._sorted)

    def add(self, value: float) -> None:
        self._arrivals.append(value)
        bisect.insort(self._sorted, value)
        if len(self._arrivals) > self._capacity:
            oldest = self._arrivals.popleft()
            del self._sorted[bisect.bisect_left(self._sorted, oldest)]

    def spread(self) -> float:
        return self._sorted[-1] - self._sorted[0] if self._sorted else 0.0

    def median_and_mad(self) -> tuple[float, float]:
        """The median and the median absolute deviation from it (numpy's conventions), in O(log n)."""
        values = self._sorted
        n = len(values)
        median = (values[(n - 1) // 2] + values[n // 2]) / 2.0
        split = bisect.bisect_left(values, median)
        # Deviations below the median, ascending: median - values[split - 1 - i]; above: values[split + j] - median.
        below = split
        above = n - split

        def low(i: int) -> float:
            return median - values[split - 1 - i]

        def high(j: int) -> float:
            return values[split + j] - median

        def kth(k: int) -> float:  # the k-th smallest (0-based) of the two ascending sequences merged
            lo, hi = max(0, k + 1 - above), min(k + 1, below)
            while lo < hi:
                i = (lo + hi) // 2
                if low(i) < high(k - i):
                    lo = i + 1
                else:
                    hi = i
            taken_low = low(lo - 1) if lo > 0 else -math.inf
            taken_high = high(k - lo) if k + 1 - lo > 0 else -math.inf
            return max(taken_low, taken_high)

        return median, (kth((n - 1) // 2) + kth(n // 2)) / 2.0

    def outside(self, value: float) -> float:
        """How far `value` lies beyond the range of the history (0 inside it)."""
        return max(value - self._sorted[-1], self._sorted[0] - value, 0.0)

    def nearest_distance(self, value: float, spacing_values: int) -> tuple[float, float]:
        """The distance to the nearest value, and the mean spacing of the next `spacing_values` beyond it."""
        values = self._sorted
        i = bisect.bisect_left(values, value)
        above = values[i] - value if i < len(values) else math.inf
        below = value - values[i - 1] if i > 0 else math.inf
        if above <= below:
            far = min(i + spacing_values, len(values) - 1)
            spacing = (values[far] - values[i]) / max(far - i, 1)
            return above, spacing
        far = max(i - 1 - spacing_values, 0)
        spacing = (values[i - 1] - values[far]) / max(i - 1 - far, 1)
        return below, spacing


class MetricAnomalyDetector:
    """Online detector: feed values in time order with `update`, get each row's anomaly score in [0, 1]."""

    def __init__(self, settings: DetectorSettings | None = None) -> None:
        self.settings = settings or DetectorSettings()
        s = self.settings
        self._rows = 0
        self._values = _SortedHistory(s.history_rows)
        self._means = _SortedHistory(s.history_rows)
        self._recent: deque[float] = deque(maxlen=s.level_rows)
        # Means wait `level_rows` rows before joining the history, so the current mean is compared with
        # earlier means that do not share its rows.
        self._pending_means: deque[float] = deque()
        self._last_alert: int | None = None
        self._last_alarm = -2  # the last row at or over the threshold
        self._local = _SortedHistory(s.local_rows)
        self._latest: deque[float] = deque(maxlen=s.local_mean_rows)
        self._largest_surprise = 0.0
        self._surprises = 0

    def update(self, value: float) -> float:
        """Score the next row (NaN or infinite values score 0 and are not learnt)."""
        s = self.settings
        row = self._rows
        self._rows += 1
        if not math.isfinite(value):
            return 0.0
        local = self._local_surprise(value, row)
        ratio = max(self._novelty(value) / s.novelty_threshold, self._level_shift(value) / s.level_threshold, local)
        self._values.add(value)
        if row < s.warmup_rows:
            return 0.0
        score = min(ratio / 2.0, 1.0)
        if score >= ALERT:
            quiet = self._last_alert is not None and row - self._last_alert < s.refractory_rows
            if quiet or (s.hold_quiet and self._last_alarm == row - 1):
                self._last_alarm = row  # the same incident, still alarming: it keeps the detector quiet
                return QUIET_CAP
            self._last_alert = self._last_alarm = row
        return score

    def _novelty(self, value: float) -> float:
        spread = self._values.spread()
        if len(self._values) <= 10 or spread <= 0:
            return 0.0
        distance, spacing = self._values.nearest_distance(value, self.settings.spacing_values)
        if distance <= self.settings.spacing_factor * spacing:
            return 0.0
        return distance / spread

    def _local_surprise(self, value: float, row: int) -> float:
        """This row's robust z-score against the day before it, over the largest earlier one, / local_factor."""
        s = self.settings
        self._latest.append(value)
        full = len(self._local) >= min(s.local_min_rows, s.local_rows)
        surprise = 0.0
        if full:  # the day before this row
            current = math.fsum(self._latest) / len(self._latest)
            median, mad = self._local.median_and_mad()
            scale = max(1.4826 * mad, s.local_floor * self._values.spread())
            surprise = abs(current - median) / scale if scale > 0 else 0.0
        self._local.add(value)
        if not full:
            return 0.0
        largest = self._largest_surprise
        self._largest_surprise = max(largest, surprise)
        self._surprises += 1
        # The largest earlier surprise means something only once a few hours of surprises have been seen.
        if row < s.warmup_rows or self._surprises <= s.local_burn_in_rows or largest <= 0:
            return 0.0
        return surprise / largest / s.local_factor

    def _level_shift(self, value: float) -> float:
        s = self.settings
        self._recent.append(value)
        if len(self._recent) < s.level_rows:
            return 0.0
        mean = math.fsum(self._recent) / s.level_rows  # exact: no drift over a long-running stream
        self._pending_means.append(mean)
        if len(self._pending_means) > s.level_rows:
            self._means.add(self._pending_means.popleft())
        spread = self._means.spread()
        if len(self._means) <= s.level_min_means or spread <= 0:
            return 0.0
        return self._means.outside(mean) / spread


def anomaly_scores(values: Iterable[float], settings: DetectorSettings | None = None) -> list[float]:
    """Run a fresh detector over a whole series; the result is what it would have said row by row."""
    detector = MetricAnomalyDetector(settings)
    return [detector.update(float(v)) for v in values]
