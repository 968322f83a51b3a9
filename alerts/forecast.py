"""The physical-forecast pager: page when a physical projection says the page condition is near.

This module owns the rule table, its fitting on training scenarios, and applying it in batch
(`ForecastPager.fired`, evaluation) and one step at a time (`LiveRules`, `nova alerts watch`):

* A rule is data, not a branch: a feature of `alerts.features` (a saturation forecast of the
  database pool or CPU, p99 against the latency threshold, a burn-rate page pair's time to
  cross, a gauge per request against half an hour before), a comparison, a threshold, and the
  number of 15 s rows running it must hold (`consecutive`). Some rules carry fixed guards with a
  physical meaning (a per-request drift counts only on a gauge at least half full), and no rule
  fires before an hour of history (the page condition cannot hold before it either).
* `RULES` is the catalogue: every rule with the thresholds and run lengths it may take.
  `fit_pager` chooses the rules' thresholds and runs on the training scenarios only, greedily:
  from no rule, each round takes the rule setting that gains the most (incidents detected, then
  lead over the burn-rate page) while the whole pager stays within the training targets
  (precision >= 0.95, <= 0.5 false pages a week); rules never chosen are left out.
* A page says why it fired (`Firing`): the rule, the signal in words and the projected minutes
  until it reaches its limit.

The thresholds are saved in the model file's metadata (`to_json`/`from_json`); the model file
is what `nova alerts evaluate`, `watch` and the benchmark load.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from alerts.features import ETA_CAP_MINUTES, FEATURE_NAMES
from alerts.scoring import PageScore, merge_pages, score_pages
from slo.scenario import Scenario

Features = npt.NDArray[np.float32]
Bools = npt.NDArray[np.bool_]
Ints = npt.NDArray[np.int64]

PAGE_GAP_SECONDS = 600
MIN_HISTORY_HOURS = 1.0
_INDEX = {name: i for i, name in enumerate(FEATURE_NAMES)}
_COMPARE: dict[str, Callable[[npt.NDArray[Any], float], Bools]] = {
    "<": lambda values, threshold: np.asarray(values < threshold),
    ">": lambda values, threshold: np.asarray(values > threshold),
}

# Training targets the fitted pager must meet on its own training scenarios, with a margin for
# data it has not seen (the must-show targets are precision 0.9 and 1 false page a week).
TARGET_PRECISION = 0.95
TARGET_FALSE_PER_WEEK = 0.5


@dataclass(frozen=True)
class Guard:
    """A fixed condition a rule also needs (not fitted: it has a physical meaning)."""

    feature: str
    comparison: str
    value: float

    def holds(self, features: Features) -> Bools:
        return _COMPARE[self.comparison](features[:, _INDEX[self.feature]], self.value)


@dataclass(frozen=True)
class Rule:
    """Page when `feature comparison threshold` (and every guard) holds for `consecutive` rows."""

    name: str
    feature: str
    comparison: str
    threshold: float
    consecutive: int
    signal: str  # what reaches its limit, for on-call ("db_pool full")
    eta_feature: str  # the feature giving the projected minutes until it does
    guards: tuple[Guard, ...] = ()

    def holds(self, features: Features) -> Bools:
        """Per row: the rule's condition (not yet its run)."""
        held = _COMPARE[self.comparison](features[:, _INDEX[self.feature]], self.threshold)
        held &= features[:, _INDEX["history_hours"]] >= MIN_HISTORY_HOURS
        for guard in self.guards:
            held &= guard.holds(features)
        return held

    def eta_minutes(self, row: Features) -> float:
        return float(min(float(row[_INDEX[self.eta_feature]]), ETA_CAP_MINUTES))

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "feature": self.feature,
            "comparison": self.comparison,
            "threshold": self.threshold,
            "consecutive": self.consecutive,
            "signal": self.signal,
            "eta_feature": self.eta_feature,
            "guards": [[g.feature, g.comparison, g.value] for g in self.guards],
        }

    @classmethod
    def from_json(cls, document: Any) -> Rule:
        """A rule from the model file, checked whole (`ValueError` names what is wrong)."""
        if not isinstance(document, dict):
            raise ValueError("a forecast rule must be an object")
        try:
            rule = cls(
                name=str(document["name"]),
                feature=str(document["feature"]),
                comparison=str(document["comparison"]),
                threshold=float(document["threshold"]),
                consecutive=int(document["consecutive"]),
                signal=str(document["signal"]),
                eta_feature=str(document["eta_feature"]),
                guards=tuple(Guard(str(f), str(c), float(v)) for f, c, v in document.get("guards", [])),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"forecast rule {document.get('name')!r} is damaged ({exc})") from None
        features = [rule.feature, rule.eta_feature, *(g.feature for g in rule.guards)]
        unknown = [f for f in features if f not in _INDEX]
        if unknown:
            raise ValueError(f"forecast rule {rule.name!r} reads unknown features: {', '.join(unknown)}")
        comparisons = [rule.comparison, *(g.comparison for g in rule.guards)]
        if any(c not in _COMPARE for c in comparisons) or rule.consecutive < 1:
            raise ValueError(f"forecast rule {rule.name!r}: comparisons must be < or >, consecutive >= 1")
        return rule


