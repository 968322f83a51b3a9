"""Which notifications are news: Alertmanager re-sends a group (repeat_interval, retries,
other cluster peers), and on-call must be woken once per piece of information.

A group's news is: an alert firing that has not been paged yet (fingerprint and start
time: the same alert firing again after a resolve is news), or the whole group resolving
after it was paged. The ledger remembers, per group, what was paged and which
destinations still owe delivery, in memory and in a JSON file so a restart does not
page again.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alerts.pager.errors import PagerError
from alerts.pager.page import dedup_key
from alerts.pager.webhook import Notification

STATE_VERSION = 1
# A group resolved this long ago is forgotten; if it fires again its alerts have new start times anyway.
FORGET_RESOLVED_AFTER_SECONDS = 7 * 86400


@dataclass(frozen=True)
class Decision:
    """What to do with one notification."""

    event: str  # "trigger", "resolve" or "" (nothing new)
    destinations: tuple[str, ...]  # who gets it: all for news, the ones still owing it on a retry
    reason: str  # why, in a few words (logged, and answered to Alertmanager)


@dataclass
class _Group:
    status: str
    paged: set[str]  # identities of the alerts already paged while this group fires
    pending: set[str]  # destinations that have not taken the group's latest event yet
    event: str
    updated: float

    def as_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "paged": sorted(self.paged),
            "pending": sorted(self.pending),
            "event": self.event,
            "updated": self.updated,
        }


class PageLedger:
    """What each alert group has been paged with; the caller holds one lock from `decide` to `delivered`,
    so that two copies of one notification arriving together cannot both page."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._groups: dict[str, _Group] = self._load() if path is not None else {}

    def decide(self, notification: Notification, destinations: tuple[str, ...]) -> Decision:
        key = dedup_key(notification.group_key)
        with self._lock:
            group = self._groups.get(key)
            if notification.status == "resolved":
                if group is not None and group.status == "resolved":
                    owing = _owing(group, destinations)
                    if owing:
                        return Decision("resolve", owing, "retrying the resolve")
                    return Decision("", (), "already resolved")
                # Also when nothing was paged here (or the state file was lost): a resolve closes
                # downstream incidents once, and closing a closed one is harmless.
                return Decision("resolve", destinations, "resolved")
            firing = {alert.identity for alert in notification.firing}
            if group is not None and group.status == "firing" and firing <= group.paged:
                owing = _owing(group, destinations)
                if owing:
                    return Decision("trigger", owing, "retrying the page")
                return Decision("", (), "already paged")
            new = len(firing - group.paged) if group is not None and group.status == "firing" else len(firing)
            return Decision("trigger", destinations, f"{new} new alert{'s' if new != 1 else ''}")

    def delivered(self, notification: Notification, decision: Decision, failed: set[str]) -> None:
        """Record what went out; destinations in `failed` are retried when Alertmanager re-sends."""
        key = dedup_key(notification.group_key)
        with self._lock:
            group = self._groups.get(key)
            if decision.event == "resolve":
                if group is None or group.status != "resolved" or group.event != "resolve":
                    group = self._groups[key] = _Group("resolved", set(), set(), "resolve", 0.0)
            else:
                if group is None or group.status != "firing":
                    group = self._groups[key] = _Group("firing", set(), set(), "trigger", 0.0)
                group.paged |= {alert.identity for alert in notification.firing}
            is_retry = decision.reason.startswith("retrying")
            group.pending = (group.pending - set(decision.destinations) | failed) if is_retry else set(failed)
            group.updated = time.time()
            self._forget_old(group.updated)
            self._save()

    def _forget_old(self, now: float) -> None:
        for key in [k for k, g in self._groups.items() if g.status == "resolved" and not g.pending]:
            if now - self._groups[key].updated > FORGET_RESOLVED_AFTER_SECONDS:
                del self._groups[key]

    def _load(self) -> dict[str, _Group]:
        assert self.path is not None
        try:
            document = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise PagerError(f"cannot read the pager state {self.path}: {exc}") from None
        if not isinstance(document, dict) or document.get("version") != STATE_VERSION:
            raise PagerError(f"{self.path} is not a pager state file (version {STATE_VERSION})")
        try:
            return {
                key: _Group(
                    status=str(raw["status"]),
                    paged=set(raw["paged"]),
                    pending=set(raw["pending"]),
                    event=str(raw["event"]),
                    updated=float(raw["updated"]),
                )
                for key, raw in document["groups"].items()
            }
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise PagerError(f"{self.path}: malformed pager state ({exc!r})") from None

    def _save(self) -> None:
        if self.path is None:
            return
        document = {"version": STATE_VERSION, "groups": {k: g.as_json() for k, g in self._groups.items()}}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Written aside and renamed: a crash mid-write never leaves a state that would page everything again.
        fd, scratch = tempfile.mkstemp(prefix=".pager-state-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as file:
                json.dump(document, file, indent=1, sort_keys=True)
                file.flush()
                os.fsync(file.fileno())
            os.replace(scratch, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(scratch)
            raise


def _owing(group: _Group, destinations: tuple[str, ...]) -> tuple[str, ...]:
    """The configured destinations still owing the group's latest page (one dropped from the flags owes nothing)."""
    return tuple(name for name in destinations if name in group.pending)
