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
from slo.discovery import Discovered, discover
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
)
from slo.rule_outputs import render_output
from slo.rules import (
    DEFAULT_MIN_BAD_EVENTS,
    DEFAULT_RUNBOOK_BASE,
    RuleOptions,
    generate,
    parse_extra_labels,
    render_groups,
)
from slo.scenario import read_scenario, scenario_timelines
from slo.spec import SLO, SUITE_SPECS, SpecSet, UncompilableSLI, load_spec_set, load_specs
from slo.timeline import SLOTimeline
from slo.windows import load_alert_windows

slo_app = typer.Typer(help="SLO specs to Prometheus rules, dashboards, status and reports.", no_args_is_help=True)

Specs = Annotated[
    list[Path] | None,
    typer.Argument(help="Spec files: Sloth, Sloth Kubernetes, OpenSLO or Pyrra (or use -i)", show_default=False),
]
Input = Annotated[
    Path | None, typer.Option("-i", "--input", help="Spec file, or directory searched recursively (Sloth's -i)")
]
FsExclude = Annotated[
    str | None, typer.Option("-e", "--fs-exclude", help="Regex: skip discovered files whose path matches (wins)")
]
FsInclude = Annotated[
    str | None, typer.Option("-n", "--fs-include", help="Regex: keep only discovered files whose path matches")
]
Strict = Annotated[bool, typer.Option("--strict", help="Unknown spec fields are errors, not warnings")]
Period = Annotated[
    str,
    typer.Option("--period", "--default-slo-period", help="SLO period for specs that do not set one (30d, 28d, 7d...)"),
]
AlertWindowsFiles = Annotated[
    list[Path] | None, typer.Option("--alert-windows", help="Sloth AlertWindows file (repeat for several periods)")
]
WindowsPath = Annotated[
    Path | None,
    typer.Option("--slo-period-windows-path", help="Directory of Sloth AlertWindows files (one per SLO period)"),
]
MinBadEvents = Annotated[
    int, typer.Option(min=0, help="Traffic guard: bad events a burn alert's long window needs (0 = off)")
]
Horizon = Annotated[str, typer.Option(help="Ticket when the error budget would run out sooner than this")]
RunbookBase = Annotated[str, typer.Option(help="Prefix of every runbook_url (a path or a URL)")]


def _options(
    period: str,
    alert_windows: Sequence[Path] | None,
    min_bad_events: int,
    horizon: str,
    runbook_base: str,
    windows_path: Path | None = None,
    **extra: Any,
) -> RuleOptions:
    try:
        period_seconds = parse_duration(period)
    except ValueError as exc:
        raise fail(f"--period: {exc}") from None
    try:
        horizon_seconds = parse_duration(horizon)
    except ValueError as exc:
        raise fail(f"--exhaustion-horizon: {exc}") from None
    files = list(alert_windows or ())
    if windows_path is not None:
        if not windows_path.is_dir():
            raise fail(f"--slo-period-windows-path: {windows_path} is not a directory")
        files += [found.path for found in discover(windows_path)]
    return RuleOptions(
        period=period_seconds,
        alert_windows=tuple(load_alert_windows(path) for path in files),
        min_bad_events=min_bad_events,
        exhaustion_horizon=horizon_seconds,
        runbook_base=runbook_base,
        **extra,
    )


def _inputs(
    specs: Sequence[Path] | None, input_path: Path | None, include: str | None, exclude: str | None
) -> list[Discovered]:
    """The spec files to read: positional files as given, then Sloth's `-i` file or directory."""
    found = [Discovered(path, Path(path.name)) for path in specs or ()]
    if input_path is not None:
        found += discover(input_path, include, exclude)
    if not found:
        raise fail("give at least one spec file (or -i FILE|DIR)")
    return found


