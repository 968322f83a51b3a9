"""Rewrite every golden rule file from its input specs: `.venv/bin/python -m tests.slo.golden.regenerate`.

Each case is an input spec (or several) beside the exact rules `nova slo rules` must write for
it, with the options it is rendered with. `CASES` is the one table of those options; the golden
tests import it, so a case is rendered the same way here, in the tests and on the command line
(`GoldenCase.cli_args`). Review a regeneration as a diff. `--check` writes nothing and exits 1
when an expected file is stale.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from slo.durations import parse_duration
from slo.rule_outputs import render_output
from slo.rules import DEFAULT_MIN_BAD_EVENTS, DEFAULT_RUNBOOK_BASE, RuleOptions
from slo.spec import load_spec_set
from slo.windows import load_alert_windows

GOLDEN = Path(__file__).resolve().parent
ROOT = GOLDEN.parents[2]  # paths in the table are relative to the repository, as `nova` is run from there
HERE = GOLDEN.relative_to(ROOT).as_posix()
FIXTURES = (GOLDEN.parent / "fixtures").relative_to(ROOT).as_posix()  # other tools' specs (see its README)


@dataclass(frozen=True)
class GoldenCase:
    """One golden case: `specs` rendered with these options must give `<name>.rules.yml` byte for byte."""

    name: str
    specs: tuple[str, ...]
    period: str = "30d"
    alert_windows: tuple[str, ...] = ()
    min_bad_events: int = DEFAULT_MIN_BAD_EVENTS
    exhaustion_horizon: str = "3d"
    runbook_base: str = DEFAULT_RUNBOOK_BASE

    @property
    def expected(self) -> Path:
        return GOLDEN / f"{self.name}.rules.yml"

    @property
    def inputs(self) -> tuple[Path, ...]:
        return tuple(ROOT / path for path in (*self.specs, *self.alert_windows))

    def options(self) -> RuleOptions:
        return RuleOptions(
            period=parse_duration(self.period),
            alert_windows=tuple(load_alert_windows(ROOT / path) for path in self.alert_windows),
            min_bad_events=self.min_bad_events,
            exhaustion_horizon=parse_duration(self.exhaustion_horizon),
            runbook_base=self.runbook_base,
        )

    def render(self) -> str:
        """The rules, with the header naming the specs as `nova slo rules` run from the repository would."""
        found = load_spec_set([ROOT / path for path in self.specs], strict=True)
        return render_output(found, found.slos, self.options(), sources=self.specs)

    def cli_args(self) -> list[str]:
        """The same case as `nova slo rules` arguments (run from the repository root), without `-o`."""
        args = [*self.specs, "--period", self.period, "--min-bad-events", str(self.min_bad_events)]
        args += ["--exhaustion-horizon", self.exhaustion_horizon, "--runbook-base", self.runbook_base]
        for path in self.alert_windows:
            args += ["--alert-windows", path]
        return args


CASES: tuple[GoldenCase, ...] = (
    GoldenCase("sloth-basic", (f"{HERE}/sloth-basic.yaml",)),
    GoldenCase(
        "sloth-basic-options",
        (f"{HERE}/sloth-basic.yaml",),
        min_bad_events=0,
        exhaustion_horizon="1d",
        runbook_base="https://runbooks.example.com/slo/",
    ),
    GoldenCase("sloth-raw", (f"{HERE}/sloth-raw.yaml",)),
    GoldenCase("sloth-no-ticket", (f"{HERE}/sloth-no-ticket.yaml",)),
    GoldenCase("latency", (f"{HERE}/latency.yaml",)),
    GoldenCase("openslo-inline", (f"{HERE}/openslo-inline.yaml",)),
    GoldenCase("openslo-indicator-ref", (f"{HERE}/openslo-indicator-ref.yaml",)),
    GoldenCase("sloth-28d", (f"{HERE}/sloth-28d.yaml",), period="28d"),
    GoldenCase(
        "alert-windows-7d",
        (f"{HERE}/alert-windows-7d.yaml",),
        period="7d",
        alert_windows=(f"{HERE}/alert-windows-7d.windows.yaml",),
    ),
    GoldenCase(
        "alert-windows-7d-flat",
        (f"{HERE}/alert-windows-7d.yaml",),
        period="7d",
        alert_windows=(f"{HERE}/alert-windows-7d-flat.windows.yaml",),
    ),
    # One case per input kind the suite reads from other tools (fixtures under tests/slo/fixtures/).
    GoldenCase("sloth-integration-base", (f"{FIXTURES}/sloth/in-base.yaml",), min_bad_events=0),
    GoldenCase("sloth-kubernetes", (f"{FIXTURES}/sloth/in-base-k8s.yaml",)),
    GoldenCase("openslo-v1alpha", (f"{FIXTURES}/sloth/in-openslo.yaml",)),
    GoldenCase("openslo-v1-all-kinds", (f"{FIXTURES}/openslo/prometheus-v1.yaml",)),
    GoldenCase(
        "pyrra",
        tuple(
            f"{FIXTURES}/pyrra/{name}.yaml" for name in ("ratio", "latency", "latency-native", "bool-gauge", "grouping")
        ),
    ),
    GoldenCase("payments", ("slo/specs/payments.yaml",)),
    GoldenCase("portfolio", ("slo/specs/portfolio.yaml",)),
    GoldenCase("own-specs", ("slo/specs/payments.yaml", "slo/specs/portfolio.yaml")),
)


def stale(cases: Sequence[GoldenCase] = CASES) -> list[GoldenCase]:
    """The cases whose expected file is missing or differs from what they render now."""
    return [case for case in cases if not case.expected.exists() or case.expected.read_text() != case.render()]


def regenerate(cases: Sequence[GoldenCase] = CASES, directory: Path = GOLDEN) -> list[Path]:
    """Write every case's expected file into `directory`; the paths written, in table order."""
    written = []
    for case in cases:
        path = directory / case.expected.name
        path.write_text(case.render())
        written.append(path)
    return written


def main(argv: Sequence[str] = ()) -> int:
    if list(argv) == ["--check"]:
        outdated = stale()
        for case in outdated:
            print(f"stale: {case.expected.relative_to(ROOT)}", file=sys.stderr)
        return 1 if outdated else 0
    if argv:
        print("usage: python -m tests.slo.golden.regenerate [--check]", file=sys.stderr)
        return 2
    for path in regenerate():
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
