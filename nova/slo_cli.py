"""`nova slo rules|check|status|report`: the SLO engine on the command line."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from nova.output import console, fail
from slo.durations import parse_duration
from slo.errors import SLOError
from slo.rules import (
    DEFAULT_MIN_BAD_EVENTS,
    DEFAULT_RUNBOOK_BASE,
    RuleOptions,
    generate,
    render,
)
from slo.spec import SLO, load_specs
from slo.windows import load_alert_windows

slo_app = typer.Typer(help="SLO specs to Prometheus rules, dashboards, status and reports.", no_args_is_help=True)

Specs = Annotated[list[Path], typer.Argument(help="Sloth prometheus/v1 or OpenSLO v1 spec files", show_default=False)]
Period = Annotated[str, typer.Option(help="SLO period for specs that do not set one (30d, 28d, 7d...)")]
AlertWindowsFiles = Annotated[
    list[Path] | None, typer.Option("--alert-windows", help="Sloth AlertWindows file (repeat for several periods)")
]
MinBadEvents = Annotated[
    int, typer.Option(min=0, help="Traffic guard: bad events a burn alert's long window needs (0 = off)")
]
Horizon = Annotated[str, typer.Option(help="Ticket when the error budget would run out sooner than this")]
RunbookBase = Annotated[str, typer.Option(help="Prefix of every runbook_url (a path or a URL)")]


def _options(
    period: str, alert_windows: Sequence[Path] | None, min_bad_events: int, horizon: str, runbook_base: str
) -> RuleOptions:
    try:
        period_seconds = parse_duration(period)
        horizon_seconds = parse_duration(horizon)
    except ValueError as exc:
        raise fail(str(exc)) from None
    return RuleOptions(
        period=period_seconds,
        alert_windows=tuple(load_alert_windows(path) for path in alert_windows or ()),
        min_bad_events=min_bad_events,
        exhaustion_horizon=horizon_seconds,
        runbook_base=runbook_base,
    )


def _load(specs: Sequence[Path]) -> list[SLO]:
    if not specs:
        raise fail("give at least one spec file")
    return load_specs(specs)


def _write_atomically(path: Path, text: str) -> None:
    """Write beside the target and rename, so a failure never leaves half a rule file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, scratch = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(scratch, path)
    except BaseException:
        Path(scratch).unlink(missing_ok=True)
        raise


@slo_app.command()
def rules(
    specs: Specs,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Rule file to write (default: stdout)")] = None,
    period: Period = "30d",
    alert_windows: AlertWindowsFiles = None,
    min_bad_events: MinBadEvents = DEFAULT_MIN_BAD_EVENTS,
    exhaustion_horizon: Horizon = "3d",
    runbook_base: RunbookBase = DEFAULT_RUNBOOK_BASE,
) -> None:
    """Generate Sloth-compatible Prometheus rules (multi-window multi-burn-rate alerts) from SLO specs."""
    try:
        options = _options(period, alert_windows, min_bad_events, exhaustion_horizon, runbook_base)
        text = render(_load(specs), options, [str(p) for p in specs])
    except SLOError as exc:
        raise fail(str(exc)) from None
    if output is None:
        typer.echo(text, nl=False)
    else:
        _write_atomically(output, text)


@slo_app.command()
def check(
    specs: Specs,
    period: Period = "30d",
    alert_windows: AlertWindowsFiles = None,
    min_bad_events: MinBadEvents = DEFAULT_MIN_BAD_EVENTS,
    exhaustion_horizon: Horizon = "3d",
    runbook_base: RunbookBase = DEFAULT_RUNBOOK_BASE,
) -> None:
    """Validate specs, and run `promtool check rules` on the rules they give when promtool is installed."""
    try:
        options = _options(period, alert_windows, min_bad_events, exhaustion_horizon, runbook_base)
        slos = _load(specs)
        text = render(slos, options, [str(p) for p in specs])
    except SLOError as exc:
        raise fail(str(exc)) from None
    count = sum(len(group["rules"]) for group in generate(slos, options))
    console.print(f"{len(slos)} SLOs valid in {len(specs)} files; {count} rules generated")
    promtool = shutil.which("promtool")
    if promtool is None:
        console.print("promtool not installed: rule syntax not checked by Prometheus")
        return
    with tempfile.TemporaryDirectory(prefix="nova-slo-check-") as scratch:
        path = Path(scratch) / "rules.yml"
        path.write_text(text)
        result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        reason = " ".join((result.stderr or result.stdout).split())
        raise fail(f"promtool check rules failed: {reason}", 1)
    console.print(f"promtool check rules: SUCCESS ({count} rules)")
