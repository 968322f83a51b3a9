"""`nova alerts detect`: run the metric anomaly detector over a NAB data folder, write NAB results, score them."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from alerts.anomaly.detector import QUIET, DetectorSettings, anomaly_scores
from alerts.anomaly.nab import (
    ALERT_THRESHOLD,
    PROFILES,
    CorpusScore,
    NabDataError,
    Profile,
    Series,
    load_corpus,
    load_profiles,
    optimise_threshold,
    score_detector,
)
from alerts.anomaly.published import ALL_PUBLIC, PROFILE_ORDER, PUBLIC_FILES, PUBLISHED, SCOPE_FILES
from nova.output import console, counted_progress, fail

DETECTOR_NAME = "nova"  # NAB splits result file names on "_": a detector name must not contain one

NabDir = Annotated[
    Path,
    typer.Option(
        "--nab",
        help="NAB data folder: <category>/<file>.csv, with combined_windows.json to score",
        show_default=False,
    ),
]
OutDir = Annotated[
    Path,
    typer.Option(
        "--out",
        help="Results folder: writes <detector>/<category>/<detector>_<file>.csv as NAB's results",
        show_default=False,
    ),
]
ProfileNames = Annotated[
    list[str] | None,
    typer.Option("--profile", help="NAB profile to score (repeat; default: every profile)", show_default=False),
]
DetectorName = Annotated[str, typer.Option("--detector", help="Detector name in the results paths (no '_')")]
PerFile = Annotated[bool, typer.Option("--per-file/--no-per-file", help="Print the score of every file")]
Quiet = Annotated[
    bool, typer.Option("--quiet-settings", help="Fewer alerts on noisy metrics, lower recall (see alerts/README.md)")
]


def detect(
    nab: NabDir,
    out: OutDir,
    profile: ProfileNames = None,
    detector: DetectorName = DETECTOR_NAME,
    per_file: PerFile = True,
    quiet_settings: Quiet = False,
) -> None:
    """Score every NAB series with the anomaly detector (threshold 0.5), write NAB results, print NAB scores."""
    if not detector or "_" in detector or "/" in detector:
        raise fail("--detector: give a name without '_' or '/' (NAB splits result names on '_')")
    try:
        corpus = load_corpus(nab)
        profiles = _profiles(nab, profile)
    except NabDataError as exc:
        raise fail(str(exc)) from None

    settings = QUIET if quiet_settings else DetectorSettings()
    started = time.perf_counter()
    scores: dict[str, list[float]] = {}
    with counted_progress() as progress:
        task = progress.add_task("detecting", total=len(corpus.series))
        for series in corpus.series:
            progress.update(task, description=series.file_name)
            scores[series.name] = anomaly_scores(series.values, settings)
            try:
                _write_results(out, detector, series, scores[series.name])
            except OSError as exc:
                raise fail(f"--out: cannot write results ({exc.strerror or exc})", 1) from None
            progress.advance(task)
    elapsed = time.perf_counter() - started
    console.print(
        f"{len(corpus.series)} series, {sum(len(s.values) for s in corpus.series)} rows in {elapsed:.1f}s; "
        f"results in {out / detector}"
    )
    if not corpus.labelled:
        console.print("no combined_windows.json in the data folder: results written, not scored")
        return
    results = score_detector(corpus.series, scores, profiles, ALERT_THRESHOLD)
    if per_file:
        console.print(_file_table(results[profiles[0].name]))
    console.print(_profile_table(corpus.series, scores, results))
    console.print(_category_table(corpus.series, scores, profiles))


def _profiles(root: Path, names: Sequence[str] | None) -> tuple[Profile, ...]:
    path = root / "profiles.json"
    available = load_profiles(path) if path.is_file() else PROFILES
    if not names:
        return available
    by_name = {p.name: p for p in available}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise NabDataError(f"--profile: unknown profile {unknown[0]!r} (known: {', '.join(by_name)})")
    return tuple(by_name[n] for n in dict.fromkeys(names))


def _write_results(out: Path, detector: str, series: Series, scores: Sequence[float]) -> Path:
    """NAB's results format: `timestamp,value,anomaly_score,label`, one row per data row."""
    path = out / detector / series.category / f"{detector}_{series.file_name}"
    path.parent.mkdir(parents=True, exist_ok=True)
    labels = series.labels()
    lines = ["timestamp,value,anomaly_score,label"]
    lines += [
        f"{t},{v!r},{s!r},{label}"  # repr: exact, so a score just under 0.5 never reads back as 0.5
        for t, v, s, label in zip(series.timestamps, series.values, scores, labels, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _file_table(result: CorpusScore) -> Table:
    table = Table(title=f"NAB score per file ({result.profile.name} profile, threshold {result.threshold:g})")
    for column in ("file", "score", "TP rows", "FP rows", "FN rows"):
        table.add_column(column, justify="left" if column == "file" else "right")
    for f in result.files:
        table.add_row(f.name, f"{f.score:.3f}", str(f.tp), str(f.fp), str(f.fn))
    return table


def _category_table(series: Sequence[Series], scores: dict[str, list[float]], profiles: Sequence[Profile]) -> Table:
    """Every category at the fixed threshold, and the whole folder, beside the published detectors' scores.

    A category without windows cannot be normalised (a detector that never fires is also perfect there):
    its row shows the raw score, 0 when nothing fired and negative per false alarm.
    """
    categories = sorted({s.category for s in series})
    table = Table(title="NAB score per category at threshold 0.5, beside published detectors (NAB-optimised)")
    table.add_column("scope")
    table.add_column("detector")
    for profile in profiles:
        table.add_column(profile.name, justify="right")
    scopes = [(c, [s for s in series if s.category == c]) for c in categories]
    whole = ALL_PUBLIC if len(series) == PUBLIC_FILES and len(categories) == 6 else f"all {len(series)} files"
    for scope, members in [*scopes, (whole, list(series))]:
        results = score_detector(members, scores, profiles, ALERT_THRESHOLD)
        cells = []
        for profile in profiles:
            result = results[profile.name]
            windowless = result.perfect == result.null
            cells.append(f"raw {result.raw:.2f}" if windowless else f"[bold]{result.normalised:.2f}[/bold]")
        table.add_row(f"{scope} ({len(members)} files)", "this detector", *cells)
        anchors = PUBLISHED.get(scope, {}) if SCOPE_FILES.get(scope) == len(members) else {}
        for name, figures in anchors.items():
            by_profile = dict(zip(PROFILE_ORDER, figures, strict=True))
            table.add_row("", name, *(f"{by_profile[p.name]:.2f}" if p.name in by_profile else "-" for p in profiles))
    return table


def _profile_table(series: Sequence[Series], scores: dict[str, list[float]], results: dict[str, CorpusScore]) -> Table:
    table = Table(title="NAB normalised score (0 = never fires, 100 = perfect); this subset, not the whole benchmark")
    for column in ("profile", "score @0.5", "raw", "null", "perfect", "NAB-optimised threshold", "score @optimised"):
        table.add_column(column, justify="left" if column == "profile" else "right")
    triples = [(s.name, scores[s.name], s.windows) for s in series]
    for name, result in results.items():
        threshold, raw = optimise_threshold(triples, result.profile)
        optimised = 100.0 * (raw - result.null) / (result.perfect - result.null)
        table.add_row(
            name,
            f"[bold]{result.normalised:.2f}[/bold]",
            f"{result.raw:.3f}",
            f"{result.null:.1f}",
            f"{result.perfect:.1f}",
            f"{threshold:.4f}",
            f"{optimised:.2f}",
        )
    return table
