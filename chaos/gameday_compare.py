"""`nova gameday compare A B`: two game-day folders, phase by phase, and whether B is significantly worse.

For every phase both game days ran: availability (failed attempts, Fisher's exact test on the
two proportions), latency (the load's own samples, from the scheduled send when the load was an
open model, with a one-sided Mann-Whitney U test that B's latencies are larger), p99, time to
detect (per alert), time to recover, and the error budget burned. B is *significantly worse* in
a phase when a test says so at `ALPHA` and the difference is big enough to matter: for latency a
Vargha-Delaney effect size A12 = P(B > A) of at least `SMALL_EFFECT` (with thousands of samples a
tiny shift is "significant", and a release manager does not want to be paged for it).

Everything is read through the typed homes: `report.json` as `GameDayResult`, each phase's load
samples with `loadtests.samples`.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from chaos.errors import ChaosError
from chaos.gameday_model import GameDayResult, PhaseResult
from chaos.gameday_report import sanitize
from loadtests.samples import read_samples
from slo.document import Document, Paragraph, Pill, Row, Section, Table, Text, render_html, render_markdown

ALPHA = 0.01
SMALL_EFFECT = 0.56  # Vargha and Delaney's threshold of a small effect
REPORT_FILE = "report.json"


class CompareError(ChaosError):
    """A folder is not a game day's (no report.json, or one that cannot be read)."""


@dataclass(frozen=True)
class LatencyDifference:
    samples_a: int
    samples_b: int
    p99_a_ms: float
    p99_b_ms: float
    median_a_ms: float
    median_b_ms: float
    u_statistic: float
    p_value: float  # one-sided: B's latencies are larger than A's
    effect: float  # A12 = P(a latency of B > one of A), ties counted half

    @property
    def worse(self) -> bool:
        return self.p_value < ALPHA and self.effect >= SMALL_EFFECT


@dataclass(frozen=True)
class AvailabilityDifference:
    requests_a: int
    failures_a: int
    requests_b: int
    failures_b: int
    p_value: float  # one-sided Fisher's exact test: B fails more often than A

    @property
    def worse(self) -> bool:
        return self.p_value < ALPHA


@dataclass(frozen=True)
class PhaseComparison:
    phase: str
    availability: AvailabilityDifference | None
    latency: LatencyDifference | None
    detection_a: dict[str, float] = field(default_factory=dict)
    detection_b: dict[str, float] = field(default_factory=dict)
    recovery_a: float | None = None
    recovery_b: float | None = None
    budget_a: float | None = None  # the most any SLO burned in the phase, share of the 30-day budget
    budget_b: float | None = None

    @property
    def reasons(self) -> list[str]:
        """Why B is significantly worse in this phase; empty when it is not."""
        found = []
        if self.latency is not None and self.latency.worse:
            found.append(
                f"latency: p99 {self.latency.p99_a_ms:.1f} -> {self.latency.p99_b_ms:.1f} ms "
                f"(Mann-Whitney U p = {self.latency.p_value:.2g}, A12 = {self.latency.effect:.2f})"
            )
        if self.availability is not None and self.availability.worse:
            figures = self.availability
            found.append(
                f"availability: {figures.failures_a}/{figures.requests_a} -> {figures.failures_b}/{figures.requests_b} "
                f"failed (Fisher's exact p = {figures.p_value:.2g})"
            )
        return found


@dataclass(frozen=True)
class Comparison:
    a: str
    b: str
    phases: list[PhaseComparison]
    only_in_a: list[str]
    only_in_b: list[str]

    @property
    def worse_phases(self) -> list[str]:
        return [phase.phase for phase in self.phases if phase.reasons]

    @property
    def worse(self) -> bool:
        return bool(self.worse_phases)

    def to_json(self) -> dict[str, Any]:
        document = asdict(self)
        for entry, phase in zip(document["phases"], self.phases, strict=True):
            entry["worse"] = bool(phase.reasons)
            entry["reasons"] = phase.reasons
        document["worse"] = self.worse
        document["worse_phases"] = self.worse_phases
        document["alpha"] = ALPHA
        document["small_effect"] = SMALL_EFFECT
        return document


def read_game_day(folder: Path) -> GameDayResult:
    path = folder / REPORT_FILE
    try:
        return GameDayResult.from_json(json.loads(path.read_text()))
    except FileNotFoundError:
        raise CompareError(f"{folder}: no {REPORT_FILE} (not a game-day folder)") from None
    except (OSError, json.JSONDecodeError, TypeError, KeyError, AttributeError) as exc:
        raise CompareError(f"{path}: not a game-day report ({exc})") from None


def compare_game_days(a: Path, b: Path) -> Comparison:
    first, second = read_game_day(a), read_game_day(b)
    phases_a = {phase.name: phase for phase in first.phases}
    phases_b = {phase.name: phase for phase in second.phases}
    common = [name for name in phases_a if name in phases_b]
    return Comparison(
        a=str(a),
        b=str(b),
        phases=[_compare_phase(a, phases_a[name], b, phases_b[name]) for name in common],
        only_in_a=[name for name in phases_a if name not in phases_b],
        only_in_b=[name for name in phases_b if name not in phases_a],
    )


