"""The open-model generator's own cost: `loadtests.arrivals.play` sending `GET /` to a bare endpoint.

Run by `python -m loadtests.bench.open_model_rate`, never by the suite's tests. One generator
(one Locust process, one user) offers `--open-rate` requests/s on a steady timetable, each send
its own greenlet, as `nova load --rate` does; the measuring listeners of `hello_locustfile.py`
(imported for them) write the requests Locust counted and this process's CPU time over the
measured window to `--rate-out`. Late sends (sent over 100 ms after their time) are counted too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gevent  # type: ignore[import-untyped]
import gevent.pool  # type: ignore[import-untyped]
from locust import FastHttpUser, events, task
from locust.env import Environment

import loadtests.bench.hello_locustfile  # noqa: F401  # its listeners measure the window
from loadtests.arrivals import play, scheduled_at
from loadtests.open_model import LATE_SEND_SECONDS, Timetable

LATE: dict[str, int] = {"sends": 0, "late": 0}


class HelloArrivals(FastHttpUser):
    concurrency = 1000  # an open model never waits for a connection

    @task
    def offer(self) -> None:
        options = self.environment.parsed_options
        assert options is not None
        timetable = Timetable(float(options.open_rate), "steady", float(options.open_seconds))
        play(timetable, lambda: self._hello, gevent.pool.Group())
        gevent.sleep(3600)  # Locust's -t ends the run

    def _hello(self) -> None:
        self.client.get("/")


@events.init_command_line_parser.add_listener  # type: ignore[untyped-decorator]
def _options(parser: Any, **_kwargs: Any) -> None:
    parser.add_argument("--open-rate", type=float, default=2000.0, help="requests/s offered")
    parser.add_argument("--open-seconds", type=float, default=20.0, help="timetable length")
    parser.add_argument("--late-out", type=str, default="", help="JSON file for the late-send count")


@events.request.add_listener  # type: ignore[untyped-decorator]
def _late(start_time: float = 0.0, **_kwargs: Any) -> None:
    scheduled = scheduled_at()
    if scheduled:
        LATE["sends"] += 1
        LATE["late"] += start_time - scheduled > LATE_SEND_SECONDS


@events.quitting.add_listener  # type: ignore[untyped-decorator]
def _write(environment: Environment, **_kwargs: Any) -> None:
    options = environment.parsed_options
    if options is not None and options.late_out:
        Path(options.late_out).write_text(json.dumps(LATE) + "\n")
