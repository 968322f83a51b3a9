"""NAB's scoring method, re-implemented: profiles, windows, scaled sigmoid, probation, normalisation.

A faithful port of the Numenta Anomaly Benchmark scorer (numenta/NAB, MIT licence):

- `nab/sweeper.py` (`scaledSigmoid`, `Sweeper._getProbationaryLength`, `Sweeper.calcSweepScore`,
  `Sweeper.calcScoreByThreshold`, `Sweeper.scoreDataSet`): every row gets a weighted "sweep score" (inside a
  window the scaled sigmoid of its relative position, divided by the sigmoid's maximum and times the tp weight;
  outside, the fp weight times the sigmoid of its distance after the previous window, or -1 with no window
  before); at a threshold, rows whose anomaly score is >= the threshold are detections; a window scores the
  best (that is, the earliest) of its detections or -fn weight when it has none; every detection outside a
  window adds its (negative) sweep score; rows of the probationary period are not scored.
- `nab/optimizer.py` (`optimizeThreshold`): one threshold per detector and profile, the best over the whole
  corpus (the sweep over every row of every file at once).
- `nab/runner.py` (`Runner.normalize`): ``100 * (score - null) / (perfect - null)`` where `null` is the score of
  a detector that never fires and `perfect` is the number of windows times the tp weight.

Differences from NAB, none of which changes a score: windows are given as row indices (NAB looks their
timestamps up in the file; a window whose bounds are not rows of the file is clipped to the rows it covers),
and the score at one threshold is computed directly rather than read off the sweep.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

PROBATION_PERCENT = 0.15
ALERT_THRESHOLD = 0.5
WINDOWS_FILE = "combined_windows.json"


class NabDataError(ValueError):
    """A NAB data folder, windows file or results file that cannot be read."""


class Profile(NamedTuple):
    """One of NAB's application profiles (`config/profiles.json`, the "CostMatrix")."""

    name: str
    tp_weight: float
    fp_weight: float
    fn_weight: float


PROFILES: tuple[Profile, ...] = (
    Profile("standard", tp_weight=1.0, fp_weight=0.11, fn_weight=1.0),
    Profile("reward_low_FP_rate", tp_weight=1.0, fp_weight=0.22, fn_weight=1.0),
    Profile("reward_low_FN_rate", tp_weight=1.0, fp_weight=0.11, fn_weight=2.0),
)


class Window(NamedTuple):
    """A labelled anomaly window: the first and last row it covers (both inclusive)."""

    first: int
    last: int


@dataclass(frozen=True)
class Series:
    """One NAB data file with its labelled windows."""

    name: str  # NAB's relative path, "realAWSCloudwatch/ec2_cpu_utilization_24ae8d.csv"
    timestamps: tuple[str, ...]
    values: tuple[float, ...]
    windows: tuple[Window, ...]

    @property
    def category(self) -> str:
        return self.name.split("/", 1)[0]

    @property
    def file_name(self) -> str:
        return self.name.rsplit("/", 1)[-1]

    def labels(self) -> list[int]:
        """NAB's `label` column: 1 inside a window, else 0."""
        labels = [0] * len(self.values)
        for window in self.windows:
            for i in range(window.first, window.last + 1):
                labels[i] = 1
        return labels


class FileScore(NamedTuple):
    """The NAB score of one file at one threshold, with NAB's row counts (as in `<detector>_<profile>_scores.csv`)."""

    name: str
    threshold: float
    score: float
    tp: int
    tn: int
    fp: int
    fn: int
    total: int


class CorpusScore(NamedTuple):
    """A detector's NAB result on a corpus for one profile."""

    profile: Profile
    threshold: float
    raw: float  # the sum of the files' scores
    null: float  # the raw score of a detector that never fires
    perfect: float  # the raw score of a detector that fires at the start of every window
    files: tuple[FileScore, ...]

    @property
    def normalised(self) -> float:
        return normalised_score(self.raw, self.null, self.perfect)


def scaled_sigmoid(relative_position: float) -> float:
    """`nab/sweeper.py` scaledSigmoid: 0.987 at a window's left edge (-1.0), 0 at its right edge, -1 past 3.0."""
    if relative_position > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * relative_position)) - 1.0


def probationary_length(rows: int, percent: float = PROBATION_PERCENT) -> float:
    """`Sweeper._getProbationaryLength`: min(floor(15% of the rows), 750); rows before it are not scored."""
    return min(math.floor(percent * rows), percent * 5000)


class SweepPoint(NamedTuple):
    """`nab/sweeper.py` AnomalyPoint: a row's anomaly score, weighted NAB score and window (None: outside)."""

    anomaly_score: float
    sweep_score: float
    window: str | None
    probationary: bool


