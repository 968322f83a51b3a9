"""`nova pager serve`: the on-call pager behind Alertmanager's webhook receiver."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from alerts.pager.delivery import Destination, PagerDutyDestination, check_http_url, parse_destination
from alerts.pager.errors import PagerError
from alerts.pager.pagerduty import DEFAULT_URL
from core_services.settings import DEFAULT_DATA_DIR
from nova.output import err, fail

pager_app = typer.Typer(
    help="The on-call pager: Alertmanager webhooks in, one page per alert group out.", no_args_is_help=True
)


@pager_app.callback()
def _pager() -> None:
    """The on-call pager: Alertmanager webhooks in, one page per alert group out."""


@pager_app.command()
def serve(
    listen: Annotated[str, typer.Option(help="HOST:PORT to receive Alertmanager webhooks on (POST /alerts)")] = (
        "127.0.0.1:9095"
    ),
    deliver: Annotated[
        list[str] | None,
        typer.Option(
            "--deliver",
            help="stdout, file:PATH (Markdown), jsonl:PATH (JSON lines) or webhook:URL (repeat; default stdout)",
        ),
    ] = None,
    prometheus: Annotated[
        str | None,
        typer.Option(envvar="NOVA_PROMETHEUS_URL", help="Prometheus running the SLO rules: burn rate and budget"),
    ] = None,
    traces: Annotated[
        Path | None, typer.Option(help="Folder of <service>.jsonl trace files: failed and slowest spans")
    ] = None,
    runbook_root: Annotated[Path, typer.Option(help="Where runbook_url paths (runbooks/...) are found")] = Path(),
    pagerduty_routing_key_env: Annotated[
        str | None,
        typer.Option(help="Environment variable holding the PagerDuty Events API v2 routing key (enables PagerDuty)"),
    ] = None,
    pagerduty_url: Annotated[str, typer.Option(help="PagerDuty Events API v2 endpoint")] = DEFAULT_URL,
    state: Annotated[
        Path | None, typer.Option(help="What was paged, kept across restarts (default: <data-dir>/pager-state.json)")
    ] = None,
    data_dir: Annotated[Path, typer.Option(envvar="NOVA_DATA_DIR", help="Where run state lives")] = DEFAULT_DATA_DIR,
) -> None:
    """Receive Alertmanager webhooks (version 4) and page: stdout, files, webhooks, PagerDuty."""
    host, port = _listen_address(listen)
    destinations = _destinations(deliver or ["stdout"], pagerduty_routing_key_env, pagerduty_url)
    if prometheus is not None:
        try:
            check_http_url(prometheus, "--prometheus")
        except PagerError as exc:
            raise fail(str(exc)) from None
    if traces is not None and not traces.is_dir():
        raise fail(f"--traces {traces}: not a folder")
    if not runbook_root.is_dir():
        raise fail(f"--runbook-root {runbook_root}: not a folder")
    # Rendering pulls in the SLO engine (numpy and all): only when the pager runs, not for `nova --help`.
    from alerts.pager.dedup import PageLedger
    from alerts.pager.page import PageSources
    from alerts.pager.receiver import Pager, PagerServer
    from slo.prometheus_api import PrometheusAPI

    state_path = state or data_dir / "pager-state.json"
    try:
        ledger = PageLedger(state_path)
    except PagerError as exc:
        raise fail(str(exc)) from None

    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # httpx logs whole request URLs at INFO; a webhook URL may carry a token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    api = PrometheusAPI(prometheus, timeout=5.0) if prometheus else None
    pager = Pager(PageSources(api, traces, runbook_root), destinations, ledger)
    try:
        server = PagerServer((host, port), pager)
    except OSError as exc:
        raise fail(f"cannot listen on {listen}: {exc.strerror or exc}", 1) from None
    bound = f"http://{host}:{server.server_address[1]}"
    err.print(
        f"pager listening on {bound}/alerts; delivering to {', '.join(d.name for d in destinations)}; "
        f"state in {state_path}; Ctrl-C stops",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    try:
        server.serve_until_signalled()
    except KeyboardInterrupt:
        pass
    finally:
        if api is not None:
            api.close()
    err.print("pager stopped", highlight=False, markup=False)


def _listen_address(listen: str) -> tuple[str, int]:
    host, sep, port_text = listen.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise fail(f"--listen {listen!r}: expected HOST:PORT, such as 127.0.0.1:9095")
    return host, int(port_text)


def _destinations(specs: list[str], routing_key_env: str | None, pagerduty_url: str) -> list[Destination]:
    destinations: list[Destination] = []
    try:
        for spec in specs:
            destinations.append(parse_destination(spec))
        if routing_key_env is not None:
            key = os.environ.get(routing_key_env, "").strip()
            if not key:
                raise PagerError(f"--pagerduty-routing-key-env: ${routing_key_env} is not set or empty")
            check_http_url(pagerduty_url, "--pagerduty-url")
            destinations.append(PagerDutyDestination(key, pagerduty_url))
    except PagerError as exc:
        raise fail(str(exc)) from None
    names = [destination.name for destination in destinations]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise fail(f"--deliver: {', '.join(duplicates)} given twice")
    return destinations
