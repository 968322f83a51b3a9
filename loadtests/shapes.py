"""Load shapes as data: the named stages a run goes through, and the users they make over time.

A shape is a list of `Stage`s. Each stage moves the user count towards its `users` at its
`spawn_rate` (users started or stopped per second) and holds it until `until` seconds into
the run; after the last stage the run stops. The names are the ones a release manager uses:

| shape | users over a run of `duration` seconds |
|---|---|
| `steady` | peak throughout, reached within about 2 s |
| `market_open` | ramp to peak within 60 s (or a fifth of the run if shorter), hold, decay to 20 % over the last fifth |
| `spike_10x` | a base of peak/10, a burst to peak (10x) for the middle sixth, back to base |
| `soak` | peak for the whole run, ramped over 5 minutes (or a tenth of the run if shorter) |

Pure data, no Locust import: `locustfile.py` holds the `LoadTestShape` that plays a plan.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

FAST_RAMP_SECONDS = 2.0  # steady and the base of spike_10x: every user at once, near enough
MARKET_OPEN_RAMP_SECONDS = 60.0
MARKET_CLOSE_SHARE = 0.2  # market_open decays to this share of peak
SPIKE_FACTOR = 10
SPIKE_RAMP_SECONDS = 2.0  # the burst arrives within this (or a quarter of the burst if shorter)
SOAK_RAMP_SECONDS = 300.0


class Stage(NamedTuple):
    until: float  # seconds since the start of the run at which this stage ends
    users: int  # the user count this stage moves to and holds
    spawn_rate: float  # users started (or stopped) per second on the way there


def stages(name: str, peak_users: int, duration: float) -> list[Stage]:
    """The plan of the shape `name` for `peak_users` at most over `duration` seconds.

    Raises ValueError for an unknown name or parameters the shape cannot be played with.
    """
    build = _SHAPES.get(name)
    if build is None:
        raise ValueError(f"unknown shape {name!r}: choose one of {', '.join(SHAPES)}")
    if isinstance(peak_users, bool) or not isinstance(peak_users, int) or peak_users < 1:
        raise ValueError(f"peak users must be a whole number of at least 1, got {peak_users!r}")
    if isinstance(duration, bool) or not isinstance(duration, int | float) or not math.isfinite(duration):
        raise ValueError(f"duration must be a number of seconds, got {duration!r}")
    if duration <= 0:
        raise ValueError(f"duration must be above 0 seconds, got {duration:g}")
    return build(peak_users, float(duration))


def stage_at(plan: Sequence[Stage], elapsed: float) -> Stage | None:
    """The stage in force `elapsed` seconds into the run; None once the plan is over."""
    for stage in plan:
        if elapsed < stage.until:
            return stage
    return None


def users_at(plan: Sequence[Stage], elapsed: float) -> float:
    """How many users the plan has running `elapsed` seconds in, ramps followed at their spawn rates."""
    users, start = 0.0, 0.0
    for stage in plan:
        end = min(stage.until, elapsed)
        if end > start:
            step = stage.spawn_rate * (end - start)
            users = min(stage.users, users + step) if stage.users >= users else max(stage.users, users - step)
        if elapsed < stage.until:
            return users
        start = stage.until
    return 0.0


def _rate(change: float, seconds: float) -> float:
    """Users per second to make `change` in `seconds`; never 0 (Locust needs a positive rate)."""
    return max(abs(change), 1.0) / max(seconds, 1e-3)


def _steady(peak: int, duration: float) -> list[Stage]:
    return [Stage(duration, peak, _rate(peak, FAST_RAMP_SECONDS))]


def _market_open(peak: int, duration: float) -> list[Stage]:
    ramp = min(MARKET_OPEN_RAMP_SECONDS, duration / 5)
    close = max(1, round(peak * MARKET_CLOSE_SHARE))
    decay_from = duration * 4 / 5
    return [
        Stage(decay_from, peak, _rate(peak, ramp)),
        Stage(duration, close, _rate(peak - close, duration - decay_from)),
    ]


def _spike_10x(peak: int, duration: float) -> list[Stage]:
    if peak < SPIKE_FACTOR:
        raise ValueError(f"spike_10x needs at least {SPIKE_FACTOR} peak users (its base is a tenth of peak)")
    base = max(1, round(peak / SPIKE_FACTOR))
    burst_from, burst_to = duration * 5 / 12, duration * 7 / 12  # the middle sixth
    burst_rate = _rate(peak - base, min(SPIKE_RAMP_SECONDS, (burst_to - burst_from) / 4))
    return [
        Stage(burst_from, base, _rate(base, FAST_RAMP_SECONDS)),
        Stage(burst_to, peak, burst_rate),
        Stage(duration, base, burst_rate),
    ]


def _soak(peak: int, duration: float) -> list[Stage]:
    return [Stage(duration, peak, _rate(peak, min(SOAK_RAMP_SECONDS, duration / 10)))]


_SHAPES: dict[str, Callable[[int, float], list[Stage]]] = {
    "steady": _steady,
    "market_open": _market_open,
    "spike_10x": _spike_10x,
    "soak": _soak,
}
SHAPES = tuple(_SHAPES)
