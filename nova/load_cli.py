"""`nova load`: a Locust load run against the platform, judged by the SLO gate; or a capacity search.

The command owns the operator's side of a load test: where the services are (`serve.json`),
the admin token (environment or `<data-dir>/admin-token`, handed to Locust in its
environment only), the results folder, progress while Locust runs, the gate's table and the
exit code: 0 the gate passed, 1 it failed (the breach is named) or the payment audit found an
acknowledged payment lost or a balance wrong, 2 the run could not be made or judged (bad
input, services not reachable, Locust left no samples). Locust itself runs as
a child process; see loadtests/locust_process.py for why it is never imported here.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from core_services.settings import DEFAULT_DATA_DIR, DEFAULT_PAYMENTS_PORT, DEFAULT_PORTFOLIO_PORT
from loadtests import audit as payment_audit
from loadtests.capacity import (
    CAPACITY_FILE,
    LIMIT_MAX_RATE,
    CapacityReport,
    CapacityResult,
    CapacitySearchRun,
    LocustStep,
    find_capacity,
)
from loadtests.capacity_plan import PLAN_FILE, CapacityPlan, CapacityPlanError, PlanInputs, read_capacity, write_plan
from loadtests.capacity_plan import plan as capacity_plan
from loadtests.gate import RULE_ZERO_FAILURES, GateError, GateResult, Thresholds, format_percent
from loadtests.locust_process import LOCUSTFILE, LocustError, LocustProcess, LocustRun, Tick, collect, run_headless
from loadtests.open_model import Timetable
from loadtests.results import SCENARIO_DIR, RunParameters, RunSummary, write_summary
from loadtests.samples import SAMPLES_FILE
from loadtests.serve_state import ServeStateError, read_admin_token, read_serve_state, serve_state_path
from loadtests.shapes import SHAPES, stages, users_at
from loadtests.traffic import MIXES
from nova.output import console, fail
from slo.durations import parse_duration
from slo.targets import suite_targets

LOCUST_WEB_URL = "http://127.0.0.1:8089"


@dataclass(frozen=True)
class Target:
    payments_url: str
    portfolio_url: str
    admin_token: str
    workers: dict[str, int] | None = None  # per service, when serve.json describes the services targeted


def load(
    shape: Annotated[str, typer.Option(help=f"Load shape: {', '.join(SHAPES)}")] = "market_open",
    peak_users: Annotated[int, typer.Option(min=1, help="Concurrent users at the shape's peak")] = 50,
    duration: Annotated[str, typer.Option(help="Run length: seconds, or 90s, 10m, 1h")] = "60",
    user_rate: Annotated[float, typer.Option(help="Requests per second each user sends")] = 1.0,
    rate: Annotated[
        float | None,
        typer.Option(
            help="Open model: requests/s offered on a timetable that does not wait for answers, "
            "shared by --processes and scaled by --shape (instead of --peak-users' closed model)"
        ),
    ] = None,
    mix: Annotated[
        list[str] | None,
        typer.Option(help=f"Traffic mix: {', '.join(MIXES)}; with --find-capacity repeat it, or say all"),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Results folder (default: <data-dir>/load/<timestamp>)")] = None,
    payments_url: Annotated[str | None, typer.Option(help="Payments base URL (default: from serve.json)")] = None,
    portfolio_url: Annotated[str | None, typer.Option(help="Portfolio base URL (default: from serve.json)")] = None,
    data_dir: Annotated[
        Path, typer.Option(envvar="NOVA_DATA_DIR", help="Where serve.json and admin-token are")
    ] = DEFAULT_DATA_DIR,
    processes: Annotated[int, typer.Option(min=1, max=256, help="Locust processes on this machine")] = 1,
    web: Annotated[bool, typer.Option("--web", help="Locust's web UI instead of a headless run (no gate)")] = False,
    find_capacity: Annotated[
        bool, typer.Option("--find-capacity", help="Step the rate up until the gate fails; report the highest pass")
    ] = False,
    step_seconds: Annotated[int, typer.Option(min=5, help="Length of each capacity step")] = 30,
    start_rate: Annotated[
        float | None, typer.Option(help="First capacity step, requests/s (default: peak users x user rate)")
    ] = None,
    max_rate: Annotated[float, typer.Option(help="Highest rate the capacity search offers, requests/s")] = 2000.0,
    p99_ms: Annotated[
        float | None,
        typer.Option(
            help="Gate: p99 latency must stay below this "
            f"(ms; default: slo/specs, {suite_targets().latency_threshold_ms:g})"
        ),
    ] = None,
    availability: Annotated[
        float | None,
        typer.Option(
            help="Gate: availability must be at least this "
            f"(%; default: slo/specs, {suite_targets().availability_percent:g})"
        ),
    ] = None,
    plan: Annotated[
        Path | None,
        typer.Option(
            help="Capacity plan from a capacity.json (--find-capacity); no load is run", metavar="CAPACITY_JSON"
        ),
    ] = None,
    peak_rps: Annotated[float | None, typer.Option(help="Plan: today's peak, requests/s")] = None,
    headroom: Annotated[float, typer.Option(help="Plan: spare share above the load (0.3 = 30%)")] = 0.3,
    workers_per_pod: Annotated[int, typer.Option(help="Plan: worker processes per pod (NOVA_WORKERS)")] = 2,
    pool_size: Annotated[int, typer.Option(help="Plan: database pool per worker (NOVA_DB_POOL_SIZE)")] = 4,
    max_overflow: Annotated[
        int | None, typer.Option(help="Plan: pool overflow per worker (default: pool size // 2, as the services)")
    ] = None,
    max_connections: Annotated[int, typer.Option(help="Plan: each database's connection budget")] = 200,
    min_pods: Annotated[int, typer.Option(help="Plan: fewest pods per service")] = 2,
    measured_workers: Annotated[
        int | None,
        typer.Option(help="Plan: workers per service during the search (default: recorded in capacity.json)"),
    ] = None,
) -> None:
    """Load the platform with Locust, judge the run by the SLO gate (p99 and availability), write the results."""
    if plan is not None:
        if find_capacity or web:
            raise fail("--plan reads a capacity.json and runs no load: not with --find-capacity or --web")
        sizing = (headroom, workers_per_pod, pool_size, max_overflow, max_connections, min_pods)
        _plan(plan, mix, peak_rps, sizing, measured_workers, out)
        return
    seconds = _duration(duration)
    mixes = _mixes(mix, find_capacity)
    if shape not in SHAPES:
        raise fail(f"--shape must be one of {', '.join(SHAPES)}, not {shape!r}")
    try:
        stages(shape, peak_users, seconds)
    except ValueError as exc:
        raise fail(f"--shape {shape}: {exc}") from None
    if not (math.isfinite(user_rate) and user_rate > 0):
        raise fail("--user-rate must be a positive number of requests per second")
    if web and find_capacity:
        raise fail("--web and --find-capacity exclude each other: the search needs headless runs")
    if rate is not None:
        if not (math.isfinite(rate) and rate > 0):
            raise fail("--rate must be a positive number of requests per second")
        if find_capacity:
            raise fail("--rate and --find-capacity exclude each other: the search chooses its own rates")
        try:
            Timetable(rate, shape, float(seconds), processes)
        except ValueError as exc:
            raise fail(f"--rate {rate:g} with --shape {shape}: {exc}") from None
    try:
        targets = suite_targets()
        thresholds = Thresholds.from_percent(
            targets.latency_threshold_ms if p99_ms is None else p99_ms,
            targets.availability_percent if availability is None else availability,
        )
    except GateError as exc:
        raise fail(str(exc)) from None
    first_rate = start_rate if start_rate is not None else peak_users * user_rate
    if find_capacity and not (math.isfinite(max_rate) and 0 < first_rate <= max_rate):
        raise fail(
            f"the first capacity step ({first_rate:g}/s) must be above 0 and at most --max-rate ({max_rate:g}/s)"
        )
    if not LOCUSTFILE.is_file():
        raise fail(f"{LOCUSTFILE} is missing: the Locust users are not installed")
    folder = out or data_dir / "load" / time.strftime("%Y%m%d-%H%M%S")
    for earlier in (SAMPLES_FILE, CAPACITY_FILE):
        # A run that fails to write its samples must never be judged on an earlier run's.
        if (folder / earlier).exists():
            raise fail(f"{folder} already holds a run ({earlier}); give --out a new folder")
    target = _target(data_dir, payments_url, portfolio_url)
    base = RunParameters(
        shape,
        peak_users,
        float(seconds),
        user_rate,
        mixes[0],
        processes,
        target.payments_url,
        target.portfolio_url,
        rate or 0.0,
    )
    if find_capacity:
        _capacity(base, mixes, target, folder, thresholds, float(step_seconds), first_rate, max_rate)
    elif web:
        _web(LocustRun(base, folder, target.admin_token, web=True))
    else:
        _headless(LocustRun(base, folder, target.admin_token), thresholds)


def _duration(text: str) -> int:
    try:
        seconds = int(text) if text.strip().isdigit() else parse_duration(text)
    except ValueError as exc:
        raise fail(f"--duration: {exc}") from None
    if seconds < 1:
        raise fail("--duration must be at least 1 second")
    return seconds


def _mixes(given: list[str] | None, find_capacity: bool) -> list[str]:
    names = [name.strip() for item in given or ["trading"] for name in item.split(",") if name.strip()]
    if "all" in names:
        names = list(MIXES)
    unknown = [name for name in names if name not in MIXES]
    if unknown or not names:
        raise fail(f"--mix must be one of {', '.join(MIXES)}, not {', '.join(map(repr, unknown)) or 'nothing'}")
    if len(names) > 1 and not find_capacity:
        raise fail("give one --mix per run (several are for --find-capacity)")
    return list(dict.fromkeys(names))


def _target(data_dir: Path, payments_url: str | None, portfolio_url: str | None) -> Target:
    """URLs from the options, else from the running `nova serve`'s serve.json, else the defaults;
    the admin token from NOVA_ADMIN_TOKEN, else `<data-dir>/admin-token` (as `nova serve` decides)."""
    try:
        state = read_serve_state(data_dir)
    except ServeStateError:
        raise fail(f"{serve_state_path(data_dir)} is not the state file nova serve writes") from None
    if state is not None and not state.supervisor_alive():
        # Left behind by a `nova serve` that was killed: its URLs and worker counts describe nothing.
        print(
            f"nova load: ignoring {serve_state_path(data_dir)}: the nova serve that wrote it is not running",
            file=sys.stderr,
        )
        state = None
    served = state.services if state is not None else {}
    urls, workers = {}, {}
    for name, given, port in (
        ("payments", payments_url, DEFAULT_PAYMENTS_PORT),
        ("portfolio", portfolio_url, DEFAULT_PORTFOLIO_PORT),
    ):
        entry = served.get(name)
        url = given or (entry.url if entry else None) or f"http://127.0.0.1:{port}"
        if not url.startswith(("http://", "https://")):
            raise fail(f"--{name}-url must be an http:// or https:// URL, not {url!r}")
        urls[name] = url.rstrip("/")
        if not given and entry is not None:
            workers[name] = entry.workers  # the services measured are the ones serve.json describes
    try:
        token = read_admin_token(data_dir)
    except ServeStateError:
        raise fail("no admin token: set NOVA_ADMIN_TOKEN or point --data-dir at the folder with admin-token") from None
    for name, url in urls.items():
        _require_ready(name, url)
    return Target(urls["payments"], urls["portfolio"], token, workers if len(workers) == len(urls) else None)


def _require_ready(name: str, url: str) -> None:
    try:
        status = httpx.get(f"{url}/readyz", timeout=5.0).status_code
    except httpx.HTTPError as exc:
        raise fail(f"{name} is not reachable at {url} ({type(exc).__name__}); start it with nova serve") from None
    if status != 200:
        raise fail(f"{name} at {url} is not ready (/readyz answered {status})")


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        TextColumn("of {task.total:.0f} s"),
        console=console,
    )


def _headless(spec: LocustRun, thresholds: Thresholds) -> None:
    run = spec.run
    plan = stages(run.shape, run.peak_users, run.duration_seconds)

    timetable = run.timetable

    def phase(elapsed: float) -> str:
        if timetable is not None:
            return (
                f"{run.shape}, {run.mix} mix: {timetable.share_at(elapsed) * run.rate:.0f} of {run.rate:g} requests/s"
            )
        return f"{run.shape}, {run.mix} mix: {users_at(plan, elapsed):.0f} of {run.peak_users} users"

    with _progress() as bar:
        task = bar.add_task(phase(0), total=run.duration_seconds)
        interrupted = False
        try:
            code = run_headless(spec, _ticker(bar, task, run.duration_seconds, phase))
        except KeyboardInterrupt:
            # Locust is stopped the way the shape's end stops it, so what it measured is on disk:
            # judge it (a game day's rollback interrupts a run that would otherwise leave no evidence).
            interrupted, code = True, 130
        try:
            bar.update(task, description="computing the SLO gate", completed=run.duration_seconds)
            summary, files = collect(spec, thresholds, code)
            audit = payment_audit.read_audit(spec.results)
            if audit is not None:
                summary = replace(summary, audit=audit)
                write_summary(files.summary, summary)
        except (LocustError, GateError) as exc:
            if interrupted:
                raise fail(f"interrupted; Locust stopped (log in {spec.results / 'locust.log'})", 130) from None
            raise fail(str(exc), 2) from None
        except KeyboardInterrupt:
            raise fail(f"interrupted; Locust stopped (log in {spec.results / 'locust.log'})", 130) from None
    load = f"{run.rate:g} requests/s (open model)" if timetable else f"{run.peak_users} peak users"
    print_gate(summary.gate, f"SLO gate: {run.shape}, {load}, {run.mix} mix")
    if summary.open_load is not None:
        figures = summary.open_load
        line = (
            f"offered {figures.offered_rps:.1f} requests/s, achieved {figures.achieved_rps:.1f}; "
            f"{figures.late_sends} of {figures.sends} sends late; p99 from the scheduled send "
            f"{summary.gate.overall.p99_corrected_ms:.1f} ms (service time {summary.gate.overall.p99_ms:.1f} ms)"
        )
        console.print(line if figures.kept_up else f"[red]{line}[/red]")
    if summary.audit is None:
        console.print(f"[yellow]audit: none ({payment_audit.AUDIT_FILE} was not written; see locust.log)[/yellow]")
    else:
        line = summary.audit.summary_line()
        console.print(line if summary.audit.passed else f"[red]{line}[/red]")
    console.print(
        f"results in {spec.results} (summary.json, endpoints.csv, {SCENARIO_DIR}/, samples.csv, "
        f"{payment_audit.AUDIT_FILE})"
    )
    if interrupted:
        raise fail(
            f"interrupted before the end of the run; what it measured is judged above and in {spec.results}", 130
        )
    _verdict(summary)


def _ticker(bar: Progress, task: TaskID, duration: float, phase: Callable[[float], str] | None = None) -> Tick:
    """Progress from the elapsed time: the run's length is known, and so is the shape's user count."""

    def tick(elapsed: float) -> None:
        if elapsed > duration:
            bar.update(task, description="stopping Locust, writing samples", completed=duration)
        elif phase is not None:
            bar.update(task, description=phase(elapsed), completed=elapsed)
        else:
            bar.update(task, completed=elapsed)

    return tick


def _verdict(summary: RunSummary) -> None:
    breaches = summary.breaches
    if not breaches:
        limits = summary.gate.thresholds
        console.print(
            f"[green]PASS[/green]: p99 < {limits.p99_ms:g} ms, availability >= {format_percent(limits.availability)}"
        )
        return
    more = f" (and {len(breaches) - 1} more)" if len(breaches) > 1 else ""
    what = "SLO gate failed" if not summary.gate.passed else "load run failed"
    raise fail(f"{what}: {breaches[0]}{more}", 1)


def print_gate(gate: GateResult, title: str) -> None:
    table = Table(title=title)
    columns = (
        "endpoint",
        "requests",
        "retries",
        "failed",
        "req/s",
        "availability",
        "after retries",
        "p50 ms",
        "p99 ms",
        "p99 95% interval",
        "error ratio <= (95%)",
        "max ms",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "endpoint" else "right")
    table.add_column("availability judged on")
    table.add_column("verdict")
    minimum = gate.thresholds.min_requests_to_judge
    for row in gate.rows:
        rule = (
            f"zero failures (n < {minimum})"
            if row.availability_rule == RULE_ZERO_FAILURES
            else f">= {format_percent(gate.thresholds.availability)}"
        )
        verdict = "[green]pass[/green]" if row.passed else "[red]FAIL[/red]"
        table.add_row(
            f"[bold]{row.endpoint}[/bold]" if row is gate.overall else row.endpoint,
            str(row.requests),
            str(row.retries),
            str(row.failures),
            f"{row.requests_per_second:.1f}",
            _flag(format_percent(row.availability), row.availability_ok),
            format_percent(row.availability_after_retries),
            f"{row.p50_ms:.1f}",
            _flag(f"{row.p99_ms:.1f}", row.latency_ok),
            f"{row.p99_low_ms:.0f}..{'inf' if row.p99_high_ms is None else f'{row.p99_high_ms:.0f}'}",
            f"{row.error_ratio_upper_bound:.1e}",
            f"{row.max_ms:.1f}",
            rule,
            verdict,
        )
    console.print(table)


def _flag(text: str, ok: bool) -> str:
    return text if ok else f"[red]{text}[/red]"


def _web(spec: LocustRun) -> None:
    console.print(f"Locust UI on {LOCUST_WEB_URL} (start the run there); Ctrl-C stops Locust")
    with LocustProcess(spec) as locust:
        try:
            code = locust.wait(None)
        except KeyboardInterrupt:
            code = 130
    console.print(f"Locust exited ({code}); its log and any samples are in {spec.results}")


def _capacity(
    base: RunParameters,
    mixes: list[str],
    target: Target,
    folder: Path,
    thresholds: Thresholds,
    step_seconds: float,
    start_rate: float,
    max_rate: float,
) -> None:
    found: dict[str, CapacityResult] = {}
    warmup = min(10.0, step_seconds / 3)
    with _progress() as bar:
        task = bar.add_task("capacity search", total=step_seconds)
        for mix in mixes:

            def on_step(number: int, rate: float, mix: str = mix) -> None:
                bar.reset(task, total=step_seconds, description=f"{mix}: step {number} at {rate:.0f} req/s")

            runner = LocustStep(
                replace(base, mix=mix),
                folder / mix,
                target.admin_token,
                thresholds,
                step_seconds,
                warmup,
                tick=_ticker(bar, task, step_seconds),
                on_step=on_step,
            )
            try:
                found[mix] = find_capacity(runner, start_rate, max_rate)
            except (LocustError, GateError) as exc:
                raise fail(f"{mix}, step {runner.count}: {exc}", 2) from None
            except KeyboardInterrupt:
                raise fail("interrupted; Locust stopped", 130) from None
    for mix, result in found.items():
        print_steps(mix, result)
    print_capacity(found, thresholds)
    path = folder / CAPACITY_FILE
    write_capacity(path, found, thresholds, step_seconds, warmup, base, target.workers)
    console.print(f"capacity figures in {path}; each step's results in {folder}/<mix>/step-*")
    unmet = [mix for mix, result in found.items() if result.capacity is None]
    if unmet:
        raise fail(f"no step passed the gate for {', '.join(unmet)} (lowest rate tried {_lowest(found)}/s)", 1)


def _lowest(found: dict[str, CapacityResult]) -> str:
    return f"{min(step.offered_rate for result in found.values() for step in result.steps):.1f}"


def print_steps(mix: str, result: CapacityResult) -> None:
    table = Table(title=f"Capacity search, {mix} mix")
    for column in ("step", "offered/s", "achieved/s", "requests", "failed", "availability", "p99 ms", "verdict"):
        table.add_column(column, justify="left" if column == "verdict" else "right")
    for number, step in enumerate(result.steps, start=1):
        table.add_row(
            str(number),
            f"{step.offered_rate:.1f}",
            f"{step.achieved_rate:.1f}",
            str(step.requests),
            str(step.failures),
            format_percent(step.availability) if step.requests else "—",
            f"{step.p99_ms:.1f}" if step.requests else "—",
            "[green]pass[/green]" if step.passed else f"[red]fail[/red]: {step.reason}",
        )
    console.print(table)


def print_capacity(found: dict[str, CapacityResult], thresholds: Thresholds) -> None:
    table = Table(
        title=f"Highest sustained rate with p99 < {thresholds.p99_ms:g} ms "
        f"and availability >= {format_percent(thresholds.availability)}"
    )
    for column in ("mix", "capacity req/s", "p99 ms there", "limited by", "steps"):
        table.add_column(column, justify="left" if column in ("mix", "limited by") else "right")
    for mix, result in found.items():
        best = result.best
        limit = "--max-rate reached without a failure" if result.limited_by == LIMIT_MAX_RATE else result.limited_by
        table.add_row(
            mix,
            "none passed" if best is None else f"{best.achieved_rate:.1f}",
            "—" if best is None else f"{best.p99_ms:.1f}",
            limit,
            str(len(result.steps)),
        )
    console.print(table)


def write_capacity(
    path: Path,
    found: dict[str, CapacityResult],
    thresholds: Thresholds,
    step_seconds: float,
    warmup_seconds: float,
    base: RunParameters,
    service_workers: dict[str, int] | None = None,
) -> None:
    run = CapacitySearchRun(
        max_user_rate=base.user_rate,
        processes=base.processes,
        payments_url=base.payments_url,
        portfolio_url=base.portfolio_url,
        service_workers=service_workers or None,  # from serve.json: what the capacity plan divides by
    )
    CapacityReport(dict(found), thresholds, step_seconds, warmup_seconds, run).write(path)


def _plan(
    capacity_file: Path,
    mix: list[str] | None,
    peak_rps: float | None,
    sizing: tuple[float, int, int, int | None, int, int],
    measured_workers: int | None,
    out: Path | None,
) -> None:
    """`--plan`: the capacity plan from a measured capacity.json, printed and written to plan.json."""
    if peak_rps is None:
        raise fail("--plan needs --peak-rps (today's peak, requests/s)")
    names = [name.strip() for item in mix or [] for name in item.split(",") if name.strip()]
    if len(names) > 1 or "all" in names:
        raise fail("--plan plans one mix: give one --mix, or none for the mix with the lowest capacity")
    try:
        inputs = PlanInputs(peak_rps, *sizing)
        measured = read_capacity(capacity_file, names[0] if names else None, measured_workers)
    except CapacityPlanError as exc:
        raise fail(str(exc)) from None
    result = capacity_plan(measured, inputs)
    print_plan(result)
    path = (out or capacity_file.parent) / PLAN_FILE
    try:
        write_plan(path, result)
    except OSError as exc:
        raise fail(f"cannot write {path}: {exc.strerror or exc}") from None
    console.print(f"plan in {path}")
    over = [tier.name for tier in result.tiers if not tier.fits]
    if over:
        console.print(
            f"[yellow]over the {inputs.max_connections}-connection budget for: {', '.join(over)} "
            "(a pooler such as PgBouncer, a smaller pool, or a larger max_connections)[/yellow]"
        )


def print_plan(result: CapacityPlan) -> None:
    measured, inputs = result.measured, result.inputs
    console.print(
        f"measured: {measured.mix} mix, {measured.capacity_rps:.1f} req/s with {measured.measured_workers} "
        f"workers per service = {measured.per_worker_rps:.2f} req/s per worker ({measured.source})"
    )
    table = Table(
        title=f"Capacity plan: {inputs.headroom * 100:g}% headroom, {inputs.workers_per_pod} workers per pod, "
        f"{inputs.connections_per_worker} connections per worker ({inputs.pool_size} + {inputs.overflow} overflow)"
    )
    columns = ("load", "req/s", "with headroom", "workers", "pods payments", "pods portfolio", "serves req/s")
    for column in (*columns, "DB conns per service", "budget", "fits"):
        table.add_column(column, justify="left" if column == "load" else "right")
    for tier in result.tiers:
        table.add_row(
            tier.name,
            f"{tier.load_rps:.1f}",
            f"{tier.target_rps:.1f}",
            str(tier.workers),
            str(tier.pods),
            str(tier.pods),
            f"{result.served_rps(tier):.1f}",
            str(tier.connections),
            str(inputs.max_connections),
            "[green]yes[/green]" if tier.fits else "[red]no[/red]",
        )
    console.print(table)
