"""Counter series for SLO tests: steady traffic with error ratios that change at given times."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from slo.evaluator import CounterSamples

Floats = npt.NDArray[np.float64]


def events_spec(path: Path, *, objective: str = "99.9", name: str = "checkout") -> Path:
    """A Sloth spec over the two counters these scenarios produce."""
    path.write_text(
        textwrap.dedent(
            f"""\
            version: prometheus/v1
            service: shop
            slos:
              - name: {name}
                objective: {objective}
                sli:
                  events:
                    error_query: sum(rate(test_errors_total[{{{{.window}}}}]))
                    total_query: sum(rate(test_requests_total[{{{{.window}}}}]))
                alerting:
                  name: CheckoutBurn
            """
        )
    )
    return path


@dataclass(frozen=True)
class Phase:
    """From `start` seconds on: `rate` requests per second of which `error_ratio` fail."""

    start: int
    rate: float
    error_ratio: float


@dataclass(frozen=True)
class Scenario:
    scrape: int
    errors: Floats  # cumulative, one sample per scrape from t=0
    requests: Floats

    @property
    def timestamps_ms(self) -> npt.NDArray[np.int64]:
        return np.arange(self.errors.shape[0], dtype=np.int64) * self.scrape * 1000

    def samples(self) -> tuple[CounterSamples, CounterSamples]:
        return (
            CounterSamples(self.timestamps_ms, self.errors[None, :]),
            CounterSamples(self.timestamps_ms, self.requests[None, :]),
        )

    def series(self) -> dict[str, Floats]:
        return {"test_errors_total": self.errors, "test_requests_total": self.requests}


def build(
    phases: Sequence[Phase], *, duration: int, scrape: int, resets: Sequence[int] = (), seed: int | None = None
) -> Scenario:
    """Counts per scrape interval: exact expectations (so tests can predict firing times), or
    Poisson traffic with binomial errors when `seed` is given."""
    rng = np.random.default_rng(seed)
    steps = duration // scrape + 1
    per_step_requests, per_step_errors = np.zeros(steps), np.zeros(steps)
    for i in range(1, steps):
        t = i * scrape
        phase = [p for p in phases if p.start < t][-1]
        expected = phase.rate * scrape
        count = float(rng.poisson(expected)) if seed is not None else expected
        per_step_requests[i] = count
        per_step_errors[i] = (
            float(rng.binomial(int(count), phase.error_ratio)) if seed is not None else count * phase.error_ratio
        )
    total, bad = np.cumsum(per_step_requests), np.cumsum(per_step_errors)
    for reset in resets:  # a restarted process starts its counters from zero
        i = reset // scrape
        total[i:] -= total[i - 1]
        bad[i:] -= bad[i - 1]
    return Scenario(scrape, bad, total)
