"""Chaos Toolkit actions: turn faults on and off, kill a worker, stop and start PostgreSQL, run background load.

Every function is a plain provider for `{"type": "python", "module": "chaos.actions", "func": ...}` and
returns a JSON-able value for the journal. Faults go through the admin fault API over HTTP; a fault is
always injected with a TTL, so a crashed experiment cannot leave one on for good.

`kill_worker` goes through the fault API's `worker_kill` rather than signalling a PID found under the
supervisor in /proc: the API kills exactly a worker (never the supervisor), needs no guess about which
children are workers, and is authenticated like every other fault. It needs the platform to run with
faults enabled, which every experiment needs anyway.
"""

from __future__ import annotations

import json
import os
import shutil
import signal as signals
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from chaos.errors import DatabaseControlError, FaultAPIError, LoadError, PlatformError
from chaos.platform import SERVICES, RunningPlatform, find_platform

DEFAULT_TTL_SECONDS = 300
LOAD_PID_FILE = "chaos-load.json"
PG_CTL_TIMEOUT_SECONDS = 60.0


def inject_fault(service: str, fault: str, data_dir: str = ".nova", **settings: Any) -> dict[str, Any]:
    """Turn `fault` on in `service` with `settings` (e.g. `ms=100`); `ttl_seconds` defaults to 300.

    Returns the fault as the API answered it: `{"name", "settings", "expires_at", "seconds_left"}`.
    """
    settings.setdefault("ttl_seconds", DEFAULT_TTL_SECONDS)
    platform = _platform_with_faults(data_dir)
    with platform.admin_client(service) as client:
        response = _call(client, "PUT", f"/admin/faults/{fault}", json=settings)
    _expect(response, 200, f"inject {fault} into {service}")
    answer: dict[str, Any] = response.json()
    return answer


def clear_fault(service: str, fault: str, data_dir: str = ".nova") -> dict[str, Any]:
    """Turn `fault` off in `service` (whether or not it was on)."""
    platform = _platform_with_faults(data_dir)
    with platform.admin_client(service) as client:
        response = _call(client, "DELETE", f"/admin/faults/{fault}")
    _expect(response, 204, f"clear {fault} in {service}")
    return {"service": service, "cleared": [fault]}


def clear_all_faults(data_dir: str = ".nova") -> dict[str, Any]:
    """Turn every fault off in every service: the rollback every experiment ends with."""
    platform = _platform_with_faults(data_dir)
    cleared = []
    for service in sorted(platform.services):
        with platform.admin_client(service) as client:
            response = _call(client, "DELETE", "/admin/faults")
        _expect(response, 204, f"clear the faults of {service}")
        cleared.append(service)
    return {"cleared": cleared}


def active_faults(data_dir: str = ".nova") -> dict[str, list[str]]:
    """The names of the faults on now, per service (also usable as a probe)."""
    platform = _platform_with_faults(data_dir)
    faults: dict[str, list[str]] = {}
    for service in sorted(platform.services):
        with platform.admin_client(service) as client:
            response = _call(client, "GET", "/admin/faults")
        _expect(response, 200, f"list the faults of {service}")
        faults[service] = [entry["name"] for entry in response.json()["faults"]]
    return faults


def kill_worker(service: str, data_dir: str = ".nova", signal: str = "SIGKILL") -> dict[str, Any]:
    """Kill one worker of `service` (the one that receives the call) with SIGKILL or SIGTERM.

    Returns `{"name": "worker_kill", "pid", "signal"}`; the supervisor replaces the worker.
    """
    if signal not in ("SIGKILL", "SIGTERM"):
        raise PlatformError(f"signal must be SIGKILL or SIGTERM, not {signal!r}")
    platform = _platform_with_faults(data_dir)
    with platform.admin_client(service) as client:
        response = _call(client, "PUT", "/admin/faults/worker_kill", json={"signal": signal})
    _expect(response, 202, f"kill a worker of {service}")
    answer: dict[str, Any] = response.json()
    return answer


def stop_postgresql(data_dir: str = ".nova", version: str | None = None, cluster: str = "main") -> dict[str, Any]:
    """Stop the PostgreSQL cluster the platform runs on (`pg_ctlcluster <version> main stop`).

    Refuses (DatabaseControlError) when no service of the platform runs on PostgreSQL: the
    embedded SQLite has no server to stop, and stopping an unrelated cluster would test nothing.
    """
    _require_postgresql(data_dir)
    return _pg_ctlcluster("stop", version, cluster)


