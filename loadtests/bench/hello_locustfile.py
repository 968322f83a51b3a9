"""The load generator's own cost: FastHttpUsers hammering a bare endpoint, measured from inside Locust.

Run by `python -m loadtests.bench.locust_rate`, never by the suite's tests. Each user sends
`GET /` with no wait, so the one Locust process is the bottleneck, and after `--rate-warmup`
seconds (spawning done, connections open) it measures for `--rate-window` seconds: requests
Locust counted and the CPU time this process used (from /proc/self/stat), written as JSON to
`--rate-out`. Measuring inside the process means start-up and shut-down cost nothing.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from locust import FastHttpUser, constant, events, task
from locust.env import Environment

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


class HelloUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def hello(self) -> None:
        self.client.get("/")


def _options(parser: Any, **_kwargs: Any) -> None:
    parser.add_argument("--rate-out", type=str, default="", help="JSON file for the measured window")
    parser.add_argument("--rate-warmup", type=float, default=5.0, help="seconds before measuring")
    parser.add_argument("--rate-window", type=float, default=10.0, help="seconds measured")


def _start(environment: Environment, **_kwargs: Any) -> None:
    # Locust has gevent patch threads and sleep: this thread is a greenlet beside the users.
    threading.Thread(target=_measure, args=(environment,), daemon=True).start()


def _cpu_seconds() -> float:
    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_SECOND  # utime + stime


def _measure(environment: Environment) -> None:
    options = environment.parsed_options
    assert options is not None and environment.runner is not None
    time.sleep(options.rate_warmup)
    stats = environment.runner.stats.total
    before = (time.monotonic(), _cpu_seconds(), stats.num_requests, stats.num_failures)
    time.sleep(options.rate_window)
    after = (time.monotonic(), _cpu_seconds(), stats.num_requests, stats.num_failures)
    figures = {
        "seconds": after[0] - before[0],
        "cpu_seconds": after[1] - before[1],
        "requests": after[2] - before[2],
        "failures": after[3] - before[3],
        "users": environment.runner.user_count,
    }
    if options.rate_out:
        Path(options.rate_out).write_text(json.dumps(figures) + "\n")


events.init_command_line_parser.add_listener(_options)  # type: ignore[no-untyped-call]
events.test_start.add_listener(_start)  # type: ignore[no-untyped-call]
