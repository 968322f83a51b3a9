"""`nova serve`: both services, each a supervised group of workers, stopped together.

The state file `<data-dir>/serve.json` names the supervisor PIDs and URLs so that
operators' tools (chaos actions, load tests) find the processes without guessing; its format's
typed home is `loadtests.serve_state` (the lowest package every reader may import).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

from core_services.settings import read_or_create_admin_token
from loadtests.serve_state import ServedService, ServeState, serve_state_path

SERVICES = ("payments", "portfolio")
DEFAULT_FAULT_PROXY_PORT = 8474  # Toxiproxy's
READY_TIMEOUT_SECONDS = 60.0
# A service whose supervisor dies this often within the window is not coming back.
MAX_RESTARTS, RESTART_WINDOW_SECONDS = 3, 60.0


class ServeError(RuntimeError):
    """The platform could not start; the message is one line for the operator."""


@dataclass(frozen=True)
class ServeOptions:
    data_dir: Path
    host: str = "127.0.0.1"
    payments_port: int = 8001
    portfolio_port: int = 8002
    workers: int = 2
    payments_db: str | None = None
    portfolio_db: str | None = None
    # None: the data dir's own secret seed (core_services.settings.read_or_create_market_seed).
    market_seed: int | None = None
    access_log: bool = False
    # Serve the admin fault API (loopback and admin token only): for game days and load tests.
    enable_faults: bool = False
    # Route portfolio -> payments and each service -> its PostgreSQL through the fault proxy on this port.
    fault_proxy_port: int | None = None

    def url(self, service: str) -> str:
        return f"http://{self.host}:{self.port(service)}"

    def port(self, service: str) -> int:
        return self.payments_port if service == "payments" else self.portfolio_port

    def environment(self, routes: dict[str, str] | None = None) -> dict[str, str]:
        """The services' environment; `routes` (from the fault proxy) replaces the URLs they dial."""
        env = dict(os.environ)
        env.update(
            {
                "NOVA_DATA_DIR": str(self.data_dir),
                "NOVA_PAYMENTS_URL": self.url("payments"),
                "NOVA_ENABLE_FAULTS": "1" if self.enable_faults else "0",
            }
        )
        if self.market_seed is not None:
            env["NOVA_MARKET_SEED"] = str(self.market_seed)
        for name, url in (("NOVA_PAYMENTS_DB", self.payments_db), ("NOVA_PORTFOLIO_DB", self.portfolio_db)):
            if url:
                env[name] = url
        env.update(routes or {})
        return env

    def proxied_links(self) -> dict[str, tuple[str, str]]:
        """Fault-proxy name -> (environment variable it replaces, upstream host:port) for each link it carries."""
        links = {"payments": ("NOVA_PAYMENTS_URL", f"{self.host}:{self.payments_port}")}
        for service, url in (("payments", self.payments_db), ("portfolio", self.portfolio_db)):
            if url and url.startswith(("postgresql://", "postgres://")):
                links[f"{service}-db"] = (f"NOVA_{service.upper()}_DB", _host_port(url))
        return links


def _host_port(url: str) -> str:
    parts = urlsplit(url)
    if not parts.hostname:
        raise ServeError("--fault-proxy needs each database URL to name a host (it proxies TCP, not Unix sockets)")
    return f"{parts.hostname}:{parts.port or 5432}"


def _through(url: str, listen: str) -> str:
    """`url` with its host:port replaced by the proxy's `listen` address (user, database, query kept)."""
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{credentials}@{listen}" if credentials else listen))


def _check_port_free(host: str, port: int, name: str) -> None:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            raise ServeError(f"{name} cannot listen on {host}:{port}: the port is in use") from None


