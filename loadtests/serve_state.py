"""The running platform as its operators' tools find it: `<data-dir>/serve.json` and the admin token.

`nova serve` writes `serve.json` (its own PID, each service's supervisor PID, URL and worker count,
whether the fault API is on, the fault proxy's URL) and removes it when it stops; load tests, chaos
experiments, runbooks and benchmarks read it to find the services without guessing ports.

Why the format's typed home is here and not beside its writer in `nova/`: `nova` is the top of the
house (the command line imports every tool), and `chaos/` and `loadtests/` may not import it; nor may
they import `core_services/`, which writes the admin-token file. `loadtests` is the lowest package
every reader already depends on (chaos imports it, nova imports it, its own benchmarks live in it),
and a load test is what an operator's client of the platform is, so the format lives here and
`nova serve` writes it through `ServeState.to_json`.

A `serve.json` outlives a `nova serve` that was SIGKILLed; `ServeState.supervisor_alive` tells a
stale file from a running platform, and `running_serve_state` refuses a stale one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtests.traffic import ADMIN_TOKEN_VARIABLE

SERVE_STATE_FILE = "serve.json"
ADMIN_TOKEN_FILE = "admin-token"  # written by core_services.settings (one line, mode 0600)


class ServeStateError(Exception):
    """`serve.json` or the admin token is missing, unreadable or malformed; the message is one line."""


@dataclass(frozen=True)
class ServedService:
    """One service of `nova serve`: where it answers, its supervisor's PID, how many workers it runs."""

    url: str
    pid: int
    workers: int = 1

    def to_json(self) -> dict[str, Any]:
        return {"pid": self.pid, "url": self.url, "workers": self.workers}

    @classmethod
    def from_json(cls, document: Any) -> ServedService:
        if not isinstance(document, Mapping):
            raise ServeStateError(f"a service entry must be an object, not {type(document).__name__}")
        return cls(
            url=_text(document, "url"),
            pid=_integer(document, "pid"),
            workers=_integer(document, "workers") if "workers" in document else 1,
        )


@dataclass(frozen=True)
class ServeState:
    """`serve.json`, as `nova serve` writes it (DESIGN.md: "Services", the fault proxy)."""

    pid: int  # nova serve itself
    services: Mapping[str, ServedService] = field(default_factory=dict)
    faults_enabled: bool = False
    fault_proxy_url: str | None = None  # the Toxiproxy API of `nova serve --fault-proxy`

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "pid": self.pid,
            "faults_enabled": self.faults_enabled,
            "services": {name: service.to_json() for name, service in self.services.items()},
        }
        if self.fault_proxy_url is not None:
            document["fault_proxy"] = {"url": self.fault_proxy_url}
        return document

    @classmethod
    def from_json(cls, document: Any) -> ServeState:
        """The state from its JSON document; ServeStateError naming what is wrong."""
        if not isinstance(document, Mapping):
            raise ServeStateError(f"not an object but {type(document).__name__}")
        services = document.get("services")
        if not isinstance(services, Mapping):
            raise ServeStateError("'services' must be an object of service name -> {pid, url, workers}")
        proxy = document.get("fault_proxy")
        if proxy is not None and not isinstance(proxy, Mapping):
            raise ServeStateError("'fault_proxy' must be an object with a 'url'")
        faults = document.get("faults_enabled", False)
        if not isinstance(faults, bool):
            raise ServeStateError("'faults_enabled' must be true or false")
        return cls(
            pid=_integer(document, "pid"),
            services={str(name): ServedService.from_json(entry) for name, entry in services.items()},
            faults_enabled=faults,
            fault_proxy_url=_text(proxy, "url") if proxy is not None else None,
        )

    def write(self, data_dir: Path) -> Path:
        """Write `<data-dir>/serve.json` (replaced whole, so a reader never sees half of it)."""
        path = data_dir / SERVE_STATE_FILE
        partial = path.with_name(SERVE_STATE_FILE + ".partial")
        partial.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        partial.replace(path)
        return path

    def supervisor_alive(self) -> bool:
        """Whether the `nova serve` that wrote this still runs (a SIGKILLed one leaves its file behind)."""
        return _alive(self.pid)


def serve_state_path(data_dir: Path) -> Path:
    return Path(data_dir) / SERVE_STATE_FILE


def read_serve_state(data_dir: Path) -> ServeState | None:
    """`<data-dir>/serve.json`; None when there is none; ServeStateError when it is not one.

    It may be stale: see `running_serve_state` and `ServeState.supervisor_alive`.
    """
    path = serve_state_path(data_dir)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ServeStateError(f"{path}: cannot be read ({exc})") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ServeStateError(f"{path}: not JSON ({exc})") from None
    try:
        return ServeState.from_json(document)
    except ServeStateError as exc:
        raise ServeStateError(f"{path}: not a serve state file ({exc})") from None


def running_serve_state(data_dir: Path) -> ServeState:
    """The state of the `nova serve` running from `data_dir`; ServeStateError if none is running there."""
    path = serve_state_path(data_dir)
    state = read_serve_state(data_dir)
    if state is None:
        raise ServeStateError(f"{path}: no such file; is `nova serve --data-dir {data_dir}` running?")
    if not state.supervisor_alive():
        raise ServeStateError(f"{path}: the platform (pid {state.pid}) is not running")
    return state


def read_admin_token(data_dir: Path, environ: Mapping[str, str] | None = None) -> str:
    """`NOVA_ADMIN_TOKEN` from `environ` (default: this process's), else `<data-dir>/admin-token`.

    The order `nova serve` and the services decide it in; ServeStateError if neither gives one.
    """
    token = (os.environ if environ is None else environ).get(ADMIN_TOKEN_VARIABLE, "").strip()
    if token:
        return token
    path = Path(data_dir) / ADMIN_TOKEN_FILE
    try:
        token = path.read_text().strip()
    except OSError as exc:
        raise ServeStateError(
            f"no admin token: {ADMIN_TOKEN_VARIABLE} is unset and {path} cannot be read ({exc})"
        ) from None
    if not token:
        raise ServeStateError(f"{path} is empty")
    return token


def _text(document: Mapping[str, Any], key: str) -> str:
    value = document.get(key)
    if not isinstance(value, str) or not value:
        raise ServeStateError(f"{key!r} must be a non-empty string")
    return value


def _integer(document: Mapping[str, Any], key: str) -> int:
    value = document.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ServeStateError(f"{key!r} must be a positive integer")
    return value


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True
