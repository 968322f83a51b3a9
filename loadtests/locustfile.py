"""The load test's entry point: `locust -f loadtests/locustfile.py`, headless or with the web UI.

Options besides Locust's own (the contract `nova load` starts Locust with):

    --host URL             the payments service (default http://127.0.0.1:8001)
    --portfolio-url URL    the portfolio service (default http://127.0.0.1:8002)
    --shape NAME           steady | market_open | spike_10x | soak (loadtests/shapes.py)
    --peak-users N         the most users the shape runs at once
    --duration SECONDS     the shape's total length; the run stops by itself at the end
    --user-rate R          requests a second per user, so the offered load is about users x R
    --rate R               open model: R requests/s on a timetable, shared by the Locust processes and
                           scaled by --shape; users are then not started (--peak-users is ignored)
    --mix NAME             trading | payments | read_heavy: the weights of the user classes
    --nova-results DIR     where samples.csv, services.csv and audit.json are written when the test stops

The admin token comes from `NOVA_ADMIN_TOKEN` only. `--processes N` (Locust's own) runs N
worker processes under this one; they ship their samples here, and, once their users have
stopped, the audit of the payments their users made (loadtests/audit.py, loadtests/recording.py).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

import gevent  # type: ignore[import-untyped]
from locust import LoadTestShape, events
from locust.env import Environment
from locust.runners import STATE_INIT, WorkerRunner

from loadtests import recording
from loadtests.shapes import SHAPES, stage_at, stages
from loadtests.traffic import MIXES, admin_token, mix_weights
from loadtests.users import (  # Locust runs the user classes it finds in this module
    DEFAULT_PAYMENTS_URL,
    DEFAULT_PORTFOLIO_URL,
    USER_CLASSES,
    Arrivals,
    PayingCustomer,
    PortfolioViewer,
    Trader,
    generators,
)

__all__ = ["Arrivals", "NamedShape", "PayingCustomer", "PortfolioViewer", "Trader"]

log = logging.getLogger("nova.load")


def _positive(kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a {'whole ' if kind is int else ''}number: {text!r}") from None
        if not value > 0 or value == float("inf"):
            raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
        return value

    return parse


@events.init_command_line_parser.add_listener  # type: ignore[untyped-decorator]
def add_options(parser: Any, **_kwargs: Any) -> None:
    parser.add_argument(
        "--portfolio-url", default=DEFAULT_PORTFOLIO_URL, help="base URL of the portfolio service (--host is payments)"
    )
    parser.add_argument("--shape", choices=SHAPES, default="steady", help="load shape (default steady)")
    parser.add_argument("--peak-users", type=_positive(int), default=10, help="most users at once (default 10)")
    parser.add_argument("--duration", type=_positive(float), default=60.0, help="shape length in seconds (default 60)")
    parser.add_argument("--user-rate", type=_positive(float), default=1.0, help="requests a second per user")
    parser.add_argument("--mix", choices=tuple(MIXES), default="trading", help="user mix (default trading)")
    parser.add_argument(
        "--rate", type=float, default=0.0, help="open model: requests/s on a timetable (default 0: closed model)"
    )
    parser.add_argument(
        "--nova-results",
        default=None,
        help="folder for samples.csv, services.csv and audit.json (none: nothing recorded or audited)",
    )


@events.init.add_listener  # type: ignore[untyped-decorator]
def on_init(environment: Environment, **_kwargs: Any) -> None:
    options = environment.parsed_options
    if options is None:  # Locust used as a library: no command line to read
        return
    try:
        admin_token(os.environ)
        weights = mix_weights(options.mix)
        stages(options.shape, options.peak_users, options.duration)
    except ValueError as exc:
        sys.exit(f"loadtests/locustfile.py: {exc}")
    if options.rate < 0 or options.rate != options.rate:
        sys.exit(f"loadtests/locustfile.py: --rate must be 0 (closed model) or above, not {options.rate}")
    open_model = options.rate > 0
    for user_class in USER_CLASSES:
        user_class.weight = 0 if open_model else weights.get(user_class.__name__, 0)
    Arrivals.weight = 1 if open_model else 0
    if not isinstance(environment.runner, WorkerRunner):
        # The master decides who runs; a worker keeps every class, whatever mix it was started with.
        environment.user_classes[:] = [cls for cls in environment.user_classes if cls.weight > 0]
    if options.nova_results:
        payments_url = (environment.host or DEFAULT_PAYMENTS_URL).rstrip("/")
        services = {"payments": payments_url, "portfolio": str(options.portfolio_url).rstrip("/")}
        recording.attach(environment, Path(options.nova_results), services)
    elif not isinstance(environment.runner, WorkerRunner):
        log.info("no --nova-results folder: request samples are not recorded")
    if options.headless and not isinstance(environment.runner, WorkerRunner):
        _end_the_run_on_sigterm(environment)


def _end_the_run_on_sigterm(environment: Environment) -> None:
    """SIGTERM (how `nova load` stops a run early) ends the test as the shape's end would.

    A headless Locust installs its own SIGTERM handler only once a shape test is over; until
    then the signal kills the process before the samples are written. This handler ends the
    shape instead, so Locust stops the test its usual way (test_stop fires once, the workers'
    samples are collected and written), and steps aside once the test has stopped.
    """
    runner = environment.runner
    assert runner is not None

    def end_the_run() -> None:
        handler.cancel()
        shape = runner.shape_greenlet
        if shape is None or shape.dead:
            if runner.state != STATE_INIT:
                # The shape is over and the test is stopping: its samples and audit are being
                # written. Let it finish; a second SIGTERM (this handler is gone) ends it at once.
                log.info("SIGTERM: the run is already ending, writing what it measured")
                return
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not started: nothing to save
            os.kill(os.getpid(), signal.SIGTERM)
            return
        log.info("SIGTERM: ending the run")
        shape.kill(block=False)  # Locust's main greenlet, joined on the shape, then quits the runner

    def step_aside(**_kwargs: Any) -> None:
        handler.cancel()

    handler = gevent.signal_handler(signal.SIGTERM, end_the_run)
    environment.events.test_stop.add_listener(step_aside)  # type: ignore[no-untyped-call]


class NamedShape(LoadTestShape):
    """Plays the shape named by --shape for --peak-users over --duration seconds, then ends the run.

    With --rate the shape scales the generators' timetables instead, and the run holds one
    `Arrivals` generator per Locust process for --duration seconds.
    """

    def tick(self) -> tuple[int, float] | None:
        assert self.runner is not None and self.runner.environment.parsed_options is not None
        options = self.runner.environment.parsed_options
        elapsed = float(self.get_run_time())  # type: ignore[no-untyped-call]
        if options.rate > 0:
            count = generators(options)
            return (count, float(count)) if elapsed < options.duration else None
        stage = stage_at(stages(options.shape, options.peak_users, options.duration), elapsed)
        return None if stage is None else (stage.users, stage.spawn_rate)
