"""Playing an open-model `Timetable` in a Locust process: each send a greenlet of its own, at its time.

Used by the platform's generator (`users.Arrivals`) and by the generator benchmark
(`loadtests/bench/open_model_rate.py`), so the benchmark measures the code a game day runs.
The scheduled time of the send a greenlet runs is in `SCHEDULE.at`: `users.ApiSession` puts it
in every request's context, and the recorder writes it beside the request (`RequestSample.scheduled`).
Only ever imported in a gevent-patched (Locust) process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import gevent  # type: ignore[import-untyped]
import gevent.local  # type: ignore[import-untyped]
import gevent.pool  # type: ignore[import-untyped]
from locust.exception import StopUser

from loadtests.open_model import Timetable

log = logging.getLogger("nova.load")

SCHEDULE = gevent.local.local()  # .at: the scheduled send time of the operation this greenlet runs

Send = Callable[[], None]


def play(timetable: Timetable, choose: Callable[[], Send], in_flight: gevent.pool.Group) -> int:
    """Send on `timetable` from now until its end, whether or not earlier sends were answered.

    `choose()` picks what the next send does; it runs in a greenlet of `in_flight` with its
    scheduled time in `SCHEDULE.at`. A generator that falls behind sends what is due at once
    (late, and counted so by the scheduled time), never skipping a send. Returns the sends made.
    """
    start = time.time()
    sent = 0
    for offset in timetable.sends():
        due = start + offset
        pause = due - time.time()
        if pause > 0:
            gevent.sleep(pause)
        in_flight.spawn(_send, due, choose())
        sent += 1
    return sent


def scheduled_at() -> float:
    """The scheduled send time of the current greenlet's operation; 0 outside the open model."""
    return float(getattr(SCHEDULE, "at", 0.0))


def _send(due: float, send: Send) -> None:
    SCHEDULE.at = due
    try:
        send()
    except StopUser:
        pass
    except Exception:  # one send's bug must not stop the timetable; its requests are already recorded
        log.exception("an open-model send failed")