def sweep_points(
    name: str, anomaly_scores: Sequence[float], windows: Sequence[Window], profile: Profile
) -> list[SweepPoint]:
    """`Sweeper.calcSweepScore`: the weighted score each row would earn if it were a detection."""
    rows = len(anomaly_scores)
    max_tp = scaled_sigmoid(-1.0)
    probation = probationary_length(rows)
    window_at: dict[int, Window] = {}
    for limits in sorted(windows):
        for i in range(limits.first, limits.last + 1):
            window_at[i] = limits
    points: list[SweepPoint] = []
    previous: Window | None = None
    for i, anomaly_score in enumerate(anomaly_scores):
        window = window_at.get(i)
        window_name: str | None = None
        if window is not None:
            width = window.last - window.first + 1
            position = -(window.last - i + 1) / width
            sweep_score = scaled_sigmoid(position) * profile.tp_weight / max_tp
            window_name = f"{name}|{window.first}"
        elif previous is None:
            # No window before: as if "really far away" from one (NAB's comment), the full fp weight.
            sweep_score = -1.0 * profile.fp_weight
        else:
            previous_width = previous.last - previous.first + 1
            # NAB divides by (width - 1): a one-row window would divide by zero there too.
            distance = abs(previous.last - i) / float(previous_width - 1)
            sweep_score = scaled_sigmoid(distance) * profile.fp_weight
        points.append(SweepPoint(float(anomaly_score), sweep_score, window_name, i < probation))
        if window is not None and i == window.last:
            previous = window
    return points


def score_points(name: str, points: Sequence[SweepPoint], threshold: float, profile: Profile) -> FileScore:
    """`Sweeper.scoreDataSet` at one threshold: rows with anomaly score >= threshold are detections.

    Each window counts once: its best detection (the earliest, as the sigmoid falls through the window), or
    -fn weight when nothing inside it fires. Every detection outside the windows adds its own (negative)
    sweep score, so a detector that keeps firing through a false alarm pays for every row.
    """
    scorable = [p for p in points if not p.probationary]
    windows: dict[str, float] = {p.window: -profile.fn_weight for p in scorable if p.window is not None}
    fp_score = 0.0
    tp = tn = fp = fn = 0
    for point in scorable:
        detected = point.anomaly_score >= threshold
        if point.window is None:
            if detected:
                fp += 1
                fp_score += point.sweep_score
            else:
                tn += 1
        elif detected:
            tp += 1
            windows[point.window] = max(windows[point.window], point.sweep_score)
        else:
            fn += 1
    score = fp_score + sum(windows.values())
    return FileScore(name, threshold, score, tp, tn, fp, fn, tp + tn + fp + fn)


def optimise_threshold(
    series: Sequence[tuple[str, Sequence[float], Sequence[Window]]], profile: Profile
) -> tuple[float, float]:
    """`nab/optimizer.py` optimizeThreshold: the one threshold, over all files at once, with the best raw score.

    Returns (threshold, raw score). This is how NAB ranks its detectors; the alerting threshold of this
    suite is fixed (0.5) instead, so this is for comparison only.
    """
    points: list[SweepPoint] = []
    for name, scores, windows in series:
        points.extend(sweep_points(name, scores, windows, profile))
    scorable = sorted((p for p in points if not p.probationary), key=lambda p: p.anomaly_score, reverse=True)
    window_parts = {p.window: -profile.fn_weight for p in scorable if p.window is not None}
    fp_part = 0.0
    threshold = 1.1
    best = (threshold, fp_part + sum(window_parts.values()))
    window_total = sum(window_parts.values())
    for point in scorable:
        if point.anomaly_score != threshold:
            score = fp_part + window_total
            if score > best[1]:
                best = (threshold, score)
            threshold = point.anomaly_score
        if point.window is None:
            fp_part += point.sweep_score
        else:
            old = window_parts[point.window]
            if point.sweep_score > old:
                window_parts[point.window] = point.sweep_score
                window_total += point.sweep_score - old
    score = fp_part + window_total
    if score > best[1]:
        best = (threshold, score)
    return best


def normalised_score(raw: float, null: float, perfect: float) -> float:
    """`Runner.normalize`: 0 for a detector that never fires, 100 for a perfect one."""
    return 100.0 * (raw - null) / (perfect - null)


def score_corpus(
    series: Sequence[tuple[str, Sequence[float], Sequence[Window]]],
    profile: Profile,
    threshold: float = ALERT_THRESHOLD,
) -> CorpusScore:
    """Score (name, anomaly scores, windows) triples at one threshold and normalise as NAB does.

    `null` is NAB's null detector (constant 0.5, scored at a threshold above it: no detection), so -fn weight
    for each window with rows after the probationary period; `perfect` counts every window, as NAB's
    `Runner.normalize` counts every window of the labels file.
    """
    files: list[FileScore] = []
    null = 0.0
    window_count = 0
    for name, scores, windows in series:
        points = sweep_points(name, scores, windows, profile)
        files.append(score_points(name, points, threshold, profile))
        null += score_points(name, points, math.inf, profile).score
        window_count += len(windows)
    raw = sum(f.score for f in files)
    return CorpusScore(profile, threshold, raw, null, window_count * profile.tp_weight, tuple(files))


