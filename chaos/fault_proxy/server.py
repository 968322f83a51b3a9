"""The fault-proxy process: the API on loopback and the proxies named on the command line, in one event loop."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import uvicorn
import uvloop

from chaos.fault_proxy import DEFAULT_API_PORT
from chaos.fault_proxy.api import build_app
from chaos.fault_proxy.proxy import Proxies, ProxyError


def parse_proxy(spec: str) -> dict[str, str]:
    """`NAME=UPSTREAM` or `NAME=UPSTREAM@LISTEN` as a Toxiproxy create body (listen defaults to a free port)."""
    name, sep, rest = spec.partition("=")
    if not sep or not name or not rest:
        raise argparse.ArgumentTypeError(f"{spec!r} is not NAME=HOST:PORT[@HOST:PORT]")
    upstream, _, listen = rest.partition("@")
    return {"name": name, "upstream": upstream, "listen": listen or "127.0.0.1:0"}


async def serve(port: int, specs: Sequence[dict[str, str]]) -> None:
    """Create the proxies, then serve the API on 127.0.0.1:`port` until SIGINT/SIGTERM; close every link after."""
    proxies = Proxies()
    try:
        for spec in specs:
            await proxies.create(spec)
        config = uvicorn.Config(build_app(proxies), host="127.0.0.1", port=port, log_level="warning", access_log=False)
        await uvicorn.Server(config).serve()
    finally:
        await proxies.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos.fault_proxy", description=__doc__)
    parser.add_argument("--port", type=int, default=DEFAULT_API_PORT, help="API port on 127.0.0.1")
    parser.add_argument("--proxy", type=parse_proxy, action="append", default=[], help="NAME=UPSTREAM[@LISTEN]")
    args = parser.parse_args(argv)
    try:
        uvloop.run(serve(args.port, args.proxy))  # a game day on PostgreSQL sends every query through here
    except ProxyError as exc:
        print(f"fault proxy: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
