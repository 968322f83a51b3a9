"""Synthetic metrics with injected anomalies and NAB-style windows: a check that the detector generalises.

The 17 realAWSCloudwatch files chose the detector's settings; these series did not. Each one is a 5-minute
metric (two weeks, 4032 rows) of one of five shapes (daily cycle, mean-reverting walk, flat with noise,
flat with a daily spike, on/off bursts) with one or two anomalies after the probationary period: a spike, a
dip, a level shift up or down, a noise burst, or the metric going flat. Windows follow NAB's labelling rule
(10% of the file divided by the number of anomalies, centred on each), so `nab.score_corpus` scores them as
NAB would.
"""

from __future__ import annotations

import numpy as np

from alerts.anomaly.nab import Series, Window

ROWS = 4032
SHAPES = ("daily_cycle", "mean_reverting", "flat_noise", "daily_spike", "bursts")
ANOMALIES = ("spike", "dip", "level_up", "level_down", "noise_burst", "goes_flat")


def _base(shape: str, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(ROWS)
    level = rng.uniform(10, 100)
    if shape == "daily_cycle":
        return (
            level + 0.2 * level * np.sin(2 * np.pi * t / 288 + rng.uniform(0, 6.3)) + rng.normal(0, 0.03 * level, ROWS)
        )
    if shape == "mean_reverting":
        x = np.empty(ROWS)
        x[0] = 0.0
        noise = rng.normal(0, 0.02 * level, ROWS)
        for i in range(1, ROWS):
            x[i] = 0.98 * x[i - 1] + noise[i]
        return level + x
    if shape == "flat_noise":
        return level + rng.normal(0, 0.02 * level, ROWS)
    if shape == "daily_spike":
        x = level + rng.normal(0, 0.01 * level, ROWS)
        phase = int(rng.integers(0, 288))
        x[phase::288] += level * rng.uniform(1.0, 1.5, len(x[phase::288]))
        return x
    # bursts: mostly idle, with busy stretches of random height
    x = np.abs(rng.normal(0, 0.01 * level, ROWS))
    start = 0
    while start < ROWS:
        start += int(rng.integers(30, 200))
        length = int(rng.integers(5, 40))
        x[start : start + length] += level * rng.uniform(0.5, 1.0)
        start += length
    return x


def _inject(x: np.ndarray, kind: str, at: int, rng: np.random.Generator) -> None:
    spread = float(np.percentile(x[:at], 99) - np.percentile(x[:at], 1)) or 1.0
    high, low = float(x[:at].max()), float(x[:at].min())
    if kind == "spike":
        x[at : at + 3] = high + spread * rng.uniform(0.2, 1.0)
    elif kind == "dip":
        x[at : at + 3] = low - spread * rng.uniform(0.2, 1.0)
    elif kind == "level_up":
        x[at:] += spread * rng.uniform(0.3, 1.0)
    elif kind == "level_down":
        x[at:] -= spread * rng.uniform(0.3, 1.0)
    elif kind == "noise_burst":
        x[at : at + 60] += rng.normal(0, spread * rng.uniform(0.5, 1.0), 60)
    else:  # goes_flat: the metric stops reporting anything but its last value
        x[at : at + 300] = x[at - 1]


def synthetic_series(seed: int, count: int = 30) -> list[Series]:
    """`count` labelled series, reproducible from `seed`."""
    rng = np.random.default_rng(seed)
    series = []
    for n in range(count):
        shape = SHAPES[n % len(SHAPES)]
        x = _base(shape, rng)
        anomalies = int(rng.integers(1, 3))
        positions = sorted(
            int(p) for p in rng.choice(np.arange(int(0.25 * ROWS), int(0.9 * ROWS), 400), anomalies, replace=False)
        )
        kinds = [str(rng.choice(ANOMALIES)) for _ in positions]
        for kind, at in zip(kinds, positions, strict=True):
            _inject(x, kind, at, rng)
        half = int(0.10 * ROWS / anomalies) // 2
        windows = tuple(Window(max(0, at - half), min(ROWS - 1, at + half)) for at in positions)
        timestamps = tuple(f"row{i}" for i in range(ROWS))
        name = f"synthetic/{shape}_{'_'.join(kinds)}_{n}.csv"
        series.append(Series(name, timestamps, tuple(float(v) for v in x), windows))
    return series
