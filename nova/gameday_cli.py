"""`nova gameday`: the main job. Runs `chaos.gameday.GameDay` with a live display and writes the report.

Exit codes: 0 every check passed; 1 the game day ran and a check failed (the report says which);
2 it could not run (bad input, a process that would not start); 130 interrupted (Ctrl-C or
SIGTERM), after stopping everything it started.
"""

from __future__ import annotations

import math
import signal
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer
from rich.live import Live
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from chaos.gameday_plan import (
    FULL_EXPERIMENTS,
    PEAK_RATE,
    QUICK_EXPERIMENTS,
    GameDayError,
    GameDayOptions,
    check_options,
)
from core_services.settings import DEFAULT_DATA_DIR
from nova.output import console, fail

if TYPE_CHECKING:
    from chaos.gameday import GameDay
    from chaos.gameday import Progress as GameDayProgress
    from chaos.gameday_model import GameDayResult, PhaseResult


def gameday(
    ctx: typer.Context,
    quick: Annotated[
        bool,
        typer.Option(
            "--quick", help=f"The short game day (under 4 minutes at 250 requests/s): {', '.join(QUICK_EXPERIMENTS)}"
        ),
    ] = False,
    experiments: Annotated[
        list[str] | None,
        typer.Option(
            "--experiments",
            help="Experiments to run, by name (repeat, or separate with commas); default: the quick or full set "
            f"({', '.join(FULL_EXPERIMENTS)})",
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Report folder (default: .nova/gameday/<timestamp>)")] = None,
    payments_db: Annotated[
        str | None, typer.Option(envvar="NOVA_PAYMENTS_DB", help="postgresql:// URL (default: SQLite)")
    ] = None,
    portfolio_db: Annotated[
        str | None, typer.Option(envvar="NOVA_PORTFOLIO_DB", help="postgresql:// URL (default: SQLite)")
    ] = None,
    workers: Annotated[int, typer.Option(min=1, max=16, help="Worker processes per service")] = 2,
    embedded: Annotated[
        bool,
        typer.Option("--embedded", help="Use the embedded scraper and SLO evaluator even if Prometheus is installed"),
    ] = False,
    rate: Annotated[
        float,
        typer.Option(
            help="Requests/s every phase offers across payments, orders and portfolio reads, on a timetable that "
            "does not wait for answers (open model; the case study's peak is 250); 0: the closed model of earlier "
            "game days (market-open users)"
        ),
    ] = PEAK_RATE,
    capacity_share: Annotated[
        float | None,
        typer.Option(
            help="Offer this share of the platform's measured capacity instead of --rate (0.8 = 80%); the "
            "capacity comes from --capacity, or from a short calibration at the start"
        ),
    ] = None,
    capacity: Annotated[
        Path | None,
        typer.Option(help="capacity.json from nova load --find-capacity, for --capacity-share", metavar="FILE"),
    ] = None,
    abort_budget: Annotated[
        float | None,
        typer.Option(
            help="Guardrail: stop an experiment at once when it has burned more than this percent of the 30-day "
            "error budget (faults cleared, rollbacks run, the report says why; the game day then fails)",
            metavar="PCT",
        ),
    ] = None,
) -> None:
    """Run a game day: start the platform, load it, break it, check the SLOs, alerts and ledger, write the report.

    Every phase offers --rate requests/s (250, the case study's peak, by default) or --capacity-share
    of the measured capacity; the full game day adds a spike_10x phase (ten times the rate, capped
    at the measured capacity when there is one). The report gives, per phase, the rate offered and
    achieved, the p99 from the scheduled send, the time to detect (fault start to each alert) and
    to recover (fault end to SLIs back within objective). Compare two game days with
    `nova gameday compare A B`.
    """
    if ctx.invoked_subcommand is not None:
        return
    names = tuple(name.strip() for entry in experiments or () for name in entry.split(",") if name.strip())
    options = GameDayOptions(
        out=out or DEFAULT_DATA_DIR / "gameday" / time.strftime("%Y%m%d-%H%M%S"),
        quick=quick,
        experiments=names,
        payments_db=payments_db,
        portfolio_db=portfolio_db,
        workers=workers,
        prometheus=not embedded,
        rate=rate,
        capacity_share=capacity_share,
        capacity_file=capacity,
        abort_budget=abort_budget,
    )
    try:
        check_options(options)
    except GameDayError as exc:
        raise fail(str(exc)) from None
    from chaos.gameday import GameDay  # the runner's imports are heavy; --help and bad input do without

    day = GameDay(options)
    load = (
        f"{capacity_share:g} of the measured capacity"
        if capacity_share is not None
        else (f"{rate:g} requests/s" if rate > 0 else "closed-model users")
    )
    console.print(
        f"game day ({'quick' if quick else 'full'}): baseline, {', '.join((*options.load_phases, *options.chosen))}; "
        f"{load}; {'PostgreSQL' if payments_db else 'SQLite'}; report in {options.out}"
    )
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        result = _run_with_display(day)
    finally:
        signal.signal(signal.SIGTERM, previous)
    from chaos.gameday_report import write_report

    files = write_report(result, options.out)
    console.print(_summary(result))
    console.print(f"report: {files.html}  ({files.markdown.name}, {files.json.name}, journals/, scenario/)")
    if result.load_plan is not None and result.load_plan.note:
        console.print(f"[yellow]load: {result.load_plan.note}[/yellow]")
    if result.interrupted:
        raise fail("interrupted; everything the game day started is stopped", 130)
    if result.error:
        raise fail(result.error, 2)
    if not result.passed:
        failed = [f"{p.name}: {c.name}" for p in result.phases for c in p.checks if not c.passed]
        raise fail(f"{len(failed)} check(s) failed: {'; '.join(failed)}", 1)
    console.print("[green]game day passed: every check held[/green]")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _run_with_display(day: GameDay) -> GameDayResult:
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[live]}"),
        console=console,
    )
    tasks: dict[str, TaskID] = {}

    def show(update: GameDayProgress) -> None:
        if update.phase not in tasks:
            for task in tasks.values():
                progress.update(task, completed=progress.tasks[task].total)
            tasks[update.phase] = progress.add_task(
                f"[{update.index}/{update.phases}] {update.phase}", total=update.expected, live=""
            )
        progress.update(tasks[update.phase], completed=min(update.elapsed, update.expected), live=_live(update))

    day.progress = show
    with Live(progress, console=console, refresh_per_second=4, transient=False):
        result = day.run()
        for task in tasks.values():
            progress.update(task, completed=progress.tasks[task].total)
    return result