def _load(files: Sequence[Discovered], *, strict: bool, ignore_duplicates: bool = False) -> SpecSet:
    """The specs, with each warning printed on stderr as one line."""
    loaded = load_spec_set([f.path for f in files], strict=strict, ignore_duplicates=ignore_duplicates)
    for warning in loaded.warnings:
        typer.echo(warning, err=True)
    return loaded


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
    specs: Specs = None,
    input_path: Input = None,
    output: Annotated[
        str | None,
        typer.Option("-o", "--out", "--output", help="Rule file, or a directory for -i DIR ('-' or none: stdout)"),
    ] = None,
    fs_exclude: FsExclude = None,
    fs_include: FsInclude = None,
    extra_labels: Annotated[
        list[str] | None, typer.Option("-l", "--extra-labels", help="k=v label on every SLO's rules (repeatable)")
    ] = None,
    disable_recordings: Annotated[bool, typer.Option("--disable-recordings", help="Write no recording rules")] = False,
    disable_alerts: Annotated[bool, typer.Option("--disable-alerts", help="Write no alert rules")] = False,
    strict: Strict = False,
    period: Period = "30d",
    alert_windows: AlertWindowsFiles = None,
    windows_path: WindowsPath = None,
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
    """Generate Sloth-compatible Prometheus rules (multi-window multi-burn-rate alerts) from SLO specs.

    Takes `sloth generate`'s options: -i FILE|DIR, -o FILE|DIR|-, -e, -n, -l k=v, --disable-recordings,
    --disable-alerts, --default-slo-period, --slo-period-windows-path.
    """
    if output_format not in ("prometheus", "prometheus-operator"):
        raise fail(f"--format must be prometheus or prometheus-operator, not {output_format!r}")
    operator = None
    if output_format == "prometheus-operator":
        try:
            labels = parse_labels(label) if label else dict(DEFAULT_LABELS)
            operator = OperatorOptions(name, namespace, labels, service_monitor)
        except OperatorError as exc:
            raise fail(str(exc)) from None
    to_stdout = output in (None, "-")
    per_file = input_path is not None and input_path.is_dir() and not to_stdout
    try:
        files = _inputs(specs, input_path, fs_include, fs_exclude)
        options = _options(
            period, alert_windows, min_bad_events, exhaustion_horizon, runbook_base, windows_path,
            extra_labels=parse_extra_labels(extra_labels or ()),
            recordings=not disable_recordings, alerts=not disable_alerts,
        )  # fmt: skip
        loaded = _load(files, strict=strict, ignore_duplicates=per_file)
        if per_file:
            assert output is not None
            outputs = _per_file(loaded, files, options, operator, Path(output))
        else:
            sources = [str(f.path) for f in files]
            outputs = [
                (
                    None if to_stdout else Path(str(output)),
                    render_output(loaded, loaded.slos, options, operator, sources),
                )
            ]
    except SLOError as exc:
        raise fail(str(exc)) from None
    for path, text in outputs:
        if path is None:
            typer.echo(text, nl=False)
            continue
        try:
            _write_atomically(path, text)
        except OSError as exc:
            raise fail(f"cannot write {path}: {exc.strerror or exc}") from None
    if per_file:
        typer.echo(f"wrote {len(outputs)} rule files to {output}", err=True)
    if dashboards is not None:
        written = write_dashboards(loaded.slos, options, dashboards)
        typer.echo(f"wrote {len(written)} Grafana dashboards to {dashboards}", err=True)


def _per_file(
    loaded: SpecSet, files: Sequence[Discovered], options: RuleOptions, operator: OperatorOptions | None, out: Path
) -> list[tuple[Path | None, str]]:
    """Sloth's directory mode: each input file that holds SLOs gives the file of the same relative path."""
    by_file: dict[str, list[SLO]] = {}
    for slo in loaded.slos:
        by_file.setdefault(slo.source.rpartition(":")[0] or slo.source, []).append(slo)
    outputs: list[tuple[Path | None, str]] = []
    for found in files:
        slos = by_file.get(str(found.path))
        if slos:
            outputs.append((out / found.relative, render_output(loaded, slos, options, operator, [str(found.path)])))
    return outputs


@slo_app.command()
def check(
    specs: Specs = None,
    input_path: Input = None,
    fs_exclude: FsExclude = None,
    fs_include: FsInclude = None,
    ignore_slo_duplicates: Annotated[
        bool, typer.Option("--ignore-slo-duplicates", help="The same SLO id in several specs is not an error")
    ] = False,
    strict: Strict = False,
    period: Period = "30d",
    alert_windows: AlertWindowsFiles = None,
    windows_path: WindowsPath = None,
    min_bad_events: MinBadEvents = DEFAULT_MIN_BAD_EVENTS,
    exhaustion_horizon: Horizon = "3d",
    runbook_base: RunbookBase = DEFAULT_RUNBOOK_BASE,
) -> None:
    """Validate specs (Sloth's `validate` options: -i, -e, -n, --ignore-slo-duplicates), and run
    `promtool check rules` on the rules they give when promtool is installed."""
    try:
        files = _inputs(specs, input_path, fs_include, fs_exclude)
        options = _options(period, alert_windows, min_bad_events, exhaustion_horizon, runbook_base, windows_path)
        loaded = _load(files, strict=strict, ignore_duplicates=ignore_slo_duplicates)
        # An SLO id given twice (allowed here) would repeat its rule groups: check each once.
        unique = list({slo.sloth_id: slo for slo in reversed(loaded.slos)}.values())[::-1]
        compilable = [slo for slo in unique if not isinstance(slo.sli, UncompilableSLI)]
        groups = generate(compilable, options)
    except SLOError as exc:
        raise fail(str(exc)) from None
    text = render_groups(groups, [str(f.path) for f in files])
    count = sum(len(group["rules"]) for group in groups)
    console.print(f"{len(loaded.slos)} SLOs valid in {len(files)} files; {count} rules generated")
    for slo in unique:
        if isinstance(slo.sli, UncompilableSLI):
            console.print(f"{slo.source}: SLO {slo.name!r}: valid, but no Prometheus rules: {slo.sli.reason}")
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
