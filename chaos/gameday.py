"""`nova gameday`: start the platform, load it, break it, and keep the evidence.

A game day owns every process it starts (the platform, Prometheus and Alertmanager when they
are installed, the load runs, `chaos run`) and stops each one by PID at the end, also on Ctrl-C
or a failure. It never imports the services: it starts `nova serve` as an operator would and
drives faults through the admin fault API, through the same `chaos.actions` the experiments use.

With Alertmanager, the day is also an on-call drill (`chaos.drill`): Alertmanager routes to a real
`nova pager serve`, every page runs its runbook against the live platform, and each paged
runbook is graded against the cause the experiment injected; `chaos.postmortem` drafts one
postmortem per incident phase from the evidence.

Phases: a baseline under market-open load, then each experiment through the real `chaos run`
(its own market-open load starts inside the method), one after the other. While it runs the
embedded scraper reads the services' `/metrics` every `STEP_SECONDS` into `<data-dir>/embedded-metrics/`
(what the probes read when there is no Prometheus, and what the report plots). At the end:
alerts from Prometheus (`ALERTS`) and Alertmanager's deliveries, or from the SLO evaluator over
the scraped rows; per phase figures and checks (`chaos.gameday_evidence`); the metrics scenario
with one incident per fault window; the report.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import httpx
import numpy as np

from chaos import actions, live_metrics, probes
from chaos.drill import Drill, attach, experiment_cause, read_pagerduty, read_pages, read_runs
from chaos.errors import ChaosError
from chaos.gameday_evidence import Evidence, embedded_alerts, phase_results
from chaos.gameday_load import overload_note, plan_load
from chaos.gameday_model import BASELINE, GameDayResult, LoadPlan, PhaseResult, SeriesPoint, Window
from chaos.gameday_plan import (
    EXPERIMENTS_DIR,
    RATE_SHAPE,
    SPIKE,
    SPIKE_SECONDS,
    GameDayError,
    GameDayOptions,
    check_options,
    experiment_checks,
)
from chaos.guardrail import POLL_SECONDS, BudgetGuard
from chaos.monitoring import MonitoringError, MonitoringStack, PagerRoute, find_binaries
from chaos.platform import find_platform
from chaos.process_faults import thaw_workers
from loadtests.ledger_verification import LedgerVerification
from loadtests.processes import OwnedProcess, free_ports
from slo.scenario import COUNT_COLUMNS, GAUGE_COLUMNS, Incident, Scenario, first_breach, write_scenario
from slo.scenario import STEP_SECONDS as SCENARIO_STEP_SECONDS
from slo.scraper import EmbeddedScraper, Row, combine

REPO_ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("payments", "portfolio")
STEP_SECONDS = 5.0
START_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 20.0
CHAOS_ROLLBACK_SECONDS = 60.0
LOAD_GRACE_SECONDS = 120.0
# The longest wait before an experiment for its expected page to stop firing from an earlier phase:
# a burn-rate page resolves once its short windows no longer see the earlier errors, 5 minutes
# after a small incident (the 1h/5m pair), up to 30 after a large one (the 6h/30m pair); the
# plans order their experiments so that the large ones come last.
SETTLE_LIMIT_SECONDS = 420.0


@dataclass
class Progress:
    """What the display shows: the phase, how far it is, and the live SLI."""

    phase: str
    index: int  # 1-based
    phases: int
    elapsed: float
    expected: float
    live: dict[str, dict[str, float]] = field(default_factory=dict)  # service -> requests/s, availability, p99_ms


ProgressHook = Callable[[Progress], None]


class GameDay:
    """One game day; `run()` returns what it found, with every process it started stopped."""

    def __init__(self, options: GameDayOptions, progress: ProgressHook | None = None) -> None:
        check_options(options)
        self.options = options
        self.progress = progress or (lambda _: None)
        self.admin_token = secrets.token_urlsafe(32)
        self.result = GameDayResult(
            started=time.time(),
            ended=0.0,
            quick=options.quick,
            database="postgresql" if options.payments_db else "sqlite",
            monitoring="embedded",
            machine=_machine(),
            step_seconds=STEP_SECONDS,
        )
        self._serve: OwnedProcess | None = None
        self._chaos: OwnedProcess | None = None
        self._scraper: EmbeddedScraper | None = None
        self._stack: MonitoringStack | None = None
        self._drill: Drill | None = None
        self._prometheus_url = ""
        self._fault_proxy_url = ""
        self._windows: dict[str, Window] = {}
        self._journals: dict[str, Path] = {}
        self._loads: dict[str, Path] = {}
        self._ledgers: dict[str, LedgerVerification | None] = {}
        self._platform_rows: list[Row] = []
        self._current: tuple[int, str, float] = (0, "starting", time.time())
        self._aborted: dict[str, tuple[float, str]] = {}  # phase -> (when, why) the guardrail stopped it
        self._settled: dict[str, tuple[float, list[str]]] = {}  # phase -> (seconds waited, for which pages)
        self._plan = LoadPlan(rate=options.rate, asked=options.rate)

    # -- the day -------------------------------------------------------------------------------

    def run(self) -> GameDayResult:
        """Run every phase; on Ctrl-C or an error stop early, still clean up and keep what was found."""
        out = self.options.out
        for folder in (out / "logs", out / "journals", self.options.data_dir):
            folder.mkdir(parents=True, exist_ok=True)
        try:
            with ExitStack() as cleanup:
                # The actions and probes this process calls find the token where operators keep it.
                cleanup.enter_context(_environment_variable("NOVA_ADMIN_TOKEN", self.admin_token))
                cleanup.callback(self._stop_serve)
                self._start_serve()
                cleanup.callback(self._stop_monitoring)
                self._start_monitoring()
                cleanup.callback(self._stop_drill)
                self._start_drill()
                cleanup.callback(self._leave_no_fault)
                self._plan = self.result.load_plan = plan_load(self.options, self._urls(), self._calibration_out())
                try:
                    with self._scraping():
                        self._phase(1, BASELINE, self._baseline)
                        for index, name in enumerate(self.options.load_phases, start=2):
                            self._phase(index, name, partial(self._load_phase, name))
                        first = 2 + len(self.options.load_phases)
                        for index, name in enumerate(self.options.chosen, start=first):
                            self._settle(index, name)
                            self._phase(index, name, partial(self._experiment, name))
                finally:
                    # Interrupted or failed, the phases that ran are still evidence worth keeping.
                    self._collect_evidence()
        except KeyboardInterrupt:
            self.result.interrupted = True
        except (ChaosError, OSError, httpx.HTTPError) as exc:
            self.result.error = str(exc)
        finally:
            self.result.ended = time.time()
        return self.result

    def _settle(self, index: int, name: str) -> None:
        """Before an experiment that must page, wait until that page is no longer firing from an earlier phase.

        Alertmanager does not deliver a page again while it fires, so a page left over from an
        earlier phase's incident would hide whether this fault was detected (a PostgreSQL full
        game day's lock contention kept the payments page firing through payments-error-burn).
        The wait is bounded by SETTLE_LIMIT_SECONDS and reported with the phase.
        """
        slos = [rule.slo for rule in experiment_checks(name) if rule.check == "page" and rule.slo]
        if not slos or self._stack is None:
            return
        started, phases = time.monotonic(), 1 + len(self.options.load_phases) + len(self.options.chosen)
        waited_for: set[str] = set()
        while firing := self._firing_pages(slos):
            waited_for.update(firing)
            elapsed = time.monotonic() - started
            if elapsed > SETTLE_LIMIT_SECONDS:
                break
            label = f"{name}: waiting for {', '.join(firing)} to resolve"
            self.progress(Progress(label, index, phases, elapsed, SETTLE_LIMIT_SECONDS, self._live()))
            time.sleep(2.0)
        if waited_for:
            self._settled[name] = (time.monotonic() - started, sorted(waited_for))

    def _firing_pages(self, slos: Sequence[str]) -> list[str]:
        """Pages of these SLOs firing now; none when Prometheus cannot say (the phase then just runs)."""
        try:
            return self._stack.firing_pages(slos) if self._stack is not None else []
        except MonitoringError:
            return []

    def _phase(self, index: int, name: str, body: Callable[[], None]) -> None:
        start = time.time()
        self._current = (index, name, start)
        try:
            body()
        finally:
            self._windows[name] = Window(start, time.time())
            self._ledgers[name] = self._ledger()
            self._keep_pager_state(name)

    def _ledger(self) -> LedgerVerification | None:
        try:
            return probes.verify_ledger(str(self.options.data_dir))
        except ChaosError:
            return None

    def _expected(self, name: str) -> float:
        timing = self.options.timing
        if name == BASELINE:
            return float(timing.baseline)
        if name == SPIKE:
            return float(SPIKE_SECONDS)
        return float(timing.load_seconds(self._fault_seconds(name)) + 10)

    def _fault_seconds(self, name: str) -> int:
        return self.options.fault_seconds(name)

    # -- processes -----------------------------------------------------------------------------

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env["NOVA_ADMIN_TOKEN"] = self.admin_token  # children only; never written to a file or log
        env["NOVA_DATA_DIR"] = str(self.options.data_dir)
        env["NOVA_SERVE_LOG"] = str(self.options.out / "logs" / "serve.log")  # the runbooks' `workers` check
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        env.pop("NOVA_PAYMENTS_DB", None)
        env.pop("NOVA_PORTFOLIO_DB", None)
        return env

    def _start_serve(self) -> None:
        ports = free_ports(3)
        # The fault proxy carries portfolio -> payments (and, on PostgreSQL, each service -> its database).
        self._fault_proxy_url = f"http://127.0.0.1:{ports[2]}"
        command = [
            sys.executable, "-m", "nova", "serve", "--enable-faults", "--fault-proxy",
            "--data-dir", str(self.options.data_dir),
            "--payments-port", str(ports[0]), "--portfolio-port", str(ports[1]), "--fault-proxy-port", str(ports[2]),
            "--workers", str(self.options.workers),
        ]  # fmt: skip
        if self.options.payments_db and self.options.portfolio_db:
            command += ["--payments-db", self.options.payments_db, "--portfolio-db", self.options.portfolio_db]
        self._serve = OwnedProcess("nova serve", command, self.options.out / "logs" / "serve.log", self._environment())
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if not self._serve.running:
                raise GameDayError(f"nova serve exited ({self._serve.popen.returncode}): {self._serve.log_tail(3)}")
            if self._platform_ready():
                return
            time.sleep(0.25)
        raise GameDayError(f"the platform was not ready within {START_TIMEOUT_SECONDS:.0f} s")

    def _platform_ready(self) -> bool:
        try:
            platform = find_platform(self.options.data_dir)
        except ChaosError:
            return False
        if self._serve is None or platform.pid != self._serve.pid:
            return False
        try:
            return all(httpx.get(f"{s.url}/readyz", timeout=2.0).status_code == 200 for s in platform.services.values())
        except httpx.HTTPError:
            return False

    def _urls(self) -> dict[str, str]:
        platform = find_platform(self.options.data_dir)
        return {name: platform.service(name).url for name in SERVICES}

    def _stop_serve(self) -> None:
        if self._serve is not None:
            self._serve.stop(signal.SIGINT, STOP_TIMEOUT_SECONDS)

    def _start_monitoring(self) -> None:
        if not self.options.prometheus:
            return
        binaries = find_binaries()
        if binaries.prometheus is None:
            return
        folder = self.options.out / "monitoring"
        folder.mkdir(parents=True, exist_ok=True)
        rules = folder / "rules.yml"
        rules.write_text(_suite_rules())
        # The platform's own alerts (service down, not ready, database saturation) run beside the SLOs'.
        platform_rules = REPO_ROOT / "alerts" / "rules" / "platform.yml"
        pager_env = self._environment()
        pager_env.pop("NOVA_ADMIN_TOKEN")  # the pager reads Prometheus and runbooks, never the admin API
        pager = PagerRoute(self.options.out / "pager", REPO_ROOT, pager_env)
        self._stack = MonitoringStack(
            folder, rules, self._urls(), binaries=binaries, extra_rule_files=[platform_rules], pager=pager
        ).start()
        self._prometheus_url = self._stack.prometheus_url
        self.result.monitoring = self._stack.mode

    def _stop_monitoring(self) -> None:
        if self._stack is not None:
            self._stack.stop()

    def _start_drill(self) -> None:
        """On every page the pager delivers, run its runbook against the live platform (`chaos.drill`)."""
        stack = self._stack
        if stack is None or stack.pager is None or stack.pager_url is None:
            return
        out = self.options.out
        self._drill = Drill(
            stack.pager.pages, out / "drill", out, self.options.data_dir, self._prometheus_url, self._environment()
        ).start()

    def _stop_drill(self) -> None:
        if self._drill is not None:
            self._drill.stop()

    def _keep_pager_state(self, phase: str) -> None:
        """The pager's dedup state as the phase ended: what had been paged, what was still owed."""
        if self._stack is None or self._stack.pager is None or not self._stack.pager.state.exists():
            return
        kept = self.options.out / "pager" / "state" / f"{phase}.json"
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self._stack.pager.state, kept)

    @contextmanager
    def _scraping(self) -> Iterator[None]:
        """The embedded scraper, its rows mirrored to `<data-dir>/embedded-metrics/` for the probes."""
        scraper = EmbeddedScraper(self._urls(), step_seconds=STEP_SECONDS)
        self._scraper = scraper
        stop = threading.Event()
        written = dict.fromkeys(SERVICES, 0)

        def mirror() -> None:
            while not stop.wait(0.5):
                for service in SERVICES:
                    rows = scraper.rows(service)
                    for row in rows[written[service] :]:
                        live_metrics.append_row(self.options.data_dir, service, row)
                    written[service] = len(rows)

        thread = threading.Thread(target=mirror, name="gameday-metrics", daemon=True)
        with scraper:
            thread.start()
            try:
                yield
            finally:
                stop.set()
                thread.join()
        self.result.series = {service: [_point(row) for row in scraper.rows(service)] for service in SERVICES}
        self._platform_rows = scraper.rows()

    # -- phases --------------------------------------------------------------------------------

    def _baseline(self) -> None:
        self._run_load(BASELINE, self._shape(), self._plan.rate, self.options.timing.baseline)

    def _load_phase(self, name: str) -> None:
        """A phase of load alone: the full game day's spike to ten times the rate (or to capacity)."""
        self._run_load(name, SPIKE, self._plan.spike_rps or 0.0, SPIKE_SECONDS)

    def _run_load(self, name: str, shape: str, rate: float, seconds: int) -> None:
        state = actions.start_background_load(
            str(self.options.data_dir),
            shape=shape,
            peak_users=self.options.timing.load_users,
            rate=rate,
            duration=str(seconds),
            out=str(self.options.out / "load" / name),
        )
        self._loads[name] = Path(state["out"])
        pid = int(state["pid"])
        try:
            # nova load's own bound: the run, Locust's start and stop (samples, the audit), its grace.
            self._wait(lambda: actions.is_background_load(pid), float(seconds) + LOAD_GRACE_SECONDS)
        finally:
            actions.stop_background_load(str(self.options.data_dir))

    def _shape(self) -> str:
        """At a rate every phase holds it; the closed model keeps its market-open users."""
        return RATE_SHAPE if self._plan.rate > 0 else "market_open"

    def _calibration_out(self) -> Path:
        return self.options.out / "load" / "calibration"

    def _experiment(self, name: str) -> None:
        timing = self.options.timing
        fault = self._fault_seconds(name)
        journal = self.options.out / "journals" / f"{name}.json"
        self._journals[name] = journal
        env = self._environment()
        env.update(
            NOVA_PROMETHEUS_URL=self._prometheus_url,
            NOVA_FAULT_PROXY_URL=self._fault_proxy_url,
            NOVA_CHAOS_LOAD_USERS=str(timing.load_users),
            NOVA_CHAOS_LOAD_SECONDS=str(timing.load_seconds(fault)),
            NOVA_CHAOS_WARMUP_SECONDS=str(timing.warmup),
            NOVA_CHAOS_FAULT_SECONDS=str(fault),
            NOVA_CHAOS_RECOVERY_SECONDS=str(timing.recovery),
            NOVA_CHAOS_FAULT_TTL_SECONDS=str(fault + 120),
            NOVA_CHAOS_LOAD_RATE=repr(self._plan.rate),
            NOVA_CHAOS_LOAD_SHAPE=self._shape(),
        )
        command = [
            str(_chaos_binary()), "--log-file", str(journal.with_suffix(".log")),
            "run", "--journal-path", str(journal),
            # Rollbacks also when interrupted (the guardrail, Ctrl-C): faults cleared, load stopped and judged.
            "--rollback-strategy", "always",
            str(EXPERIMENTS_DIR / f"{name}.json"),
        ]  # fmt: skip
        guard = self._guard()
        self._chaos = chaos = OwnedProcess("chaos run", command, self.options.out / "logs" / f"chaos-{name}.log", env)
        try:
            self._wait(lambda: chaos.running, self._expected(name) + 300.0, guard)
        except _BudgetSpent as spent:
            self._aborted[name] = (time.time(), spent.reason)
            self._abort(chaos)
        finally:
            chaos.stop(signal.SIGINT, CHAOS_ROLLBACK_SECONDS)  # as Ctrl-C: chaos still runs its rollbacks
            self._chaos = None

    def _guard(self) -> BudgetGuard | None:
        if self.options.abort_budget is None:
            return None
        guard = BudgetGuard(self._urls(), self.options.abort_budget)
        guard.start()
        return guard

    def _abort(self, chaos: OwnedProcess) -> None:
        """The guardrail tripped: faults off now (before chaos's own rollbacks, which also run), then stop chaos."""
        data_dir = str(self.options.data_dir)
        for step in (actions.clear_all_faults, actions.start_database):
            with suppress(ChaosError, OSError, httpx.HTTPError):
                step(data_dir)
        chaos.stop(signal.SIGINT, CHAOS_ROLLBACK_SECONDS)  # as Ctrl-C: its rollbacks stop the load, clear faults

    def _wait(self, running: Callable[[], bool], timeout: float, guard: BudgetGuard | None = None) -> None:
        index, name, start = self._current
        expected = self._expected(name)
        phases = 1 + len(self.options.load_phases) + len(self.options.chosen)
        checked = time.monotonic()
        while running():
            elapsed = time.time() - start
            if elapsed > timeout:
                raise GameDayError(f"{name} did not finish within {timeout:.0f} s")
            self.progress(Progress(name, index, phases, elapsed, expected, self._live()))
            time.sleep(0.25 if guard is not None else 0.5)
            if guard is not None and time.monotonic() - checked >= POLL_SECONDS:
                checked = time.monotonic()
                reason = guard.check()
                if reason is not None:
                    raise _BudgetSpent(reason)
        self.progress(Progress(name, index, phases, expected, expected, self._live()))

    def _live(self) -> dict[str, dict[str, float]]:
        """The last 30 s per service, from the embedded scraper."""
        if self._scraper is None:
            return {}
        live = {}
        for service in SERVICES:
            rows = self._scraper.rows(service)[-6:]
            requests = sum(row.requests for row in rows)
            errors = sum(row.errors for row in rows)
            span = STEP_SECONDS * max(len(rows), 1)
            live[service] = {
                "rps": requests / span,
                "availability": 1.0 - errors / requests if requests else float("nan"),
                "p99_ms": max((row.p99_ms for row in rows), default=float("nan")),
            }
        return live

    # -- cleanup -------------------------------------------------------------------------------

    def _leave_no_fault(self) -> None:
        """Whatever happened: no experiment still running, no load, no fault, the database back."""
        if self._chaos is not None:
            self._chaos.stop(signal.SIGINT, CHAOS_ROLLBACK_SECONDS)
        data_dir = str(self.options.data_dir)
        if self._fault_proxy_url:  # every toxic removed, every link up
            with suppress(httpx.HTTPError):
                httpx.post(f"{self._fault_proxy_url}/reset", timeout=5.0)
        for step in (actions.stop_background_load, actions.start_database, actions.clear_all_faults, thaw_workers):
            # Nothing of that kind was left (no load file), or the platform is already gone.
            with suppress(ChaosError, OSError, httpx.HTTPError):
                step(data_dir)

    # -- evidence ------------------------------------------------------------------------------

    def _collect_evidence(self) -> None:
        try:
            self._collect()
        except (ChaosError, OSError, httpx.HTTPError) as exc:
            self.result.error = self.result.error or f"the evidence could not be collected: {exc}"

    def _collect(self) -> None:
        end = time.time()
        if self._stack is not None:
            alerts = self._stack.alert_intervals(self.result.started, end)
            notifications = self._stack.notifications()
        else:
            alerts, notifications = embedded_alerts(self.result.series, STEP_SECONDS), []
        evidence = Evidence(
            out=self.options.out,
            windows=self._windows,
            journals=self._journals,
            loads=self._loads,
            ledgers=self._ledgers,
            series=self.result.series,
            step_seconds=STEP_SECONDS,
            alerts=alerts,
            notifications=notifications,
            ended=end,
            aborted=self._aborted,
        )
        names = [BASELINE, *self.options.load_phases, *self.options.chosen]
        self.result.phases = phase_results(evidence, names)
        for phase in self.result.phases:
            phase.fault_kind = self.options.fault_kind(phase.name)
            phase.settled_seconds, phase.settled_for = self._settled.get(phase.name, (0.0, []))
        baseline = next((phase for phase in self.result.phases if phase.name == BASELINE), None)
        note = overload_note(self._plan, baseline)
        if note:
            note = "; ".join(filter(None, (self._plan.note, note)))
            self._plan = self.result.load_plan = replace(self._plan, note=note)
        self._collect_drill()
        write_scenario(self.options.out / "scenario", game_day_scenario(self._platform_rows, self.result.phases))

    def _collect_drill(self) -> None:
        """Pages, PagerDuty events and runbook runs, attached to their phases and graded; then the postmortems."""
        from chaos.postmortem import write_postmortems

        out = self.options.out
        self._stop_drill()  # every runbook run started has finished and been recorded
        causes = {name: _declared_cause(self._journals.get(name), name) for name in self.options.chosen}
        pager = out / "pager"
        attach(
            self.result.phases,
            read_pages(pager / "pages.jsonl"),
            read_runs(out / "drill" / "runs.jsonl"),
            read_pagerduty(pager / "pagerduty.jsonl"),
            causes,
        )
        for phase in self.result.phases:
            state = pager / "state" / f"{phase.name}.json"
            phase.pager_state = str(state.relative_to(out)) if state.exists() else None
        write_postmortems(self.result, out)