class Platform:
    """The running services; `stop()` ends every process this object started."""

    def __init__(self, options: ServeOptions) -> None:
        self.options = options
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._restarts: dict[str, list[float]] = {name: [] for name in SERVICES}
        self.fault_proxy: FaultProxyProcess | None = None
        self._routes: dict[str, str] = {}

    @property
    def state_file(self) -> Path:
        return serve_state_path(self.options.data_dir)

    def start(self, stop_requested: threading.Event | None = None) -> None:
        """Start both services and wait until they answer /readyz (or a stop is requested)."""
        stop_requested = stop_requested or threading.Event()
        self.options.data_dir.mkdir(parents=True, exist_ok=True)
        if "NOVA_ADMIN_TOKEN" not in os.environ:
            read_or_create_admin_token(self.options.data_dir)
        try:
            if self.options.fault_proxy_port is not None:
                self.fault_proxy = FaultProxyProcess(self.options)
                self._routes = self.fault_proxy.start(stop_requested)
            for name in SERVICES:  # portfolio calls payments, so payments comes up first
                self._spawn(name)
                self._wait_ready(name, stop_requested)
        except BaseException:
            self.stop()
            raise
        self._write_state()

    def serve_forever(self, on_ready: Callable[[], None]) -> None:
        """Start, then keep the services up until SIGINT or SIGTERM; stop everything on the way out.

        The signal handlers are in place before the first process starts, so a stop
        requested while starting still ends every process this object started.
        """
        stop_requested = threading.Event()
        previous = {
            sig: signal.signal(sig, lambda _signum, _frame: stop_requested.set())
            for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            self.start(stop_requested)
            if not stop_requested.is_set():
                on_ready()
            while not stop_requested.wait(0.2):
                for name, process in list(self.processes.items()):
                    if process.poll() is not None:
                        self._restart(name, process.returncode, stop_requested)
                if self.fault_proxy is not None and not self.fault_proxy.alive():
                    print("nova serve: the fault proxy exited; restarting it on the same ports", file=sys.stderr)
                    self.fault_proxy.start(stop_requested)
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()
        if self.fault_proxy is not None:  # after the services, which hold connections through it
            self.fault_proxy.stop()
            self.fault_proxy = None
        self.state_file.unlink(missing_ok=True)

    def _spawn(self, name: str) -> None:
        _check_port_free(self.options.host, self.options.port(name), name)
        command = [
            sys.executable,
            "-m",
            "core_services.server",
            name,
            "--host",
            self.options.host,
            "--port",
            str(self.options.port(name)),
            "--workers",
            str(self.options.workers),
        ]
        if self.options.access_log:
            command.append("--access-log")
        self.processes[name] = subprocess.Popen(command, env=self.options.environment(self._routes))

    def _restart(self, name: str, returncode: int | None, stop_requested: threading.Event) -> None:
        now = time.monotonic()
        recent = [t for t in self._restarts[name] if now - t < RESTART_WINDOW_SECONDS]
        if len(recent) >= MAX_RESTARTS:
            raise ServeError(f"{name} keeps exiting (last exit code {returncode}); stopping")
        self._restarts[name] = [*recent, now]
        print(f"nova serve: {name} exited with code {returncode}; restarting", file=sys.stderr)
        self._spawn(name)
        self._wait_ready(name, stop_requested)
        self._write_state()

    def _wait_ready(self, name: str, stop_requested: threading.Event) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        url = self.options.url(name) + "/readyz"
        while time.monotonic() < deadline and not stop_requested.is_set():
            process = self.processes[name]
            if process.poll() is not None:
                raise ServeError(f"{name} exited with code {process.returncode} while starting")
            try:
                if httpx.get(url, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            stop_requested.wait(0.1)
        if stop_requested.is_set():
            return
        raise ServeError(f"{name} was not ready at {url} within {READY_TIMEOUT_SECONDS:.0f} s")

    def _write_state(self) -> None:
        ServeState(
            pid=os.getpid(),
            services={
                name: ServedService(url=self.options.url(name), pid=process.pid, workers=self.options.workers)
                for name, process in self.processes.items()
            },
            faults_enabled=self.options.enable_faults,
            fault_proxy_url=self.fault_proxy.url if self.fault_proxy is not None else None,
        ).write(self.options.data_dir)


@dataclass
class FaultProxyProcess:
    """`python -m chaos.fault_proxy` beside the services: one proxy per link it carries, API on loopback."""

    options: ServeOptions
    process: subprocess.Popen[bytes] | None = None
    listen: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.options.fault_proxy_port}"

    def start(self, stop_requested: threading.Event) -> dict[str, str]:
        """Start it and wait for its API; returns the environment that routes the services through it.

        The first start lets the system pick each proxy's port; a restart asks for the same ones, so
        services that already dial them need no restart.
        """
        _check_port_free("127.0.0.1", int(self.options.fault_proxy_port or 0), "the fault proxy")
        links = self.options.proxied_links()
        command = [sys.executable, "-m", "chaos.fault_proxy", "--port", str(self.options.fault_proxy_port)]
        for name, (_, upstream) in links.items():
            listen = self.listen.get(name, "127.0.0.1:0")
            command += ["--proxy", f"{name}={upstream}@{listen}"]
        self.process = subprocess.Popen(command)
        self.listen = self._wait_ready(stop_requested)
        routes: dict[str, str] = {}
        for name, (variable, _) in links.items():
            listen = self.listen[name]
            if name == "payments":
                routes[variable] = f"http://{listen}"
            else:
                routes[variable] = _through(self.options.environment()[variable], listen)
        return routes

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def _wait_ready(self, stop_requested: threading.Event) -> dict[str, str]:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline and not stop_requested.is_set():
            assert self.process is not None
            if self.process.poll() is not None:
                raise ServeError(f"the fault proxy exited with code {self.process.returncode} while starting")
            try:
                answer = httpx.get(f"{self.url}/proxies", timeout=1.0)
                if answer.status_code == 200:
                    return {name: str(proxy["listen"]) for name, proxy in answer.json().items()}
            except httpx.HTTPError:
                pass
            stop_requested.wait(0.1)
        raise ServeError(f"the fault proxy was not ready at {self.url} within {READY_TIMEOUT_SECONDS:.0f} s")