def _live(update: GameDayProgress) -> str:
    parts = []
    for service, figures in update.live.items():
        availability, p99 = figures.get("availability", math.nan), figures.get("p99_ms", math.nan)
        shown = "-" if math.isnan(availability) else f"{availability:.2%}"
        parts.append(f"{service} {figures.get('rps', 0.0):.0f}/s {shown} p99 {0 if math.isnan(p99) else p99:.0f} ms")
    return " | ".join(parts)


def _recovery(phase: PhaseResult) -> str:
    if phase.fault is None:
        return "-"
    return "not within the phase" if phase.recovery is None else f"{phase.recovery:.0f} s"


def _summary(result: GameDayResult) -> Table:
    table = Table(title="Game day")
    columns = ("phase", "status", "checks", "offered/achieved req/s", "after retries", "p99 ms (corrected)")
    for column in (*columns, "pages / tickets (TTD)", "TTR"):
        table.add_column(column)
    for phase in result.phases:
        passed = sum(check.passed for check in phase.checks)
        alerts = ", ".join(
            f"{a.alert} {a.severity}" + (f" +{a.delay_seconds:.0f}s" if a.delay_seconds is not None else "")
            for a in phase.alerts
        )
        load = phase.load
        table.add_row(
            phase.name,
            phase.status,
            f"{'[green]' if phase.passed else '[red]'}{passed}/{len(phase.checks)}[/]",
            f"{load.offered_rps:.0f}/{load.achieved_rps:.0f}" if load else "-",
            f"{load.availability_after_retries:.4%}" if load else "-",
            f"{load.p99_ms:.0f} ({load.p99_corrected_ms:.0f})" if load else "-",
            alerts or "-",
            _recovery(phase),
        )
    return table


def compare(
    a: Annotated[Path, typer.Argument(help="The earlier game day's folder (the reference)")],
    b: Annotated[Path, typer.Argument(help="The later game day's folder (the one judged)")],
    out: Annotated[
        Path | None, typer.Option(help="Write compare.html, compare.md and compare.json into this folder")
    ] = None,
) -> None:
    """Compare two game days phase by phase: availability, p99 (Mann-Whitney U on the latency samples),
    time to detect, time to recover, budget burned. Exit 1 when B is significantly worse than A."""
    from chaos.gameday_compare import CompareError, compare_game_days, write_comparison

    try:
        comparison = compare_game_days(a, b)
    except CompareError as exc:
        raise fail(str(exc)) from None
    if not comparison.phases:
        raise fail(f"{a} and {b} have no phase in common")
    table = Table(title=f"Game day comparison: A {a}, B {b}")
    for column in ("phase", "failed A", "failed B", "p99 A ms", "p99 B ms", "U test p", "A12", "TTR A", "TTR B"):
        table.add_column(column)
    for phase in comparison.phases:
        latency, availability = phase.latency, phase.availability
        table.add_row(
            f"[red]{phase.phase}[/red]" if phase.reasons else phase.phase,
            f"{availability.failures_a}/{availability.requests_a}" if availability else "-",
            f"{availability.failures_b}/{availability.requests_b}" if availability else "-",
            f"{latency.p99_a_ms:.1f}" if latency else "-",
            f"{latency.p99_b_ms:.1f}" if latency else "-",
            f"{latency.p_value:.2g}" if latency else "-",
            f"{latency.effect:.2f}" if latency else "-",
            "-" if phase.recovery_a is None else f"{phase.recovery_a:.0f} s",
            "-" if phase.recovery_b is None else f"{phase.recovery_b:.0f} s",
        )
    console.print(table)
    if out is not None:
        files = write_comparison(comparison, out)
        console.print(f"comparison: {', '.join(str(path) for path in files)}")
    if comparison.worse:
        details = "; ".join(
            f"{phase.phase}: {', '.join(phase.reasons)}" for phase in comparison.phases if phase.reasons
        )
        raise fail(f"B is significantly worse than A in {', '.join(comparison.worse_phases)} ({details})", 1)
    console.print("[green]B is not significantly worse than A in any phase[/green]")