def _declared_cause(journal: Path | None, name: str) -> str | None:
    """The cause the experiment declares: from its journal (what ran), else from its file."""
    for path in (journal, EXPERIMENTS_DIR / f"{name}.json"):
        try:
            document = json.loads(path.read_text()) if path is not None else None
        except (OSError, ValueError):
            continue
        if isinstance(document, dict):
            experiment = document.get("experiment", document)
            cause = experiment_cause(experiment) if isinstance(experiment, dict) else None
            if cause is not None:
                return cause
    return None


def game_day_scenario(rows: Sequence[Row], phases: Sequence[PhaseResult]) -> Scenario:
    """The platform's rows on DESIGN.md's 15 s grid, one incident per fault window.

    Each 15 s row merges the scraper's steps that ended in it (counts summed, p99 from the summed
    buckets, cpu and pool the worst); slots no step ended in are empty rows. An incident ends when
    its fault ended plus the time the platform took to serve again (`recovery_seconds`), and its
    breach is the first row at which DESIGN.md's page condition holds (on full windows, so a short
    game day rarely has one).
    """
    slots: dict[int, list[Row]] = {}
    for row in rows:
        slot = int(np.ceil(row.timestamp / SCENARIO_STEP_SECONDS) * SCENARIO_STEP_SECONDS)
        slots.setdefault(slot, []).append(row)
    ends = (
        np.arange(min(slots), max(slots) + 1, SCENARIO_STEP_SECONDS, dtype=np.int64) if slots else np.zeros(0, np.int64)
    )
    merged = [combine(slots.get(int(end), []), float(end)) for end in ends]
    columns = {key: [getattr(row, key) for row in merged] for key in (*COUNT_COLUMNS, *GAUGE_COLUMNS)}
    scenario = Scenario.from_columns(ends, columns, name="gameday")
    for phase in phases:
        if phase.fault is not None and ends.size:
            end = phase.fault.end + (phase.recovery_seconds or 0.0)
            breach = first_breach(scenario, phase.fault.start, end)
            scenario.incidents.append(Incident(phase.name, round(phase.fault.start), breach, round(end)))
    return scenario


class _BudgetSpent(Exception):
    """The guardrail's cap was crossed during an experiment (`reason` says by what)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@contextmanager
def _environment_variable(name: str, value: str) -> Iterator[None]:
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


def _suite_rules() -> str:
    from slo.rules import RuleOptions, render
    from slo.spec import SUITE_SPECS, load_specs

    return render(load_specs(SUITE_SPECS), RuleOptions(), sources=[str(path.name) for path in SUITE_SPECS])


def _point(row: Row) -> SeriesPoint:
    return SeriesPoint(row.timestamp, row.requests, row.errors, row.slow, row.p99_ms, row.cpu, row.db_pool)


def _chaos_binary() -> Path:
    beside = Path(sys.executable).parent / "chaos"
    if beside.exists():
        return beside
    found = shutil.which("chaos")
    if found is None:
        raise GameDayError("the Chaos Toolkit (`chaos`) is not installed in this environment")
    return Path(found)


def _machine() -> str:
    cpus = os.cpu_count() or 0
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpus} vCPU {model}, Python {sys.version.split()[0]}".strip()
