"""`nova slo rules|check|status|report`: the SLO engine on the command line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from nova.output import console, fail
from slo.dashboard import write_dashboards
from slo.durations import parse_duration
from slo.errors import SLOError
from slo.prometheus import prometheus_timelines
from slo.prometheus_api import PrometheusAPI
from slo.prometheus_operator import (
    DEFAULT_LABELS,
    DEFAULT_NAMESPACE,
    DEFAULT_RULE_NAME,
    OperatorError,
    OperatorOptions,
    parse_labels,
    render_operator,
)
from slo.rules import (
    DEFAULT_MIN_BAD_EVENTS,
    DEFAULT_RUNBOOK_BASE,
    RuleOptions,
    generate,
    render_groups,
)
from slo.scenario import read_scenario, scenario_timelines
from slo.spec import SLO, SUITE_SPECS, load_specs
from slo.timeline import SLOTimeline
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
    except ValueError as exc:
        raise fail(f"--period: {exc}") from None
    try:
        horizon_seconds = parse_duration(horizon)
    except ValueError as exc:
        raise fail(f"--exhaustion-horizon: {exc}") from None
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


def _generate(
    specs: Sequence[Path],
    period: str,
    alert_windows: Sequence[Path] | None,
    min_bad_events: int,
    horizon: str,
    runbook_base: str,
) -> tuple[list[SLO], RuleOptions, list[dict[str, Any]]]:
    """The specs loaded and their rule groups generated, or the one-line reason why not."""
    try:
        options = _options(period, alert_windows, min_bad_events, horizon, runbook_base)
        slos = _load(specs)
        return slos, options, generate(slos, options)
    except SLOError as exc:
        raise fail(str(exc)) from None


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
    dashboards: Annotated[
        Path | None, typer.Option("--dashboards", help="Also write one Grafana dashboard per SLO into this folder")
    ] = None,
    output_format: Annotated[
        str,
        typer.Option(
            "--format",
            help="prometheus (a rule file) or prometheus-operator (a PrometheusRule and a ServiceMonitor)",
        ),
    ] = "prometheus",
    name: Annotated[str, typer.Option(help="prometheus-operator: the PrometheusRule's name")] = DEFAULT_RULE_NAME,
    namespace: Annotated[
        str, typer.Option(help="prometheus-operator: namespace of both resources")
    ] = DEFAULT_NAMESPACE,
    label: Annotated[
        list[str] | None,
        typer.Option(
            "--label",
            help="prometheus-operator: k=v label on both resources, repeatable (default: release=prometheus)",
        ),
    ] = None,
    service_monitor: Annotated[
        bool, typer.Option(help="prometheus-operator: also write the ServiceMonitor for the services' /metrics")
    ] = True,
) -> None:
    """Generate Sloth-compatible Prometheus rules (multi-window multi-burn-rate alerts) from SLO specs."""
    if output_format not in ("prometheus", "prometheus-operator"):
        raise fail(f"--format must be prometheus or prometheus-operator, not {output_format!r}")
    operator = None
    if output_format == "prometheus-operator":
        try:
            labels = parse_labels(label) if label else dict(DEFAULT_LABELS)
            operator = OperatorOptions(name, namespace, labels, service_monitor)
        except OperatorError as exc:
            raise fail(str(exc)) from None
    slos, options, groups = _generate(specs, period, alert_windows, min_bad_events, exhaustion_horizon, runbook_base)
    sources = [str(p) for p in specs]
    text = render_groups(groups, sources) if operator is None else render_operator(groups, operator, sources)
    if output is None:
        typer.echo(text, nl=False)
    else:
        try:
            _write_atomically(output, text)
        except OSError as exc:
            raise fail(f"cannot write {output}: {exc.strerror or exc}") from None
    if dashboards is not None:
        written = write_dashboards(slos, options, dashboards)
        typer.echo(f"wrote {len(written)} Grafana dashboards to {dashboards}", err=True)


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
    slos, _, groups = _generate(specs, period, alert_windows, min_bad_events, exhaustion_horizon, runbook_base)
    text = render_groups(groups, [str(p) for p in specs])
    count = sum(len(group["rules"]) for group in groups)
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
        raise fail(f"promtool check rules failed: {_promtool_problem(result.stderr + result.stdout, path)}", 1)
    console.print(f"promtool check rules: SUCCESS ({count} rules)")


def _promtool_problem(output: str, path: Path) -> str:
    """promtool's first complaint as one line, without the scratch file's name and positions in it
    (the group and rule it names say which SLO is wrong)."""
    problems = []
    for raw in output.splitlines():
        line = raw.strip().removeprefix(f"{path}:").strip()
        position, separator, rest = line.partition(": ")
        if separator and position.replace(":", "").isdigit():  # `8:11: group ...`, a place in the scratch file
            line = rest
        if line and line != "FAILED:" and not line.startswith(("Checking ", "SUCCESS")):
            problems.append(" ".join(line.split()))
    if not problems:
        return "no reason given"
    first, others = problems[0], problems[1:]
    if first.endswith(":") and others:  # `yaml: unmarshal errors:` is followed by what they are
        first, others = f"{first} {others[0]}", others[1:]
    return first + (f" (and {len(others)} more)" if others else "")


PrometheusURL = Annotated[
    str | None, typer.Option("--prometheus", envvar="NOVA_PROMETHEUS_URL", help="Prometheus running the SLO rules")
]
ScenarioDir = Annotated[Path | None, typer.Option("--scenario", help="Metric scenario folder (DESIGN.md format)")]
Service = Annotated[str, typer.Option(help="Service a scenario folder's metrics belong to")]
OptionalSpecs = Annotated[
    list[Path] | None, typer.Argument(help="SLO specs (default: the suite's own, slo/specs/)", show_default=False)
]


def _timelines(
    specs: Sequence[Path] | None,
    prometheus: str | None,
    scenario: Path | None,
    service: str,
    options: RuleOptions,
    since: int,
    step: int,
) -> tuple[list[SLOTimeline], str]:
    """SLO timelines from exactly one source, and a description of it for the reader."""
    if (prometheus is None) == (scenario is None):
        raise fail("give exactly one source: --prometheus URL or --scenario DIR")
    if scenario is not None:
        data = read_scenario(scenario)
        return scenario_timelines(data, service, options), f"scenario {scenario}"
    assert prometheus is not None
    slos = load_specs(list(specs or SUITE_SPECS))
    api = PrometheusAPI(prometheus)
    try:
        end = time.time()
        timelines = prometheus_timelines(api, slos, options, start=end - since, end=end, step=step)
    finally:
        api.close()
    return timelines, f"Prometheus {prometheus}"


@slo_app.command()
def status(
    specs: OptionalSpecs = None,
    prometheus: PrometheusURL = None,
    scenario: ScenarioDir = None,
    service: Service = "payments",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")] = False,
    period: Period = "30d",
    min_bad_events: MinBadEvents = DEFAULT_MIN_BAD_EVENTS,
    exhaustion_horizon: Horizon = "3d",
) -> None:
    """Current SLI, error budget left, burn rates and firing alerts, per SLO."""
    try:
        options = _options(period, None, min_bad_events, exhaustion_horizon, DEFAULT_RUNBOOK_BASE)
        with console.status("reading SLO series"):
            timelines, source = _timelines(specs, prometheus, scenario, service, options, since=15 * 60, step=60)
    except SLOError as exc:
        raise fail(str(exc)) from None
    from slo.report import summarize  # matplotlib loads only for the commands that draw or summarise

    summaries = [summarize(t) for t in timelines]
    if as_json:
        rows = [
            {**s.to_json(), "firing": [{"alert": a.alert, "severity": a.severity} for a in s.firing]} for s in summaries
        ]
        typer.echo(json.dumps(rows, indent=2, allow_nan=False))
        return
    table = Table(title=f"SLO status from {source}")
    for column in ("SLO", "objective", "SLI", "budget left", "burn 5m", "burn 1h", "burn 6h", "firing"):
        table.add_column(column, justify="left" if column in ("SLO", "firing") else "right")
    for summary in summaries:
        burn = summary.burn_rates
        table.add_row(
            summary.sloth_id,
            f"{summary.objective * 100:g}%",
            "—" if summary.sli is None else f"{summary.sli * 100:.4f}%",
            "—" if summary.budget_remaining is None else f"{summary.budget_remaining * 100:.1f}%",
            *("—" if burn.get(w) is None else f"{burn[w]:.2f}x" for w in ("5m", "1h", "6h")),
            ", ".join(f"{a.alert} ({a.severity})" for a in summary.firing) or "none",
        )
    console.print(table)


@slo_app.command()
def report(
    out: Annotated[Path, typer.Option("--out", help="Folder for report.html, report.md and report.json")],
    specs: OptionalSpecs = None,
    prometheus: PrometheusURL = None,
    scenario: ScenarioDir = None,
    service: Service = "payments",
    since: Annotated[str, typer.Option(help="How far back to read from Prometheus")] = "1d",
    step: Annotated[str, typer.Option(help="Resolution of the Prometheus read")] = "1m",
    title: Annotated[str, typer.Option(help="Report title")] = "SLO report",
    period: Period = "30d",
    min_bad_events: MinBadEvents = DEFAULT_MIN_BAD_EVENTS,
    exhaustion_horizon: Horizon = "3d",
) -> None:
    """An SLO report with plots (HTML, Markdown and JSON) from Prometheus or a scenario/game-day folder."""
    try:
        options = _options(period, None, min_bad_events, exhaustion_horizon, DEFAULT_RUNBOOK_BASE)
        since_seconds, step_seconds = parse_duration(since), parse_duration(step)
    except ValueError as exc:
        raise fail(str(exc)) from None
    try:
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console) as bar:
            task = bar.add_task("reading SLO series", total=None)
            timelines, source = _timelines(specs, prometheus, scenario, service, options, since_seconds, step_seconds)
            bar.update(task, description=f"drawing {len(timelines)} SLOs")
            from slo.report import write_report

            files = write_report(timelines, out, title=title, source=source)
    except SLOError as exc:
        raise fail(str(exc)) from None
    for path in (files.html, files.markdown, files.json):
        console.print(f"wrote {path}")
