"""What the fault proxy costs with no toxic: latency it adds and requests/s through it, against direct, in one run.

    python -m chaos.fault_proxy.bench [--rounds 3] [--requests 2000] [--seconds 5] [--connections 16] [--json-out F]

The upstream is a minimal HTTP/1.1 responder in its own process (a fixed 200), so what is measured
is the proxy, not a service behind it. Each round measures direct and proxied back to back:
sequential keep-alive round trips (latency, p50 and p99) and `wrk` with `--connections` keep-alive
connections for `--seconds` (requests/s). Rounds alternate the order; the figures are medians.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from loadtests.processes import free_ports

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"
REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"


class BenchError(RuntimeError):
    """The benchmark could not run; the message is one line."""


@dataclass(frozen=True)
class PathFigures:
    """One path (direct or proxied): medians over the rounds."""

    p50_ms: float
    p99_ms: float
    requests_per_second: float


@dataclass(frozen=True)
class BenchResult:
    direct: PathFigures
    proxied: PathFigures
    added_p50_ms: float
    added_p99_ms: float
    throughput_ratio: float  # proxied / direct requests per second
    rounds: int
    requests: int
    seconds: int
    connections: int

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"


async def _respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    buffer = b""
    try:
        while data := await reader.read(65536):
            buffer += data
            while b"\r\n\r\n" in buffer:
                _, buffer = buffer.split(b"\r\n\r\n", 1)
                writer.write(RESPONSE)
            await writer.drain()
    except ConnectionError:
        pass
    writer.close()


async def _serve_upstream(port: int) -> None:
    server = await asyncio.start_server(_respond, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def _wait_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"a benchmark process exited with code {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise BenchError(f"nothing listened on 127.0.0.1:{port} within 20 s")


@contextmanager
def _processes() -> Iterator[tuple[int, int]]:
    """The upstream responder and the fault proxy in front of it: (direct port, proxied port)."""
    upstream_port, api_port = free_ports(2)
    started: list[subprocess.Popen[bytes]] = []
    try:
        upstream = subprocess.Popen([sys.executable, "-m", "chaos.fault_proxy.bench", "--upstream", str(upstream_port)])
        started.append(upstream)
        _wait_port(upstream_port, upstream)
        route = f"bench=127.0.0.1:{upstream_port}"
        proxy = subprocess.Popen([sys.executable, "-m", "chaos.fault_proxy", "--port", str(api_port), "--proxy", route])
        started.append(proxy)
        _wait_port(api_port, proxy)
        listen = httpx.get(f"http://127.0.0.1:{api_port}/proxies/bench", timeout=5).json()["listen"]
        yield upstream_port, int(listen.rsplit(":", 1)[1])
    finally:
        for process in reversed(started):
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def round_trips(port: int, requests: int) -> list[float]:
    """Sequential request/response times (ms) over one keep-alive connection, after a short warm-up."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        times = []
        for index in range(requests + 50):
            began = time.perf_counter()
            sock.sendall(REQUEST)
            received = b""
            while not received.endswith(b"ok"):
                chunk = sock.recv(65536)
                if not chunk:
                    raise BenchError("the server closed the connection")
                received += chunk
            if index >= 50:
                times.append((time.perf_counter() - began) * 1000)
    return times


def wrk_requests_per_second(port: int, seconds: int, connections: int) -> float:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise BenchError("wrk is not installed (apt-get install wrk)")
    done = subprocess.run(
        [wrk, "-t2", f"-c{connections}", f"-d{seconds}s", f"http://127.0.0.1:{port}/"],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=False,
    )
    match = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    if done.returncode != 0 or match is None:
        raise BenchError(f"wrk failed ({done.returncode}): {(done.stderr or done.stdout).strip()[:200]}")
    return float(match.group(1))


def _percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run(rounds: int, requests: int, seconds: int, connections: int, console: Console) -> BenchResult:
    figures: dict[str, dict[str, list[float]]] = {
        path: {"p50": [], "p99": [], "rps": []} for path in ("direct", "proxied")
    }
    with _processes() as (direct_port, proxied_port), Progress(console=console, transient=True) as progress:
        ports = {"direct": direct_port, "proxied": proxied_port}
        task = progress.add_task("measuring", total=rounds * 4)
        for index in range(rounds):
            order = ("direct", "proxied") if index % 2 == 0 else ("proxied", "direct")
            for path in order:
                progress.update(task, description=f"round {index + 1}: {path} latency")
                times = round_trips(ports[path], requests)
                figures[path]["p50"].append(_percentile(times, 0.50))
                figures[path]["p99"].append(_percentile(times, 0.99))
                progress.advance(task)
            for path in order:
                progress.update(task, description=f"round {index + 1}: {path} requests/s")
                figures[path]["rps"].append(wrk_requests_per_second(ports[path], seconds, connections))
                progress.advance(task)
    medians = {
        path: PathFigures(
            p50_ms=statistics.median(values["p50"]),
            p99_ms=statistics.median(values["p99"]),
            requests_per_second=statistics.median(values["rps"]),
        )
        for path, values in figures.items()
    }
    direct, proxied = medians["direct"], medians["proxied"]
    return BenchResult(
        direct=direct,
        proxied=proxied,
        added_p50_ms=proxied.p50_ms - direct.p50_ms,
        added_p99_ms=proxied.p99_ms - direct.p99_ms,
        throughput_ratio=proxied.requests_per_second / direct.requests_per_second,
        rounds=rounds,
        requests=requests,
        seconds=seconds,
        connections=connections,
    )


def _table(result: BenchResult) -> Table:
    table = Table(title="Fault proxy cost, no toxic (medians over rounds)")
    for column in ("path", "p50 ms", "p99 ms", "requests/s"):
        table.add_column(column, justify="left" if column == "path" else "right")
    for name, figures in (("direct", result.direct), ("through the proxy", result.proxied)):
        table.add_row(name, f"{figures.p50_ms:.3f}", f"{figures.p99_ms:.3f}", f"{figures.requests_per_second:,.0f}")
    table.caption = (
        f"added: p50 {result.added_p50_ms:+.3f} ms, p99 {result.added_p99_ms:+.3f} ms; "
        f"throughput through the proxy {result.throughput_ratio:.0%} of direct"
    )
    return table


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos.fault_proxy.bench", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=2000, help="sequential round trips per path per round")
    parser.add_argument("--seconds", type=int, default=5, help="wrk duration per path per round")
    parser.add_argument("--connections", type=int, default=16, help="wrk keep-alive connections")
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--upstream", type=int, help=argparse.SUPPRESS)  # the responder process
    args = parser.parse_args(argv)
    if args.upstream:
        asyncio.run(_serve_upstream(args.upstream))
        return 0
    console = Console(stderr=True)
    if min(args.rounds, args.requests, args.seconds, args.connections) < 1:
        console.print("bench: --rounds, --requests, --seconds and --connections must be at least 1")
        return 2
    try:
        result = run(args.rounds, args.requests, args.seconds, args.connections, console)
    except BenchError as exc:
        console.print(f"bench: {exc}", highlight=False, markup=False)
        return 1
    Console().print(_table(result))
    if args.json_out:
        args.json_out.write_text(result.to_json())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
