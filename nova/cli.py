"""The `nova` command: one entry point for every tool of the suite."""

from __future__ import annotations

import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from typer._click.exceptions import UsageError

from core_services.settings import DEFAULT_DATA_DIR, SettingsError, database_url
from loadtests.serve_state import ServeStateError, read_admin_token
from nova.alerts_cli import alerts_app
from nova.alerts_detect_cli import detect
from nova.gameday_cli import compare, gameday
from nova.load_cli import load
from nova.output import console, err, fail
from nova.pager_cli import pager_app
from nova.runbooks_cli import runbooks_app
from nova.serve import DEFAULT_FAULT_PROXY_PORT, Platform, ServeError, ServeOptions
from nova.slo_cli import slo_app

app = typer.Typer(
    help="Nova Reliability Suite: payments platform, SLOs, load, chaos, alerts.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

app.add_typer(slo_app, name="slo")
alerts_app.command(name="detect")(detect)
app.add_typer(alerts_app, name="alerts")
app.add_typer(pager_app, name="pager")
app.add_typer(runbooks_app, name="runbooks")
app.command(name="load")(load)
gameday_app = typer.Typer(no_args_is_help=False)
gameday_app.callback(invoke_without_command=True)(gameday)
gameday_app.command(name="compare")(compare)
app.add_typer(gameday_app, name="gameday")

DataDir = Annotated[Path, typer.Option(help="Where SQLite files, the admin token and run state live")]
Workers = Annotated[int, typer.Option(min=1, max=64, help="Worker processes per service")]


@app.command()
def serve(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    payments_port: Annotated[int, typer.Option(min=1, max=65535)] = 8001,
    portfolio_port: Annotated[int, typer.Option(min=1, max=65535)] = 8002,
    workers: Workers = 2,
    payments_db: Annotated[
        str | None, typer.Option(envvar="NOVA_PAYMENTS_DB", help="postgresql:// URL (default: SQLite in data dir)")
    ] = None,
    portfolio_db: Annotated[
        str | None, typer.Option(envvar="NOVA_PORTFOLIO_DB", help="postgresql:// URL (default: SQLite in data dir)")
    ] = None,
    market_seed: Annotated[
        int | None,
        typer.Option(
            envvar="NOVA_MARKET_SEED",
            help="Fix the market simulator's seed (default: a secret random one kept in <data-dir>/market-seed)",
        ),
    ] = None,
    access_log: Annotated[bool, typer.Option(help="Log every request")] = False,
    enable_faults: Annotated[
        bool,
        typer.Option(
            "--enable-faults",
            envvar="NOVA_ENABLE_FAULTS",
            help="Serve the admin fault API (/admin/faults: loopback clients, admin token) for game days",
        ),
    ] = False,
    fault_proxy: Annotated[
        bool,
        typer.Option(
            "--fault-proxy",
            help="Route portfolio -> payments (and each service -> its PostgreSQL) through a Toxiproxy-compatible "
            "fault proxy on loopback",
        ),
    ] = False,
    fault_proxy_port: Annotated[
        int, typer.Option(min=1, max=65535, help="Port of the fault proxy's Toxiproxy API on 127.0.0.1")
    ] = DEFAULT_FAULT_PROXY_PORT,
) -> None:
    """Start the payments and portfolio services and keep them running until Ctrl-C."""
    options = _serve_options(
        data_dir, host, payments_port, portfolio_port, workers, payments_db, portfolio_db, market_seed, access_log
    )
    if fault_proxy and fault_proxy_port in (payments_port, portfolio_port):
        raise fail("--fault-proxy-port must differ from the services' ports")
    options = replace(options, enable_faults=enable_faults, fault_proxy_port=fault_proxy_port if fault_proxy else None)
    platform = Platform(options)

    def announce() -> None:
        for name in ("payments", "portfolio"):
            console.print(f"{name:<9} ready on {options.url(name)} ({workers} workers)")
        console.print(f"admin token in {data_dir / 'admin-token'}; Ctrl-C stops both")
        if enable_faults:
            console.print("fault injection on: PUT/GET/DELETE /admin/faults on each service (see README)")
        if options.fault_proxy_port is not None and platform.fault_proxy is not None:
            routes = ", ".join(f"{name} via {listen}" for name, listen in platform.fault_proxy.listen.items())
            console.print(f"fault proxy (Toxiproxy API) on {platform.fault_proxy.url}: {routes}")

    try:
        platform.serve_forever(announce)
    except ServeError as exc:
        raise fail(str(exc), 1) from None


@app.command()
def demo(
    data_dir: Annotated[Path | None, typer.Option(help="Data dir (default: a new temporary one)")] = None,
    payments_port: Annotated[int, typer.Option(min=1, max=65535)] = 8001,
    portfolio_port: Annotated[int, typer.Option(min=1, max=65535)] = 8002,
    workers: Workers = 2,
    payments_db: Annotated[str | None, typer.Option(envvar="NOVA_PAYMENTS_DB")] = None,
    portfolio_db: Annotated[str | None, typer.Option(envvar="NOVA_PORTFOLIO_DB")] = None,
) -> None:
    """Start the platform, walk a customer journey through both APIs, print it, stop."""
    from loadtests.smoke import run_journey

    with tempfile.TemporaryDirectory(prefix="nova-demo-") as scratch:
        options = _serve_options(
            data_dir or Path(scratch),
            "127.0.0.1",
            payments_port,
            portfolio_port,
            workers,
            payments_db,
            portfolio_db,
            42,
            False,
        )
        platform = Platform(options)
        try:
            with console.status("starting payments and portfolio"):
                platform.start()
            token = read_admin_token(options.data_dir)
            journey = run_journey(options.url("payments"), options.url("portfolio"), token)
        except (ServeError, ServeStateError) as exc:
            raise fail(str(exc), 1) from None
        finally:
            platform.stop()
    table = Table(title="Nova smoke journey")
    for column in ("step", "status", "ms", "result"):
        table.add_column(column, justify="right" if column in ("status", "ms") else "left")
    for step in journey.steps:
        table.add_row(
            step.name, str(step.status), f"{step.millis:.1f}", step.summary if step.ok else f"[red]{step.summary}[/red]"
        )
    console.print(table)
    if not journey.ok:
        raise fail("the smoke journey failed", 1)
    console.print("[green]all steps passed[/green]")


def _serve_options(
    data_dir: Path,
    host: str,
    payments_port: int,
    portfolio_port: int,
    workers: int,
    payments_db: str | None,
    portfolio_db: str | None,
    market_seed: int | None,
    access_log: bool,
) -> ServeOptions:
    if payments_port == portfolio_port:
        raise fail("--payments-port and --portfolio-port must differ")
    try:
        for url in (payments_db, portfolio_db):
            database_url(url, data_dir)
    except SettingsError as exc:
        raise fail(str(exc)) from None
    return ServeOptions(
        data_dir=data_dir,
        host=host,
        payments_port=payments_port,
        portfolio_port=portfolio_port,
        workers=workers,
        payments_db=payments_db,
        portfolio_db=portfolio_db,
        market_seed=market_seed,
        access_log=access_log,
    )


def main() -> None:
    """Entry point: usage errors become one line (`nova: ...`), not a usage screen."""
    try:
        code = app(standalone_mode=False)
    except UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        err.print(f"nova: {exc.format_message()}{hint}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(2)
    except typer.Abort:
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