def load_profiles(path: Path) -> tuple[Profile, ...]:
    """NAB's `config/profiles.json` ({name: {"CostMatrix": {tpWeight, fpWeight, fnWeight}}})."""
    try:
        document = json.loads(path.read_text())
        return tuple(
            Profile(
                name,
                float(body["CostMatrix"]["tpWeight"]),
                float(body["CostMatrix"]["fpWeight"]),
                float(body["CostMatrix"]["fnWeight"]),
            )
            for name, body in document.items()
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise NabDataError(f"{path}: not a NAB profiles file ({exc})") from None


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.strip())


def _window_rows(timestamps: Sequence[datetime], limits: Sequence[str]) -> Window | None:
    start, end = _parse_time(limits[0]), _parse_time(limits[1])
    inside = [i for i, t in enumerate(timestamps) if start <= t <= end]
    if not inside:
        return None
    return Window(inside[0], inside[-1])


def read_series(path: Path, name: str, window_limits: Sequence[Sequence[str]] = ()) -> Series:
    """A NAB data file (`timestamp,value`), with its windows given as NAB's [start, end] timestamp pairs."""
    timestamps: list[str] = []
    values: list[float] = []
    try:
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None or not {"timestamp", "value"} <= set(reader.fieldnames):
                raise NabDataError(f"{path}: needs a header with 'timestamp' and 'value'")
            for row in reader:
                timestamps.append(row["timestamp"])
                values.append(float(row["value"]))
        parsed = [_parse_time(t) for t in timestamps]
    except OSError as exc:
        raise NabDataError(f"{path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise NabDataError(f"{path}: {exc}") from None
    if not values:
        raise NabDataError(f"{path}: no rows")
    windows = []
    for limits in window_limits:
        if len(limits) != 2:
            raise NabDataError(f"{name}: a window must be [start, end], got {limits!r}")
        try:
            window = _window_rows(parsed, limits)
        except (TypeError, ValueError) as exc:
            raise NabDataError(f"{name}: bad window {limits!r} ({exc})") from None
        if window is not None:
            windows.append(window)
    return Series(name, tuple(timestamps), tuple(values), tuple(windows))


def read_windows(path: Path) -> dict[str, list[list[str]]]:
    """NAB's `labels/combined_windows.json`: {"category/file.csv": [[start, end], ...]}."""
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise NabDataError(f"{path}: not a NAB windows file ({exc})") from None
    if not isinstance(document, dict):
        raise NabDataError(f"{path}: not a NAB windows file (expected an object of file: windows)")
    return {str(k): list(v) for k, v in document.items()}


@dataclass(frozen=True)
class NabCorpus:
    """A NAB data folder: `<category>/*.csv`, optionally with `combined_windows.json` (labelled if present)."""

    root: Path
    series: tuple[Series, ...]
    labelled: bool


def find_windows_file(root: Path) -> Path | None:
    for candidate in (root / WINDOWS_FILE, root / "labels" / WINDOWS_FILE, root.parent / "labels" / WINDOWS_FILE):
        if candidate.is_file():
            return candidate
    return None


def data_files(root: Path) -> list[str]:
    """NAB's relative names ("category/file.csv") of the data files under `root`, sorted."""
    if not root.is_dir():
        raise NabDataError(f"{root}: no such directory")
    names = sorted(p.relative_to(root).as_posix() for p in root.glob("*/*.csv"))
    names = [n for n in names if not n.startswith("labels/")]
    if not names:
        raise NabDataError(f"{root}: no NAB data files (<category>/<file>.csv)")
    return names


def load_corpus(root: Path, names: Iterable[str] | None = None) -> NabCorpus:
    """Read a NAB data folder; windows come from its `combined_windows.json` when there is one."""
    all_names = data_files(root)
    wanted = all_names if names is None else [n for n in all_names if n in set(names)]
    windows_path = find_windows_file(root)
    windows = read_windows(windows_path) if windows_path else {}
    series = tuple(read_series(root / name, name, windows.get(name, ())) for name in wanted)
    return NabCorpus(root, series, labelled=windows_path is not None)


def score_detector(
    corpus_series: Sequence[Series],
    scores: Mapping[str, Sequence[float]],
    profiles: Sequence[Profile] = PROFILES,
    threshold: float = ALERT_THRESHOLD,
) -> dict[str, CorpusScore]:
    """NAB scores of one detector's anomaly scores (by series name), per profile, at a fixed threshold."""
    triples = [(s.name, scores[s.name], s.windows) for s in corpus_series]
    return {p.name: score_corpus(triples, p, threshold) for p in profiles}
