"""The open-model generator's requests/s per core, beside closed-model Locust and wrk, in one run.

    python -m loadtests.bench.open_model_rate [--rate 500] [--seconds 20] [--users 32] [--json-out PATH]

`nova load --rate` plays a timetable (`loadtests.arrivals.play`: one greenlet per send) instead of
users that wait for their answers; that costs a greenlet per request. This measures what one core
of it produces against the bare ASGI endpoint (`hello_asgi.py`): one Locust process offering
`--rate` requests/s (below what the server and one core can take, so every send goes out on time and
nothing but the generator's own work is measured), its CPU time
over the measured window read inside the process; then, against the same server in the same run,
the closed-model figure (`locust_rate.locust_run`: `--users` FastHttpUsers with no wait) and wrk
(one thread, `--users` connections) as the C baseline. Late sends say how far the timetable
fell behind: at the rate it reports per core, an open-model generator needs
`rate / per_core` cores (`--processes`) to send on time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from loadtests.bench.errors import BenchError
from loadtests.bench.hello_asgi import serve_command
from loadtests.bench.locust_rate import GeneratorRun, Settings, locust_run, wrk_run
from loadtests.bench.processes import REPO_ROOT, clean_environment
from loadtests.processes import OwnedProcess, ProcessError, free_ports

OPEN_LOCUSTFILE = Path(__file__).resolve().parent / "hello_open_locustfile.py"
WARMUP_SECONDS = 5


@dataclass(frozen=True)
class OpenRun:
    offered_rps: float
    run: GeneratorRun
    sends: int
    late_sends: int


def open_model_run(url: str, rate: float, seconds: int, workdir: Path) -> OpenRun:
    out, late = workdir / "open.json", workdir / "late.json"
    command = [
        sys.executable, "-m", "locust", "-f", str(OPEN_LOCUSTFILE), "--headless", "--only-summary",
        "--loglevel", "WARNING", "--host", url, "-u", "1", "-r", "1", "-t", f"{seconds}s",
        "--open-rate", repr(rate), "--open-seconds", str(seconds),
        "--rate-out", str(out), "--rate-warmup", str(WARMUP_SECONDS),
        "--rate-window", str(seconds - WARMUP_SECONDS - 2),
        "--late-out", str(late),
    ]  # fmt: skip
    result = subprocess.run(
        command, cwd=REPO_ROOT, env=clean_environment(), capture_output=True, text=True, timeout=seconds + 60
    )
    if not out.is_file():
        tail = " | ".join((result.stderr or result.stdout).strip().splitlines()[-3:])
        raise BenchError(f"the open-model Locust exited with code {result.returncode} without measuring: {tail}")
    figures = json.loads(out.read_text())
    counts = json.loads(late.read_text()) if late.is_file() else {"sends": 0, "late": 0}
    run = GeneratorRun(figures["requests"], figures["failures"], figures["seconds"], figures["cpu_seconds"])
    return OpenRun(rate, run, int(counts["sends"]), int(counts["late"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.bench.open_model_rate", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--rate", type=float, default=500.0, help="requests/s the open model offers (default 500)")
    parser.add_argument("--seconds", type=int, default=20, help="length of each run (default 20)")
    parser.add_argument("--users", type=int, default=32, help="closed-model users and wrk connections (default 32)")
    parser.add_argument("--json-out", type=Path, default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    if not args.rate > 0 or args.seconds < WARMUP_SECONDS + 5 or args.users < 1:
        parser.error(f"--rate must be above 0, --seconds at least {WARMUP_SECONDS + 5}, --users at least 1")
    console = Console(width=None if sys.stdout.isatty() else 160)
    try:
        with tempfile.TemporaryDirectory(prefix="nova-open-rate-") as scratch:
            workdir = Path(scratch)
            (port,) = free_ports()
            url = f"http://127.0.0.1:{port}"
            with OwnedProcess(
                "hello-world ASGI", serve_command(port, 1), workdir / "hello.log", clean_environment(), cwd=REPO_ROOT
            ) as app:
                app.wait_ready(url + "/")
                with console.status(f"open model at {args.rate:g} requests/s ({args.seconds} s)"):
                    open_run = open_model_run(url, args.rate, args.seconds, workdir)
                with console.status(f"closed model, {args.users} users ({args.seconds} s)"):
                    settings = Settings(1, args.users, args.seconds, WARMUP_SECONDS, 1)
                    closed = locust_run(url, settings, workdir / "closed.json")
                wrk = None
                if shutil.which("wrk"):
                    with console.status(f"wrk baseline ({args.seconds - WARMUP_SECONDS} s)"):
                        wrk = wrk_run(url, args.users, args.seconds - WARMUP_SECONDS)
    except (BenchError, ProcessError) as exc:
        Console(stderr=True).print(f"open_model_rate: {exc}", markup=False, highlight=False)
        return 2
    except KeyboardInterrupt:
        return 130
    table = Table(title="Load generators against a bare endpoint, one process each, same run")
    for column in ("generator", "requests/s", "CPU (cores)", "requests/s per core", "late sends", "failures"):
        table.add_column(column, justify="left" if column == "generator" else "right")
    rows = [
        (
            f"Locust open model (nova load --rate), offered {args.rate:g}/s",
            open_run.run,
            f"{open_run.late_sends} of {open_run.sends}",
        ),
        (f"Locust closed model, {args.users} users", closed, "-"),
    ]
    if wrk is not None:
        rows.append((f"wrk -t1 -c{args.users}", wrk, "-"))
    for name, run, late in rows:
        table.add_row(
            name, f"{run.requests_per_second:.0f}", f"{run.cores:.2f}", f"{run.per_core:.0f}", late, str(run.failures)
        )
    console.print(table)
    if args.json_out is not None:
        document = {
            "open_model": {**asdict(open_run.run), "per_core": open_run.run.per_core, "offered_rps": args.rate,
                           "sends": open_run.sends, "late_sends": open_run.late_sends},
            "closed_model": {**asdict(closed), "per_core": closed.per_core, "users": args.users},
            "wrk": {**asdict(wrk), "per_core": wrk.per_core} if wrk else None,
        }  # fmt: skip
        args.json_out.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
