"""The game day as an on-call drill: every page runs its runbook, graded against the injected cause.

Alertmanager routes to a real `nova pager serve` (`chaos.monitoring.PagerRoute`), which delivers
each page as a JSON line. `Drill` watches that file while the game day runs and, on every page
that triggers, runs `nova runbooks run <alert> --json` against the live platform and Prometheus,
as on-call would the moment the page arrives, keeping each run's output in `<out>/drill/`.

Only a game day knows the true cause of an incident: each experiment declares it as data
(`"extensions": [{"name": "nova-drill", "cause": "error_rate"}]`, in the vocabulary of
`runbooks.causes`). `attach` grades each paged alert of a phase against its experiment's cause:
`right` when a diagnostic named it, `wrong` when they named only other causes, `silent` when
they named none; `seconds_to_cause` runs from the page's delivery to the first diagnostic that
named it. A runbook that never names the cause of its own experiment fails the phase's check.
Accuracy counts pages that named the cause; precision, of all the causes named, the share that
was injected (the others are leads on-call follows for nothing).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from statistics import median
from typing import Any

from chaos.gameday_model import Check, DeliveredPage, Diagnosis, PhaseResult

DRILL_EXTENSION = "nova-drill"
RIGHT, WRONG, SILENT = "right", "wrong", "silent"
RUNBOOK_TIMEOUT_SECONDS = 90.0
POLL_SECONDS = 0.5
MAX_PARALLEL_RUNS = 4  # pages of one incident arrive together; on-call opens each at once
SLOW_DIAGNOSIS_SECONDS = 30.0  # a runbook slower than this to name the cause is an action item


def experiment_cause(experiment: Mapping[str, Any]) -> str | None:
    """The cause an experiment declares it injects (its `nova-drill` extension), or None."""
    for extension in experiment.get("extensions") or []:
        if isinstance(extension, dict) and extension.get("name") == DRILL_EXTENSION and extension.get("cause"):
            return str(extension["cause"])
    return None


@dataclass(frozen=True)
class StepFinding:
    title: str
    status: str  # ok | attention | skipped | error
    causes: list[str]
    finished_at: float


@dataclass(frozen=True)
class RunbookRun:
    """One `nova runbooks run` the drill made on a page (a line of `<out>/drill/runs.jsonl`)."""

    alert: str
    severity: str
    dedup_key: str
    delivered_at: float  # the page's
    started_at: float
    finished_at: float
    returncode: int
    runbook: str  # the runbook file it ran ("" when it could not)
    causes: list[str]  # every cause it named, in step order
    steps: list[StepFinding] = field(default_factory=list)
    output: str = ""  # its JSON output, relative to the game-day folder
    error: str = ""  # why it could not run, when it could not

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> RunbookRun:
        steps = [StepFinding(**step) for step in document.get("steps") or []]
        return cls(**{**document, "steps": steps})

    @property
    def seconds(self) -> float:
        return self.finished_at - self.started_at


def read_pages(path: Path) -> list[DeliveredPage]:
    """The pager's `jsonl:` delivery; a line cut short by a crash is skipped."""
    if not path.exists():
        return []
    pages = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            pages.append(DeliveredPage.from_json(json.loads(line)))
        except (ValueError, KeyError, TypeError):
            continue
    return pages


def read_pagerduty(path: Path) -> list[tuple[float, dict[str, Any]]]:
    """The Events API v2 events the pager posted to the capture endpoint: (received_at, event)."""
    if not path.exists():
        return []
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
            events.append((float(record["received_at"]), dict(record["event"])))
        except (ValueError, KeyError, TypeError):
            continue
    return events