def start_postgresql(data_dir: str = ".nova", version: str | None = None, cluster: str = "main") -> dict[str, Any]:
    """Start the PostgreSQL cluster again (`pg_ctlcluster <version> main start`); the rollback of an outage.

    A cluster that is already online is left alone, so the rollback may run after a method that started it.
    """
    _require_postgresql(data_dir)
    version = version or _only_cluster_version(cluster)
    if _cluster_online(version, cluster):
        return {"command": ["pg_ctlcluster", version, cluster, "start"], "already_running": True}
    return _pg_ctlcluster("start", version, cluster)


def stop_database(data_dir: str = ".nova", ttl_seconds: int = DEFAULT_TTL_SECONDS) -> dict[str, Any]:
    """Take the platform's database away: PostgreSQL is stopped; the embedded SQLite cannot be, so
    every service gets the `db_unavailable` fault (the same 503 + Retry-After path, TTL-bounded).

    Returns `{"database": "postgresql" | "sqlite", ...}` with what was done.
    """
    if _database_kind(data_dir) == "postgresql":
        return {"database": "postgresql", **stop_postgresql(data_dir)}
    platform = _platform_with_faults(data_dir)
    faults = {
        name: inject_fault(name, "db_unavailable", data_dir, ttl_seconds=ttl_seconds)
        for name in sorted(platform.services)
    }
    return {"database": "sqlite", "faults": faults}


def start_database(data_dir: str = ".nova") -> dict[str, Any]:
    """Give the database back (what `stop_database` took); safe to call when it was never taken."""
    if _database_kind(data_dir) == "postgresql":
        return {"database": "postgresql", **start_postgresql(data_dir)}
    platform = _platform_with_faults(data_dir)
    cleared = [clear_fault(name, "db_unavailable", data_dir)["service"] for name in sorted(platform.services)]
    return {"database": "sqlite", "cleared": cleared}


def _database_kind(data_dir: str) -> str:
    platform = find_platform(data_dir)
    return "postgresql" if any(platform.database_url(name) for name in platform.services) else "sqlite"


def start_background_load(
    data_dir: str = ".nova",
    shape: str = "steady",
    peak_users: int = 20,
    duration: str = "60",
    user_rate: float = 1.0,
    mix: str = "trading",
    p99_ms: float | None = None,
    availability_percent: float | None = None,
    out: str | None = None,
    rate: float | str = 0.0,
) -> dict[str, Any]:
    """Start `python -m nova load ...` detached; its PID and results folder go to `<data-dir>/chaos-load.json`.

    `rate` above 0 offers that many requests/s on the open model's timetable (`nova load --rate`),
    scaled by `shape`; 0 runs `peak_users` closed-model users. The gate's limits default to the
    suite's targets (slo/specs). Refuses if a load started this way is still running.
    Returns `{"pid", "out", "log"}`.
    """
    try:
        offered = float(rate)  # Chaos Toolkit hands configuration over as text
    except ValueError:
        raise LoadError(f"rate must be a number of requests/s, not {rate!r}") from None
    folder = Path(data_dir)
    pid_file = folder / LOAD_PID_FILE
    previous = _read_load_state(pid_file)
    if previous is not None and is_background_load(int(previous["pid"])):
        raise LoadError(f"background load is already running (pid {previous['pid']}); stop it first")
    results = Path(out) if out else folder / "chaos-load" / time.strftime("%Y%m%dT%H%M%S")
    results.mkdir(parents=True, exist_ok=True)
    log = results / "nova-load.log"
    command = [
        sys.executable, "-m", "nova", "load",
        "--data-dir", str(folder),
        "--shape", shape,
        "--peak-users", str(peak_users),
        "--duration", str(duration),
        "--user-rate", str(user_rate),
        "--mix", mix,
        "--out", str(results),
    ]  # fmt: skip
    if p99_ms is not None:
        command += ["--p99-ms", str(p99_ms)]
    if availability_percent is not None:
        command += ["--availability", str(availability_percent)]
    if offered > 0:
        command += ["--rate", repr(offered)]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    state = {"pid": process.pid, "out": str(results), "log": str(log), "started": time.time()}
    pid_file.write_text(json.dumps(state) + "\n")
    return state


