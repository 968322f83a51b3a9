"""Finding a running platform from its data dir: `serve.json` (supervisor PIDs, URLs), the admin token.

This module owns how `chaos/` locates and addresses the services; it never imports them. The
state file's format is `loadtests.serve_state`'s (one typed home for every reader).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

from chaos.errors import PlatformError
from loadtests.serve_state import ServeStateError, read_admin_token, running_serve_state

SERVICES = ("payments", "portfolio")
# Fault API calls and probes are quick; a hung service must not hang the experiment.
HTTP_TIMEOUT = httpx.Timeout(10.0, connect=3.0)


@dataclass(frozen=True)
class Service:
    name: str
    url: str
    supervisor_pid: int
    workers: int


@dataclass(frozen=True)
class RunningPlatform:
    data_dir: Path
    pid: int
    faults_enabled: bool
    services: dict[str, Service]
    admin_token: str
    # The Toxiproxy API of `nova serve --fault-proxy`, or None when the platform runs without it.
    fault_proxy_url: str | None = None

    def service(self, name: str) -> Service:
        """The named service; PlatformError for a name the platform does not run."""
        try:
            return self.services[name]
        except KeyError:
            raise PlatformError(f"no service {name!r}; the platform runs {', '.join(sorted(self.services))}") from None

    def admin_client(self, service: str) -> httpx.Client:
        """An httpx client for `service` that carries the admin token, with bounded timeouts."""
        return httpx.Client(
            base_url=self.service(service).url,
            timeout=HTTP_TIMEOUT,
            headers={"Authorization": f"Bearer {self.admin_token}"},
        )

    def database_url(self, service: str) -> str | None:
        """The `postgresql://` URL the service runs on, or None for the embedded SQLite.

        Read from the supervisor's environment (`NOVA_<SERVICE>_DB`), where `nova serve` put it.
        """
        pid = self.service(service).supervisor_pid
        try:
            raw = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError as exc:
            raise PlatformError(f"cannot read the environment of {service}'s supervisor (pid {pid}): {exc}") from None
        key = f"NOVA_{service.upper()}_DB="
        for entry in raw.split(b"\0"):
            text = entry.decode(errors="replace")
            if text.startswith(key):
                url = text[len(key) :]
                return url if url.startswith(("postgresql://", "postgres://")) else None
        return None

    def direct_database_url(self, service: str) -> str | None:
        """The service's PostgreSQL URL without the fault proxy in between (for the database's own controls).

        With `nova serve --fault-proxy` the service dials proxy `<service>-db`; its upstream is the server.
        """
        url = self.database_url(service)
        if url is None or self.fault_proxy_url is None:
            return url
        try:
            answer = httpx.get(f"{self.fault_proxy_url}/proxies/{service}-db", timeout=HTTP_TIMEOUT)
        except httpx.HTTPError as exc:
            raise PlatformError(f"cannot ask the fault proxy at {self.fault_proxy_url}: {exc!r}") from None
        if answer.status_code == 404:
            return url
        if answer.status_code != 200:
            raise PlatformError(f"the fault proxy answered {answer.status_code} for proxy {service}-db")
        parts = urlsplit(url)
        credentials = parts.netloc.rpartition("@")[0]
        upstream = str(answer.json()["upstream"])
        return urlunsplit(parts._replace(netloc=f"{credentials}@{upstream}" if credentials else upstream))


def find_platform(data_dir: str | os.PathLike[str] = ".nova") -> RunningPlatform:
    """The platform `nova serve` runs from `data_dir`; PlatformError if none is running there."""
    folder = Path(data_dir)
    try:
        state = running_serve_state(folder)
    except ServeStateError as exc:
        raise PlatformError(str(exc)) from None
    services = {name: Service(name, entry.url, entry.pid, entry.workers) for name, entry in state.services.items()}
    return RunningPlatform(
        folder, state.pid, state.faults_enabled, services, admin_token(folder), state.fault_proxy_url
    )


def admin_token(data_dir: Path) -> str:
    """`NOVA_ADMIN_TOKEN`, else `<data-dir>/admin-token`; PlatformError if neither exists."""
    try:
        return read_admin_token(data_dir)
    except ServeStateError as exc:
        raise PlatformError(str(exc)) from None