@dataclass(frozen=True)
class RuleChoices:
    """A catalogue entry: a rule and the thresholds and run lengths fitting may give it,
    loosest threshold last."""

    rule: Rule
    thresholds: tuple[float, ...]
    runs: tuple[int, ...] = (2, 4, 8, 16, 32, 60)


_ETA_GRID = (3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 25.0, 30.0, 40.0, 50.0, 60.0)
_BURN_GRID = (28.8, 21.6, 14.4, 10.8, 7.2, 5.0)  # times the budget
_DRIFT_GRID = (3.0, 2.5, 2.0, 1.75, 1.5, 1.35, 1.25)
_HALF_FULL = {"cpu": Guard("cpu_5m", ">", 0.5), "db_pool": Guard("db_pool_5m", ">", 0.5)}
# Each request holds 15% more of the gauge than half an hour before.
_COSTLIER = {
    "cpu": Guard("cpu_per_request_drift", ">", 1.15),
    "db_pool": Guard("db_pool_per_request_drift", ">", 1.15),
}
# A page pair's projection counts only while its short window burns above the factor: the long
# window stays above it for up to its length after an incident is over, with nothing burning.
# A blip keeps the 5m window hot for minutes after it stopped: the last minute must burn too.
_BURNING = {
    "err_eta_1h_pair": (Guard("err_burn_5m", ">", 14.4), Guard("err_burn_1m", ">", 14.4)),
    "err_eta_6h_pair": (Guard("err_burn_30m", ">", 6.0), Guard("err_burn_5m", ">", 6.0)),
    "slow_eta_1h_pair": (Guard("slow_burn_5m", ">", 14.4), Guard("slow_burn_1m", ">", 14.4)),
    "slow_eta_6h_pair": (Guard("slow_burn_30m", ">", 6.0), Guard("slow_burn_5m", ">", 6.0)),
}


def _eta_rule(name: str, feature: str, signal: str, guards: tuple[Guard, ...] = ()) -> RuleChoices:
    return RuleChoices(Rule(name, feature, "<", _ETA_GRID[0], 2, signal, feature, guards), _ETA_GRID)


RULES: tuple[RuleChoices, ...] = (
    # saturation: the gauge reaches 1.0 at a pace every time scale agrees on, or compounding
    _eta_rule("db_pool_saturation", "db_pool_eta_full_sure", "db_pool full"),
    _eta_rule("db_pool_compound", "db_pool_eta_full_exp", "db_pool full (compound pace)", (_HALF_FULL["db_pool"],)),
    _eta_rule("cpu_saturation", "cpu_eta_full_sure", "cpu saturated"),
    _eta_rule("cpu_compound", "cpu_eta_full_exp", "cpu saturated (compound pace)", (_HALF_FULL["cpu"],)),
    # per request: a leak, slower queries or costlier requests, not more traffic (Little's law)
    RuleChoices(
        Rule(
            "db_pool_per_request",
            "db_pool_per_request_drift",
            ">",
            _DRIFT_GRID[0],
            2,
            "db_pool per request up",
            "db_pool_eta_full_exp",
            (_HALF_FULL["db_pool"],),
        ),
        _DRIFT_GRID,
    ),
    RuleChoices(
        Rule(
            "cpu_per_request",
            "cpu_per_request_drift",
            ">",
            _DRIFT_GRID[0],
            2,
            "cpu per request up",
            "cpu_eta_full_exp",
            (_HALF_FULL["cpu"],),
        ),
        _DRIFT_GRID,
    ),
    # latency: p99 reaching the SLO's threshold at its compound pace, while each request costs more
    # of the pool (held longer: a slow dependency, slow queries) or of CPU (GC, a costlier build);
    # p99 rising with traffic alone is a surge, judged by the saturation rules
    _eta_rule("p99_threshold_pool", "p99_eta_threshold", "p99 reaches the latency threshold", (_COSTLIER["db_pool"],)),
    _eta_rule("p99_threshold_cpu", "p99_eta_threshold", "p99 reaches the latency threshold", (_COSTLIER["cpu"],)),
    # the burn-rate page itself, projected: each page pair crossing its factor at the current pace
    _eta_rule("err_fast_pair", "err_eta_1h_pair", "5xx burn reaches 14.4x over 1h", _BURNING["err_eta_1h_pair"]),
    _eta_rule("err_slow_pair", "err_eta_6h_pair", "5xx burn reaches 6x over 6h", _BURNING["err_eta_6h_pair"]),
    _eta_rule("slow_fast_pair", "slow_eta_1h_pair", "slow burn reaches 14.4x over 1h", _BURNING["slow_eta_1h_pair"]),
    _eta_rule("slow_slow_pair", "slow_eta_6h_pair", "slow burn reaches 6x over 6h", _BURNING["slow_eta_6h_pair"]),
    # the burn's trajectory: where the 1h window will be in 30 minutes if the last 5 minutes go on
    RuleChoices(
        Rule(
            "err_trajectory",
            "err_burn_1h_in_30m",
            ">",
            _BURN_GRID[0],
            2,
            "5xx burn heads for 14.4x over 1h",
            "err_eta_1h_pair",
        ),
        _BURN_GRID,
    ),
    RuleChoices(
        Rule(
            "slow_trajectory",
            "slow_burn_1h_in_30m",
            ">",
            _BURN_GRID[0],
            2,
            "slow burn heads for 14.4x over 1h",
            "slow_eta_1h_pair",
        ),
        _BURN_GRID,
    ),
)