def _compare_phase(folder_a: Path, a: PhaseResult, folder_b: Path, b: PhaseResult) -> PhaseComparison:
    from scipy.stats import fisher_exact  # here, not at the top: `nova` imports this module for every command

    availability = None
    if a.load is not None and b.load is not None and a.load.requests and b.load.requests:
        table = [
            [b.load.failures, b.load.requests - b.load.failures],
            [a.load.failures, a.load.requests - a.load.failures],
        ]
        _odds, p_value = fisher_exact(table, alternative="greater")
        availability = AvailabilityDifference(
            a.load.requests, a.load.failures, b.load.requests, b.load.failures, float(p_value)
        )
    return PhaseComparison(
        phase=a.name,
        availability=availability,
        latency=latency_difference(_latencies(folder_a, a), _latencies(folder_b, b)),
        detection_a=dict(a.detection),
        detection_b=dict(b.detection),
        recovery_a=a.recovery,
        recovery_b=b.recovery,
        budget_a=_most_burned(a),
        budget_b=_most_burned(b),
    )


def latency_difference(a: np.ndarray, b: np.ndarray) -> LatencyDifference | None:
    """The one-sided Mann-Whitney U test that `b`'s latencies are larger than `a`'s; None without samples."""
    if a.size == 0 or b.size == 0:
        return None
    from scipy.stats import mannwhitneyu

    result = mannwhitneyu(b, a, alternative="greater")
    u = float(result.statistic)
    return LatencyDifference(
        samples_a=int(a.size),
        samples_b=int(b.size),
        p99_a_ms=float(np.percentile(a, 99, method="higher")),
        p99_b_ms=float(np.percentile(b, 99, method="higher")),
        median_a_ms=float(np.median(a)),
        median_b_ms=float(np.median(b)),
        u_statistic=u,
        p_value=float(result.pvalue),
        effect=u / (a.size * b.size),
    )


def _latencies(folder: Path, phase: PhaseResult) -> np.ndarray:
    """The phase's load latencies (from the scheduled send in an open-model run), ms."""
    if phase.load is None:
        return np.zeros(0)
    path = Path(phase.load.results_dir)
    path = path if path.is_absolute() else folder / path
    samples_file = path / "samples.csv"
    if not samples_file.is_file():
        return np.zeros(0)
    return np.array([s.corrected_millis for s in read_samples(samples_file)], dtype=np.float64)


def _most_burned(phase: PhaseResult) -> float | None:
    burned = [sli.budget_burned for sli in phase.slis if sli.budget_burned is not None]
    return max(burned) if burned else None


# -- files -----------------------------------------------------------------------------------------

COLUMNS = (
    "Phase",
    "Verdict",
    "Failed A",
    "Failed B",
    "p99 A ms",
    "p99 B ms",
    "Mann-Whitney p",
    "A12",
    "TTD A",
    "TTD B",
    "TTR A",
    "TTR B",
    "Budget A",
    "Budget B",
)


def _rows(comparison: Comparison) -> list[list[str]]:
    rows = []
    for phase in comparison.phases:
        latency, availability = phase.latency, phase.availability
        rows.append(
            [
                phase.phase,
                "B worse: " + "; ".join(phase.reasons) if phase.reasons else "no significant regression",
                f"{availability.failures_a}/{availability.requests_a}" if availability else "—",
                f"{availability.failures_b}/{availability.requests_b}" if availability else "—",
                f"{latency.p99_a_ms:.1f}" if latency else "—",
                f"{latency.p99_b_ms:.1f}" if latency else "—",
                f"{latency.p_value:.2g}" if latency else "—",
                f"{latency.effect:.2f}" if latency else "—",
                _detection(phase.detection_a),
                _detection(phase.detection_b),
                _seconds(phase.recovery_a),
                _seconds(phase.recovery_b),
                _share(phase.budget_a),
                _share(phase.budget_b),
            ]
        )
    return rows


def _detection(detection: dict[str, float]) -> str:
    return ", ".join(f"{alert} {seconds:.0f} s" for alert, seconds in detection.items()) or "—"


def _seconds(value: float | None) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:.0f} s"


def _share(value: float | None) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:.4%}"


def _headline(comparison: Comparison) -> str:
    if comparison.worse:
        return f"B is significantly worse than A in: {', '.join(comparison.worse_phases)}"
    return "B is not significantly worse than A in any phase"


def comparison_document(comparison: Comparison) -> Document:
    """The comparison as a report document: the verdict, the tests used, one row per phase."""
    rows = [Row(row, "fail" if row[1].startswith("B worse") else None) for row in _rows(comparison)]
    only = [
        Paragraph((Text(f"{label}: ", "strong"), Text(", ".join(names))))
        for label, names in (("Only in A", comparison.only_in_a), ("Only in B", comparison.only_in_b))
        if names
    ]
    return Document(
        title="Game day comparison",
        verdict=Pill("B WORSE", "failed") if comparison.worse else Pill("NOT WORSE", "passed"),
        generator="nova gameday compare",
        facts=[
            ("A", comparison.a),
            ("B", comparison.b),
            ("Verdict", _headline(comparison)),
            (
                "Tests",
                f"one-sided Mann-Whitney U on latency, Fisher's exact on failures, at {ALPHA:g}; "
                f"latency also needs A12 >= {SMALL_EFFECT:g}",
            ),
        ],
        sections=[
            Section(
                "Phases",
                [
                    Table(
                        COLUMNS,
                        rows,
                        empty="The two game days have no phase in common.",
                        numeric=frozenset({4, 5, 6, 7}),
                        css="checks",
                    ),
                    *only,
                ],
                anchor="phases",
            )
        ],
    )


def write_comparison(comparison: Comparison, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    files = [out / "compare.json", out / "compare.md", out / "compare.html"]
    files[0].write_text(json.dumps(sanitize(comparison.to_json()), indent=2, allow_nan=False) + "\n")
    page = comparison_document(comparison)
    files[1].write_text(render_markdown(page), encoding="utf-8")
    files[2].write_text(render_html(page), encoding="utf-8")
    return files