def stop_background_load(data_dir: str = ".nova", timeout_seconds: float = 30.0) -> dict[str, Any]:
    """Stop the load `start_background_load` started, by the PID in its pid file only (SIGINT, then SIGTERM).

    Returns `{"pid", "out", "stopped", "returncode"}`; `stopped` is False when it had already ended.
    """
    pid_file = Path(data_dir) / LOAD_PID_FILE
    state = _read_load_state(pid_file)
    if state is None:
        raise LoadError(f"{pid_file}: no background load was started from this data dir")
    pid = int(state["pid"])
    stopped = False
    if is_background_load(pid):
        # SIGINT is Ctrl-C: `nova load` stops Locust and still writes what it measured.
        os.kill(pid, signals.SIGINT)
        stopped = True
        if not _wait_gone(pid, timeout_seconds):
            os.kill(pid, signals.SIGTERM)
            _wait_gone(pid, 5.0)
    # Gone once stopped, so the next experiment's steady state does not judge this run again.
    pid_file.unlink(missing_ok=True)
    return {"pid": pid, "out": state["out"], "stopped": stopped}


def _platform_with_faults(data_dir: str) -> RunningPlatform:
    platform = find_platform(data_dir)
    if not platform.faults_enabled:
        raise PlatformError(
            f"the platform in {data_dir} runs without the fault API; start it with `nova serve --enable-faults`"
        )
    return platform


def _call(client: httpx.Client, method: str, path: str, json: Any = None) -> httpx.Response:
    try:
        return client.request(method, path, json=json)
    except httpx.HTTPError as exc:
        raise FaultAPIError(f"{method} {client.base_url}{path}: {exc!r}") from None


def _expect(response: httpx.Response, status: int, what: str) -> None:
    if response.status_code != status:
        detail = response.text.strip().replace("\n", " ")[:300]
        raise FaultAPIError(f"cannot {what}: {response.status_code} {detail}")


def _require_postgresql(data_dir: str) -> None:
    platform = find_platform(data_dir)
    on_postgres = [name for name in SERVICES if name in platform.services and platform.database_url(name)]
    if not on_postgres:
        raise DatabaseControlError(
            f"the platform in {data_dir} runs on the embedded SQLite, not PostgreSQL: "
            "there is no database server to stop (use the db_unavailable fault instead)"
        )


def _pg_ctlcluster(command: str, version: str | None, cluster: str) -> dict[str, Any]:
    if shutil.which("pg_ctlcluster") is None:
        raise DatabaseControlError("pg_ctlcluster is not installed (Debian's postgresql-common)")
    version = version or _only_cluster_version(cluster)
    argv = ["pg_ctlcluster", version, cluster, command]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=PG_CTL_TIMEOUT_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        raise DatabaseControlError(f"{' '.join(argv)} did not finish in {PG_CTL_TIMEOUT_SECONDS:.0f} s") from None
    if done.returncode != 0:
        raise DatabaseControlError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()[:300]}")
    return {"command": argv, "returncode": done.returncode}


def _only_cluster_version(cluster: str) -> str:
    done = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True, timeout=10, check=False)
    versions = [
        line.split()[0] for line in done.stdout.splitlines() if len(line.split()) > 1 and line.split()[1] == cluster
    ]
    if len(versions) != 1:
        raise DatabaseControlError(f"name the PostgreSQL version: clusters named {cluster!r}: {versions or 'none'}")
    return versions[0]


def _cluster_online(version: str, cluster: str) -> bool:
    done = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True, timeout=10, check=False)
    for line in done.stdout.splitlines():
        fields = line.split()
        if len(fields) > 3 and fields[0] == version and fields[1] == cluster:
            return fields[3].startswith("online")
    raise DatabaseControlError(f"no PostgreSQL cluster {version}/{cluster}")


def _read_load_state(pid_file: Path) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads(pid_file.read_text())
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as exc:
        raise LoadError(f"{pid_file}: not JSON ({exc})") from None
    return state


def is_background_load(pid: int) -> bool:
    """Whether `pid` is still a `nova load` process (a recycled PID must never be signalled)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        if _is_child(pid):
            os.waitpid(pid, os.WNOHANG)
        return False
    # Our own child counts from the start, before its command line is readable as `nova load`.
    return (b"nova" in argv and b"load" in argv) or _is_child(pid)


def _is_child(pid: int) -> bool:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[1]) == os.getpid()
    except (OSError, ValueError, IndexError):
        return False


def _wait_gone(pid: int, timeout_seconds: float) -> bool:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if not is_background_load(pid):
            return True
        time.sleep(0.2)
    return not is_background_load(pid)