@dataclass(frozen=True)
class Firing:
    """Why a page fired: the rule, the signal and the projected minutes until its limit."""

    rule: str
    signal: str
    minutes: float

    def describe(self) -> str:
        return f"{self.signal} in ~{self.minutes:.0f}m (rule {self.rule})"


def run_lengths(held: Bools) -> Ints:
    """Per row (and column): how many rows running the condition has held, this one included."""
    held2 = np.atleast_2d(held.T).T if held.ndim == 1 else held
    cum = np.cumsum(held2, axis=0, dtype=np.int64)
    reset = np.where(held2, 0, cum)
    runs = cum - np.maximum.accumulate(reset, axis=0)
    return runs.reshape(held.shape)


def page_times(timestamps: npt.NDArray[Any], paging: Bools) -> list[float]:
    """The pages of a pager paging on these rows: `merge_pages` over every paging row's time, taken
    run by run rather than row by row (a rule can hold for hours; its pages are one every 10 min)."""
    rows = np.flatnonzero(paging)
    if rows.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(rows) > 1)
    firsts, lasts = rows[np.r_[0, breaks + 1]], rows[np.r_[breaks, rows.size - 1]]
    pages: list[float] = []
    for first, last in zip(firsts.tolist(), lasts.tolist(), strict=True):
        times = timestamps[first : last + 1]
        start = 0 if not pages else int(np.searchsorted(times, pages[-1] + PAGE_GAP_SECONDS))
        while start < times.shape[0]:
            pages.append(float(times[start]))
            start = int(np.searchsorted(times, pages[-1] + PAGE_GAP_SECONDS))
    return pages


@dataclass(frozen=True)
class ForecastPager:
    rules: tuple[Rule, ...]

    def ready(self, features: Features) -> Bools:
        """(rows, rules): each rule's condition has held for its run length at this row."""
        columns = [run_lengths(rule.holds(features)) >= rule.consecutive for rule in self.rules]
        return np.column_stack(columns) if columns else np.zeros((features.shape[0], 0), dtype=bool)

    def fired(self, features: Features) -> Bools:
        """Per row: some rule is ready (the pager is paging)."""
        return np.asarray(self.ready(features).any(axis=1))

    def pages(self, scenario: Scenario, features: Features) -> list[float]:
        return page_times(scenario.timestamps, self.fired(features))

    def why(self, row: Features, ready: Bools) -> Firing:
        """The ready rule whose signal is projected to reach its limit soonest."""
        candidates = [(rule.eta_minutes(row), i) for i, rule in enumerate(self.rules) if ready[i]]
        minutes, index = min(candidates)
        return Firing(self.rules[index].name, self.rules[index].signal, minutes)

    def to_json(self) -> dict[str, Any]:
        return {"rules": [rule.to_json() for rule in self.rules], "min_history_hours": MIN_HISTORY_HOURS}

    @classmethod
    def from_json(cls, document: Any) -> ForecastPager:
        if not isinstance(document, dict) or not isinstance(document.get("rules"), list):
            raise ValueError("the forecast pager must hold a list of rules")
        return cls(tuple(Rule.from_json(rule) for rule in document["rules"]))


class LiveRules:
    """The forecast pager one step at a time, for `streams` independent streams."""

    def __init__(self, pager: ForecastPager, streams: int) -> None:
        self.pager = pager
        self._runs = np.zeros((streams, len(pager.rules)), dtype=np.int64)
        self._needed = np.array([rule.consecutive for rule in pager.rules], dtype=np.int64)

    def push(self, features: Features) -> list[Firing | None]:
        """One step's features (streams, n_features): per stream, why it pages now, or None."""
        held = [rule.holds(features) for rule in self.pager.rules]
        if held:
            now = np.column_stack(held)
            self._runs = np.where(now, self._runs + 1, 0)
        ready = self._runs >= self._needed
        return [self.pager.why(features[i], ready[i]) if ready[i].any() else None for i in range(features.shape[0])]


