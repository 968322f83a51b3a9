"""`nova runbooks check|run`: hold alerts and runbooks to each other; run a runbook's diagnostics."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from core_services.settings import DEFAULT_DATA_DIR
from nova.output import console, fail
from runbooks.catalog import PLATFORM_RULES, RUNBOOKS_DIR, suite_alerts
from runbooks.check import check_runbooks, find_promtool
from runbooks.document import Step
from runbooks.errors import RunbookError, UnknownAlertError
from runbooks.run import ATTENTION, ERROR, OK, SKIPPED, RunContext, causes_found, find_runbook, run_steps

runbooks_app = typer.Typer(
    help="Runbooks: one per alert; check that every alert has one, run their diagnostics.", no_args_is_help=True
)

RunbooksDir = Annotated[Path, typer.Option("--runbooks", help="Folder of runbook Markdown files")]
STATUS_STYLE = {OK: "green", ATTENTION: "bold red", SKIPPED: "dim", ERROR: "bold yellow"}


@runbooks_app.callback()
def _runbooks() -> None:
    """Runbooks: one per alert; check that every alert has one, run their diagnostics."""


@runbooks_app.command()
def check(
    rules: Annotated[
        Path | None,
        typer.Option(help="SLO rule file to read alerts from (default: generated from slo/specs, as `nova slo rules`)"),
    ] = None,
    runbooks: RunbooksDir = RUNBOOKS_DIR,
    platform_rules: Annotated[Path, typer.Option(help="The platform's rule file")] = PLATFORM_RULES,
) -> None:
    """Every alert has a runbook_url to a complete runbook, and every runbook belongs to an alert; exit 1 if not."""
    promtool = find_promtool()
    try:
        alerts = suite_alerts(rules, platform_rules)
        with console.status("checking runbooks" + (" (PromQL through promtool)" if promtool else "")):
            problems = check_runbooks(alerts, runbooks, promtool)
    except RunbookError as exc:
        raise fail(str(exc)) from None
    names = {alert.name for alert in alerts}
    if not problems:
        parsed = "PromQL parsed by promtool" if promtool else "PromQL not parsed: promtool not on PATH"
        console.print(
            f"runbooks OK: {len(alerts)} alerts ({len(names)} names), every one with a complete runbook in "
            f"{runbooks}; {parsed}",
            highlight=False,
        )
        return
    table = Table(title=f"{len(problems)} runbook problem(s)", title_justify="left")
    table.add_column("where", no_wrap=True)
    table.add_column("problem")
    for problem in problems:
        table.add_row(escape(problem.where), escape(problem.what))
    console.print(table)
    raise fail(f"{len(problems)} runbook problem(s); first: {problems[0]}", 1)


@runbooks_app.command()
def run(
    alert: Annotated[str, typer.Argument(help="Alert name (PaymentsAvailabilityBurn) or runbook file name")],
    severity: Annotated[
        str | None, typer.Option(help="page or ticket, for an alert fired at both (default: page)")
    ] = None,
    prometheus: Annotated[
        str | None,
        typer.Option(envvar="NOVA_PROMETHEUS_URL", help="Prometheus running the suite's rules (else embedded scraper)"),
    ] = None,
    data_dir: Annotated[
        Path, typer.Option(envvar="NOVA_DATA_DIR", help="Data dir of the running `nova serve`")
    ] = DEFAULT_DATA_DIR,
    runbooks: RunbooksDir = RUNBOOKS_DIR,
    serve_log: Annotated[
        Path | None,
        typer.Option(
            envvar="NOVA_SERVE_LOG",
            help="The log `nova serve` writes: its supervisors name each worker they replaced and why",
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the results as JSON")] = False,
) -> None:
    """Run the runbook's diagnostic steps (PromQL, /readyz, ledger, faults) and print what they found,
    and the causes their findings point to.

    Exit 0 when every step ran (its result may still show trouble), 1 when a step could not run, 2 on bad input.
    """
    if severity is not None and severity not in ("page", "ticket"):
        raise fail(f"--severity must be page or ticket, not {severity!r}")
    if prometheus and not prometheus.startswith(("http://", "https://")):
        raise fail(f"--prometheus must be an http(s) URL, not {prometheus!r}")
    try:
        runbook = find_runbook(alert, runbooks, severity)
    except (UnknownAlertError, RunbookError) as exc:
        raise fail(str(exc)) from None
    if not runbook.steps:
        raise fail(f"{runbook.path} declares no diagnostic steps")
    context = RunContext(data_dir=data_dir, prometheus_url=prometheus or "", serve_log=serve_log)
    started = time.time()

    with console.status("running the diagnostics") as status:

        def progress(number: int, step: Step) -> None:
            status.update(f"step {number}/{len(runbook.steps)}: {step.title}")

        results = run_steps(runbook, context, progress)
    causes = causes_found(results)

    if json_output:
        document = {
            "runbook": str(runbook.path),
            "alerts": list(runbook.alerts),
            "severity": runbook.severity,
            "prometheus": context.prometheus_url or None,
            "data_dir": str(data_dir),
            "started_at": started,
            "finished_at": time.time(),
            "causes": causes,
            "steps": [result.document() for result in results],
        }
        # Plain print: one JSON document on stdout, unwrapped, whatever the terminal's width.
        print(json.dumps(document, indent=2))
    else:
        source = (
            f"Prometheus {context.prometheus_url}" if context.prometheus_url else "embedded scraper (no Prometheus)"
        )
        table = Table(
            title=f"{runbook.path.name} ({runbook.severity}: {', '.join(runbook.alerts)}); {source}; {data_dir}",
            title_justify="left",
            show_lines=True,
        )
        for column in ("#", "section", "step", "status", "result", "points to", "source"):
            table.add_column(column, overflow="fold")
        for number, result in enumerate(results, 1):
            style = STATUS_STYLE.get(result.status, "")
            table.add_row(
                str(number),
                result.step.section,
                escape(result.step.title),
                f"[{style}]{result.status}[/{style}]",
                escape("\n".join(result.lines)),
                escape(", ".join(result.causes)),
                escape(result.source),
            )
        console.print(table)
        console.print(
            f"causes found: {', '.join(causes)}" if causes else "causes found: none (no step's finding names one)",
            highlight=False,
        )
    errors = [r for r in results if r.status == ERROR]
    if errors:
        raise fail(f"{len(errors)} of {len(results)} step(s) could not run; first: {errors[0].step.title}", 1)