def read_runs(path: Path) -> list[RunbookRun]:
    if not path.exists():
        return []
    return [RunbookRun.from_json(json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line]


class Drill:
    """Watches the pager's deliveries and runs each triggered page's runbook; `stop()` waits for the runs."""

    def __init__(
        self,
        pages: Path,
        folder: Path,
        out: Path,
        data_dir: Path,
        prometheus_url: str,
        env: Mapping[str, str],
        runbooks: Path | None = None,
    ) -> None:
        self.pages = pages
        self.folder = folder
        self.out = out
        self.data_dir = data_dir
        self.prometheus_url = prometheus_url
        self.env = dict(env)
        self.runbooks = runbooks  # the runbooks folder (None: the suite's own, `runbooks/`)
        self._seen = 0
        self._count = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(MAX_PARALLEL_RUNS, thread_name_prefix="drill-runbook")
        self._futures: list[Future[None]] = []
        self._thread = threading.Thread(target=self._watch, name="drill", daemon=True)

    @property
    def runs_file(self) -> Path:
        return self.folder / "runs.jsonl"

    def start(self) -> Drill:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop watching (after one last look) and wait for the runs started; safe to call again."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._poll()
        for future in list(self._futures):
            future.result()
        self._pool.shutdown(wait=True)

    def _watch(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            self._poll()

    def _poll(self) -> None:
        text = self.pages.read_text(encoding="utf-8") if self.pages.exists() else ""
        lines = text[: text.rfind("\n") + 1].splitlines()  # whole lines only: the last may be half-written
        for line in lines[self._seen :]:
            try:
                document = json.loads(line)
                page = DeliveredPage.from_json(document)
            except (ValueError, KeyError, TypeError):
                continue  # not a page (the pager writes only pages; a crash could leave a stray line)
            if page.event != "trigger":
                continue
            for alert, severity in _alerts_of(document, page):
                self._futures.append(self._pool.submit(self._run, page, alert, severity))
        self._seen = len(lines)

    def _run(self, page: DeliveredPage, alert: str, severity: str) -> None:
        with self._lock:
            self._count += 1
            number = self._count
        output = self.folder / f"{number:02d}-{alert}-{severity}.json"
        command = [
            sys.executable, "-m", "nova", "runbooks", "run", alert, "--severity", severity, "--json",
            "--data-dir", str(self.data_dir), "--prometheus", self.prometheus_url,
        ]  # fmt: skip
        if self.runbooks is not None:
            command += ["--runbooks", str(self.runbooks)]
        started = time.time()
        try:
            done = subprocess.run(
                command, env=self.env, capture_output=True, text=True, timeout=RUNBOOK_TIMEOUT_SECONDS, check=False
            )
            returncode, stdout, stderr = done.returncode, done.stdout, done.stderr
        except subprocess.TimeoutExpired:
            returncode, stdout, stderr = -1, "", f"did not finish within {RUNBOOK_TIMEOUT_SECONDS:.0f} s"
        finished = time.time()
        output.write_text(stdout or "{}")
        run = _run_record(page, alert, severity, started, finished, returncode, stdout, stderr)
        run = replace(run, output=str(output.relative_to(self.out)))
        with self._lock, self.runs_file.open("a", encoding="utf-8") as file:
            file.write(json.dumps(run.to_json(), sort_keys=True) + "\n")


def _alerts_of(document: Mapping[str, Any], page: DeliveredPage) -> list[tuple[str, str]]:
    """Each (alert, severity) the page details, once: the runbooks on-call would run."""
    found = [(str(s.get("alertname", "")), str(s.get("severity") or page.severity)) for s in document["alerts"]]
    return list(dict.fromkeys(pair for pair in found if pair[0]))


def _run_record(
    page: DeliveredPage,
    alert: str,
    severity: str,
    started: float,
    finished: float,
    returncode: int,
    stdout: str,
    stderr: str,
) -> RunbookRun:
    try:
        document = json.loads(stdout)
        steps = [
            StepFinding(str(s["title"]), str(s["status"]), list(s.get("causes") or []), float(s["finished_at"]))
            for s in document["steps"]
        ]
    except (ValueError, KeyError, TypeError):
        error = " ".join(stderr.split())[:300] or f"exit {returncode}, no JSON output"
        return RunbookRun(
            alert, severity, page.dedup_key, page.delivered_at, started, finished, returncode, "", [], [], error=error
        )
    return RunbookRun(
        alert=alert,
        severity=severity,
        dedup_key=page.dedup_key,
        delivered_at=page.delivered_at,
        started_at=started,
        finished_at=finished,
        returncode=returncode,
        runbook=Path(str(document.get("runbook", ""))).name,
        causes=list(document.get("causes") or []),
        steps=steps,
        error=" ".join(stderr.split())[:300] if returncode else "",
    )


# -- grading ----------------------------------------------------------------------------------------


def grade(alert: str, severity: str, cause: str, runs: Sequence[RunbookRun]) -> Diagnosis:
    """One paged alert's runbook against `cause`, over every run it had in the phase (first page first)."""
    runs = sorted(runs, key=lambda run: run.delivered_at)
    first = runs[0]
    named = list(dict.fromkeys(c for run in runs for c in run.causes))
    naming = [step.finished_at for run in runs for step in run.steps if cause in step.causes]
    verdict = RIGHT if cause in named else (WRONG if named else SILENT)
    findings = [f"{step.title}: {', '.join(step.causes)}" for step in first.steps if step.causes]
    if first.error and not first.steps:
        findings = [f"could not run: {first.error}"]
    return Diagnosis(
        alert=alert,
        severity=severity,
        runbook=first.runbook,
        cause=cause,
        verdict=verdict,
        named=named,
        seconds_to_cause=min(naming) - first.delivered_at if naming else None,
        runbook_seconds=first.seconds,
        steps=len(first.steps),
        findings=findings,
        output=first.output,
        paged_at=first.delivered_at,
    )


def drill_check(phase: PhaseResult) -> Check | None:
    """Each runbook of a page (severity page: what wakes on-call) named its experiment's cause.

    Tickets are graded and reported too, but do not fail the check: they are worked the next day,
    and on a loaded machine a latency ticket can fire for reasons no experiment injected.
    None when the phase has no cause or nothing at page severity was graded.
    """
    pages = [d for d in phase.diagnosis if d.severity == "page"]
    if phase.cause is None or not pages:
        return None
    missed = [d for d in pages if d.verdict != RIGHT]
    detail = "; ".join(
        f"{d.alert} ({d.severity}): {d.verdict}"
        + (f" in {d.seconds_to_cause:.1f} s" if d.seconds_to_cause is not None else "")
        + (f", named {', '.join(d.named)}" if d.verdict == WRONG else "")
        for d in phase.diagnosis
    )
    return Check(f"every paging runbook named the injected cause ({phase.cause})", not missed, detail)


def attach(
    phases: Sequence[PhaseResult],
    pages: Sequence[DeliveredPage],
    runs: Sequence[RunbookRun],
    pagerduty: Sequence[tuple[float, dict[str, Any]]] = (),
    causes: Mapping[str, str | None] | None = None,
) -> None:
    """Give each phase its pages (with their PagerDuty events), its cause, its graded runbooks and check."""
    ordered = sorted(phases, key=lambda p: p.window.start)
    for phase in ordered:
        if causes is not None and phase.cause is None:
            phase.cause = causes.get(phase.name)
    for page in pages:
        owner = _phase_of(ordered, page.delivered_at)
        if owner is None:
            continue
        event = _pagerduty_event(pagerduty, page)
        after = page.delivered_at - owner.fault.start if owner.fault is not None else None
        owner.pages.append(replace(page, pagerduty=event, seconds_after_fault=after))
    for phase in ordered:
        if phase.cause is None:
            continue
        # Pages the fault could have caused: delivered after it started (a page in the warm-up is not its).
        start = phase.fault.start if phase.fault is not None else phase.window.start
        keys = {(p.dedup_key, p.delivered_at) for p in phase.pages if p.delivered_at >= start}
        mine = [run for run in runs if (run.dedup_key, run.delivered_at) in keys]
        by_alert: dict[tuple[str, str], list[RunbookRun]] = {}
        for run in sorted(mine, key=lambda r: r.delivered_at):
            by_alert.setdefault((run.alert, run.severity), []).append(run)
        phase.diagnosis = [grade(a, s, phase.cause, rs) for (a, s), rs in by_alert.items()]
        check = drill_check(phase)
        if check is not None:
            phase.checks.append(check)


def _phase_of(phases: Sequence[PhaseResult], moment: float) -> PhaseResult | None:
    """The phase on at `moment`: the last one that had started (a page after the last phase is the last's)."""
    started = [phase for phase in phases if phase.window.start <= moment]
    return started[-1] if started else None


def _pagerduty_event(events: Sequence[tuple[float, dict[str, Any]]], page: DeliveredPage) -> dict[str, Any] | None:
    """The event the pager posted for this page: same dedup key and action, the nearest in time."""
    action = page.event
    matching = [
        (abs(received - page.delivered_at), event)
        for received, event in events
        if event.get("dedup_key") == page.dedup_key and event.get("event_action") == action
    ]
    return min(matching, key=lambda pair: pair[0])[1] if matching else None


# -- accuracy -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Accuracy:
    """How often one runbook (per alert), or the runbooks of one experiment, named the cause."""

    name: str  # the alert (and severity), or the experiment
    cause: str  # the experiment's cause, or the causes its experiments injected
    graded: int
    right: int
    wrong: int
    silent: int
    median_seconds_to_cause: float | None
    causes_named: int = 0  # over every graded page, the injected cause among them when right
    # causes named that were not injected, most often named first, with how many pages named each
    extra: tuple[tuple[str, int], ...] = ()

    @property
    def share(self) -> float:
        return self.right / self.graded if self.graded else 0.0

    @property
    def precision(self) -> float | None:
        """Of the causes the runbooks named, the share that was injected: on-call chases the rest."""
        return self.right / self.causes_named if self.causes_named else None


def accuracy_by_alert(phases: Sequence[PhaseResult]) -> list[Accuracy]:
    rows: dict[str, list[Diagnosis]] = {}
    for phase in phases:
        for d in phase.diagnosis:
            rows.setdefault(f"{d.alert} ({d.severity})", []).append(d)
    return [accuracy_of(name, found) for name, found in sorted(rows.items())]


def accuracy_by_experiment(phases: Sequence[PhaseResult]) -> list[Accuracy]:
    return [accuracy_of(phase.name, phase.diagnosis) for phase in phases if phase.cause and phase.diagnosis]


def accuracy_of(name: str, found: Sequence[Diagnosis]) -> Accuracy:
    times = [d.seconds_to_cause for d in found if d.seconds_to_cause is not None]
    extra = Counter(named for d in found for named in d.named if named != d.cause)
    return Accuracy(
        name=name,
        cause=", ".join(dict.fromkeys(d.cause for d in found)),
        graded=len(found),
        right=sum(d.verdict == RIGHT for d in found),
        wrong=sum(d.verdict == WRONG for d in found),
        silent=sum(d.verdict == SILENT for d in found),
        median_seconds_to_cause=median(times) if times else None,
        causes_named=sum(len(d.named) for d in found),
        extra=tuple(extra.most_common()),
    )