# -- fitting ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleFit:
    rule: Rule
    score: PageScore  # the rule alone on the training scenarios
    pages: dict[str, list[float]]  # its pages alone, per scenario


@dataclass(frozen=True)
class PagerFit:
    pager: ForecastPager
    score: PageScore  # the whole pager on its training scenarios
    rules: tuple[RuleFit, ...]  # each chosen rule alone on them


def _score(
    paging: Sequence[Bools],
    scenarios: Sequence[Scenario],
    baseline: dict[str, list[float]],
) -> tuple[PageScore, dict[str, list[float]]]:
    pages = {s.name: page_times(s.timestamps, p) for s, p in zip(scenarios, paging, strict=True)}
    return score_pages(scenarios, pages, baseline=baseline), pages


def _rule_settings(
    choices: RuleChoices, scenarios: Sequence[Scenario], features: Sequence[Features], baseline: dict[str, list[float]]
) -> list[RuleFit]:
    """The settings of one catalogue rule worth trying: scored alone on the scenarios, those that
    no other setting beats on both false pages and warning (the lead it gives, `_value`)."""
    fits = []
    for threshold in choices.thresholds:
        rule = replace(choices.rule, threshold=threshold)
        runs = [run_lengths(rule.holds(f)) for f in features]
        for consecutive in choices.runs:
            score, pages = _score([r >= consecutive for r in runs], scenarios, baseline)
            fits.append(RuleFit(replace(rule, consecutive=consecutive), score, pages))
    fits.sort(key=lambda fit: (fit.score.false_pages, -_value(fit.score)))
    front: list[RuleFit] = []
    for fit in fits:
        if not front or _value(fit.score) > _value(front[-1].score):
            front.append(fit)
    return front


def _within(score: PageScore) -> bool:
    return score.false_pages_per_week <= TARGET_FALSE_PER_WEEK and score.precision >= TARGET_PRECISION


# Each incident detected is worth an hour of lead: recall first, then lead over the burn-rate
# page, each incident's counted up to half an hour (many incidents a little ahead, rather than
# a few slow burns hours ahead).
_DETECTED_SECONDS = 3600.0
_LEAD_CAP_SECONDS = 1800.0


def _value(score: PageScore) -> float:
    return _DETECTED_SECONDS * score.detected + float(
        sum(min(lead, _LEAD_CAP_SECONDS) for lead in score.lead_vs_baseline_s)
    )


def _union(chosen: dict[int, RuleFit], names: Sequence[str]) -> dict[str, list[float]]:
    """The pages of several rules together (their pages merged: close to paging on the union of
    their rows, and far cheaper)."""
    return {name: merge_pages([t for fit in chosen.values() for t in fit.pages[name]]) for name in names}


def fit_pager(
    scenarios: Sequence[Scenario],
    features: Sequence[Features],
    baseline: dict[str, list[float]],
    catalogue: Sequence[RuleChoices] = RULES,
    progress: Callable[[str, int, int], None] | None = None,
) -> PagerFit:
    """Thresholds and run lengths for the rules, from these (training) scenarios alone.

    Greedy, from no rule at all: each round tries every rule at each of its settings (those no
    other setting of it beats alone on both false pages and warning) and takes the change that
    gains the most (`_value`: incidents detected, then lead over the burn-rate page) while the
    pager as a whole keeps precision >= `TARGET_PRECISION` and false pages <=
    `TARGET_FALSE_PER_WEEK` on the training scenarios. It stops when no change gains; a rule
    never chosen is left out.
    """
    fronts: list[list[RuleFit]] = []
    for n, choices in enumerate(catalogue):
        fronts.append(_rule_settings(choices, scenarios, features, baseline))
        if progress:
            progress("rules", n + 1, len(catalogue))
    names = [s.name for s in scenarios]
    chosen: dict[int, RuleFit] = {}
    current = -1.0
    while True:
        best: tuple[float, int, RuleFit] | None = None
        for i, front in enumerate(fronts):
            for fit in front:
                if chosen.get(i) is fit:
                    continue
                score = score_pages(scenarios, _union({**chosen, i: fit}, names), baseline=baseline)
                value = _value(score)
                if _within(score) and value > current and (best is None or value > best[0]):
                    best = (value, i, fit)
        if best is None:
            break
        current, i, fit = best
        chosen[i] = fit
    ordered = [chosen[i] for i in sorted(chosen)]
    pager = ForecastPager(tuple(fit.rule for fit in ordered))
    score, _ = _score([pager.fired(f) for f in features], scenarios, baseline)
    return PagerFit(pager, score, tuple(ordered))
