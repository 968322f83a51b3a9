"""Leave-one-category-out validation of the anomaly detector's one configuration on NAB's public categories.

NAB's rule is one configuration for the whole corpus, and its seventh category is held back, so a figure that
says how the detector does on a category it never saw has to come from categories it was not tuned on. For
each of the six public categories: pick the best configuration of a small grid on the other five (their
pooled NAB standard score, as NAB pools a corpus), score the sixth with it. The deployed configuration is
the one these six folds choose most often (ties: the best mean held-out score), so the folds choose it, not
the pooled score on all 51 files.

`python -m alerts.anomaly.loco --nab ../shared/data/nab --jobs 2` prints every fold (36 configurations x 51
files; about 5 minutes on 2 idle cores).
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from alerts.anomaly.detector import DetectorSettings, anomaly_scores
from alerts.anomaly.nab import PROFILES, NabCorpus, NabDataError, Profile, load_corpus, score_corpus

# The grid: novelty threshold (share of the range), history (two or four weeks of 5-minute rows), the local
# surprise's factor over the largest earlier one and how many latest values it averages.
GRID: dict[str, tuple[float | int, ...]] = {
    "novelty_threshold": (0.032, 0.0267, 0.022),
    "history_rows": (4032, 8064),
    "local_factor": (1.4, 1.6, 1.8),
    "local_mean_rows": (1, 3),
}


@dataclass(frozen=True)
class CategoryScore:
    """One configuration's raw NAB score on one category, with that category's null and perfect scores."""

    raw: float
    null: float
    perfect: float

    @property
    def normalised(self) -> float | None:
        """NAB's normalised score; None for a category without windows (its raw score says how much it cost)."""
        if self.perfect == self.null:
            return None
        return 100.0 * (self.raw - self.null) / (self.perfect - self.null)


def pooled(scores: Sequence[CategoryScore]) -> float:
    """NAB's normalised score of several categories scored as one corpus."""
    raw = sum(s.raw for s in scores)
    null = sum(s.null for s in scores)
    perfect = sum(s.perfect for s in scores)
    return 100.0 * (raw - null) / (perfect - null)


@dataclass(frozen=True)
class Fold:
    held_out: str
    chosen: DetectorSettings
    train_score: float  # pooled on the other five
    held_out_score: CategoryScore


@dataclass(frozen=True)
class LocoResult:
    folds: tuple[Fold, ...]
    final: DetectorSettings
    final_scores: dict[str, CategoryScore]  # the final configuration, per category

    def loco_pooled(self) -> float:
        """Every category scored by the configuration chosen without it, pooled like NAB's corpus."""
        return pooled([f.held_out_score for f in self.folds])

    def final_pooled(self) -> float:
        return pooled(list(self.final_scores.values()))


def grid(base: DetectorSettings | None = None) -> list[DetectorSettings]:
    base = base or DetectorSettings()
    names = list(GRID)
    settings: list[DetectorSettings] = []
    for values in itertools.product(*(GRID[n] for n in names)):
        changes: dict[str, Any] = dict(zip(names, values, strict=True))
        settings.append(replace(base, **changes))
    return settings


def score_categories(
    corpus: NabCorpus, settings: DetectorSettings, profile: Profile = PROFILES[0]
) -> dict[str, CategoryScore]:
    """One configuration's NAB score per category at the fixed threshold."""
    by_category: dict[str, list[tuple[str, Sequence[float], Sequence[object]]]] = {}
    for series in corpus.series:
        scores = anomaly_scores(series.values, settings)
        by_category.setdefault(series.category, []).append((series.name, scores, series.windows))
    result = {}
    for category, triples in sorted(by_category.items()):
        corpus_score = score_corpus(triples, profile)  # type: ignore[arg-type]
        result[category] = CategoryScore(corpus_score.raw, corpus_score.null, corpus_score.perfect)
    return result


def _score_one(args: tuple[Path, DetectorSettings]) -> dict[str, CategoryScore]:
    root, settings = args
    return score_categories(load_corpus(root), settings)


def leave_one_category_out(
    table: Sequence[tuple[DetectorSettings, dict[str, CategoryScore]]],
) -> LocoResult:
    """The folds, and the configuration they choose most often, from every configuration's category scores."""
    categories = sorted(table[0][1])
    folds = []
    for held_out in categories:
        train = [c for c in categories if c != held_out]
        settings, scores = max(table, key=lambda item: pooled([item[1][c] for c in train]))
        folds.append(Fold(held_out, settings, pooled([scores[c] for c in train]), scores[held_out]))
    votes = Counter(f.chosen for f in folds)

    def rank(settings: DetectorSettings) -> tuple[int, float]:
        held = [f.held_out_score.normalised for f in folds if f.chosen == settings]
        mean = sum(h for h in held if h is not None) / max(1, sum(h is not None for h in held))
        return votes[settings], mean

    final = max(votes, key=rank)
    final_scores = next(scores for settings, scores in table if settings == final)
    return LocoResult(tuple(folds), final, final_scores)


def _describe(settings: DetectorSettings) -> str:
    return ", ".join(f"{name}={getattr(settings, name)}" for name in GRID)


def _figure(score: CategoryScore) -> str:
    normalised = score.normalised
    return f"{normalised:.2f}" if normalised is not None else f"raw {score.raw:.3f} (no windows; 0 = no alarm)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nab", type=Path, required=True, help="NAB data folder with combined_windows.json")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    args = parser.parse_args(argv)
    try:
        load_corpus(args.nab)
    except NabDataError as exc:
        print(exc, file=sys.stderr)
        return 2
    configurations = grid()
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(_score_one, [(args.nab, s) for s in configurations]))
    result = leave_one_category_out(list(zip(configurations, results, strict=True)))
    print(f"{len(configurations)} configurations, NAB standard profile, fixed threshold 0.5")
    for fold in result.folds:
        print(
            f"held out {fold.held_out}: chosen on the other five ({fold.train_score:.2f} there): "
            f"{_describe(fold.chosen)}; held-out score {_figure(fold.held_out_score)}"
        )
    print(f"every category scored by the configuration chosen without it, pooled: {result.loco_pooled():.2f}")
    print(f"final configuration (chosen by most folds): {_describe(result.final)}")
    for category, score in result.final_scores.items():
        print(f"  {category}: {_figure(score)}")
    print(f"  all {sum(1 for _ in result.final_scores)} categories pooled: {result.final_pooled():.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
