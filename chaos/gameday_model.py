"""What a game day found: the runner fills these, the report renders them, `report.json` is them.

Times are unix seconds. Ratios are fractions (0.9999 is 99.99%). Every phase, the baseline
included, ran under its own `nova load` (market-open shape), so each has exact client-side
figures from the load run and server-side figures from the services' own metrics.
"""

from __future__ import annotations

import types
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any, Union, get_args, get_origin, get_type_hints

from loadtests.audit import PaymentAudit
from loadtests.ledger_verification import LedgerVerification

BASELINE = "baseline"


@dataclass(frozen=True)
class Window:
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start

    def holds(self, moment: float) -> bool:
        return self.start <= moment <= self.end


@dataclass(frozen=True)
class Check:
    """One claim the game day makes about a phase, judged from evidence (`detail` says which)."""

    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class ProbeResult:
    """One steady-state probe as the Chaos Toolkit journal recorded it."""

    when: str  # before | after
    name: str
    met: bool
    value: Any


@dataclass(frozen=True)
class LoadFigures:
    """The phase's `nova load` run (client side: every attempt, and operations after retries)."""

    requests: int
    failures: int
    availability: float  # every attempt
    availability_after_retries: float  # operations, after the client's retries
    p99_ms: float
    gate_passed: bool
    statuses: dict[str, int]  # HTTP status (or "no answer") -> attempts
    audit: PaymentAudit | None  # loadtests' audit.json: acknowledged payments found, balances
    results_dir: str  # relative to the game-day folder
    # The open model (rate > 0): what the timetable offered and the generator achieved over the
    # load's own span, late sends, and the p99 from the scheduled send (coordinated-omission corrected).
    # A closed-model load reports what it sent as both rates.
    rate: float = 0.0
    offered_rps: float = 0.0
    achieved_rps: float = 0.0
    late_sends: int = 0
    p99_corrected_ms: float = 0.0


@dataclass(frozen=True)
class SLIFigures:
    """One SLO over one phase, from the services' metrics (server side)."""

    sloth_id: str  # payments-availability
    objective: float
    events: int
    bad_events: int
    sli: float | None  # good / events; None without traffic
    burn_rate: float | None  # (bad / events) / (1 - objective)
    budget_burned: float | None  # share of the period's error budget this phase spent, at that burn rate


@dataclass(frozen=True)
class AlertFiring:
    alert: str
    severity: str  # page | ticket
    sloth_id: str
    start: float
    end: float | None  # None: still firing when the game day ended
    delay_seconds: float | None  # start - fault start; None for a phase without a fault
    notified_at: float | None = None  # when Alertmanager delivered it to the game day's receiver


@dataclass(frozen=True)
class DeliveredPage:
    """One page as `nova pager serve` delivered it during the game day (its `jsonl:` delivery)."""

    alert: str  # the first alert of the page's group
    severity: str  # page | ticket
    delivered_at: float
    text: str  # the Markdown on-call read
    event: str = "trigger"  # trigger | resolve
    dedup_key: str = ""
    alerts: list[str] = field(default_factory=list)  # every alert the page details
    runbook: str = ""  # the first alert's runbook_url
    pagerduty: dict[str, Any] | None = None  # the Events API v2 event the pager posted for it
    seconds_after_fault: float | None = None  # delivered_at - the phase's fault start

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> DeliveredPage:
        """A line of the pager's `jsonl:` delivery (`alerts.pager.page.page_json` plus `delivered_at`)."""
        sections = document.get("alerts") or []
        first = sections[0] if sections else {}
        return cls(
            alert=str(first.get("alertname", "")),
            severity=str(document.get("severity", "")),
            delivered_at=float(document["delivered_at"]),
            text=str(document.get("text", "")),
            event=str(document.get("event", "trigger")),
            dedup_key=str(document.get("dedup_key", "")),
            alerts=[str(section.get("alertname", "")) for section in sections],
            runbook=str(first.get("runbook_url", "")),
        )


@dataclass(frozen=True)
class Diagnosis:
    """How one paged alert's runbook did against the cause the experiment injected (`chaos.drill`)."""

    alert: str
    severity: str  # the runbook's: page | ticket
    runbook: str  # the runbook file run (`nova runbooks run <alert>`)
    cause: str  # what the experiment injected
    verdict: str  # right (named the cause) | wrong (named others only) | silent (named nothing)
    named: list[str]  # every cause its diagnostics named
    seconds_to_cause: float | None  # the first page's delivery -> the first diagnostic naming the cause
    runbook_seconds: float  # how long `nova runbooks run` took
    steps: int  # diagnostics run
    findings: list[str]  # "<step title>: <causes>" for each step that named something
    output: str  # the run's JSON output, relative to the game-day folder
    paged_at: float = 0.0  # when the alert's first page in the phase was delivered


@dataclass
class PhaseResult:
    name: str  # "baseline" or the experiment's file stem
    title: str
    window: Window
    fault: Window | None  # when the fault was on (None for the baseline)
    status: str  # passed | deviated | failed | aborted
    reason: str
    hypothesis: list[ProbeResult] = field(default_factory=list)
    load: LoadFigures | None = None
    slis: list[SLIFigures] = field(default_factory=list)
    alerts: list[AlertFiring] = field(default_factory=list)  # alerts that began firing in this phase
    already_firing: list[str] = field(default_factory=list)  # alerts still firing from an earlier phase
    # Waited before the phase for these pages, its own to detect, to stop firing from an earlier phase.
    settled_seconds: float = 0.0
    settled_for: list[str] = field(default_factory=list)
    recovery_seconds: float | None = None  # fault end -> last failed request after it (0: none failed)
    ledger: LedgerVerification | None = None  # GET /v1/ledger/verify after the phase
    checks: list[Check] = field(default_factory=list)
    journal: str | None = None  # relative path of the Chaos Toolkit journal
    fault_kind: str | None = None  # in-app flag | network proxy | database | process (None: baseline)
    # Time to detect: per alert that fired ("<alert>/<severity>"), seconds from the fault's start to firing.
    detection: dict[str, float] = field(default_factory=dict)
    # Time to recover: seconds from the fault's end until the SLIs are back within objective for
    # good (client side, 1 s steps); None without a fault, or when they never were within the phase.
    recovery: float | None = None
    aborted: str | None = None  # why the guardrail (--abort-budget) stopped the experiment, if it did
    cause: str | None = None  # what the experiment injected, as it declares (`extensions` nova-drill)
    pages: list[DeliveredPage] = field(default_factory=list)  # what the pager delivered in this phase
    diagnosis: list[Diagnosis] = field(default_factory=list)  # per paged alert, its runbook graded
    pager_state: str | None = None  # the pager's dedup state at the phase's end (relative path)
    postmortem: str | None = None  # the draft, relative path (`postmortems/<phase>.md`)

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)


@dataclass
class SeriesPoint:
    """One step of the embedded scraper for one service (what the report plots)."""

    timestamp: float
    requests: int
    errors: int
    slow: int
    p99_ms: float
    cpu: float
    db_pool: float


@dataclass(frozen=True)
class LoadPlan:
    """The load a game day offered, and where the figure came from (never a peak it did not offer)."""

    rate: float  # requests/s every phase offered (0: the closed model)
    asked: float  # --rate as given
    capacity_rps: float | None = None  # measured capacity (calibration or --capacity)
    capacity_share: float | None = None
    capacity_source: str | None = None  # "calibration" or the capacity.json read
    spike_rps: float | None = None  # the spike phase's peak (full game day)
    note: str = ""


@dataclass
class GameDayResult:
    started: float
    ended: float
    quick: bool
    database: str  # sqlite | postgresql
    monitoring: str  # prometheus+alertmanager | prometheus | embedded
    machine: str
    phases: list[PhaseResult] = field(default_factory=list)
    series: dict[str, list[SeriesPoint]] = field(default_factory=dict)  # service -> steps
    step_seconds: float = 5.0
    interrupted: bool = False
    error: str | None = None  # why the game day stopped early, if it did
    load_plan: LoadPlan | None = None

    @property
    def passed(self) -> bool:
        return not self.interrupted and self.error is None and all(phase.passed for phase in self.phases)

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> GameDayResult:
        """report.json (`document()`) back as the objects it was written from."""
        return result_from_json(document)

    def document(self) -> dict[str, Any]:
        """report.json: everything above, with each phase's and the day's verdict spelled out."""
        document = asdict(self)
        document["passed"] = self.passed
        for phase, entry in zip(self.phases, document["phases"], strict=True):
            entry["passed"] = phase.passed
            if phase.ledger is not None:
                entry["ledger"] = phase.ledger.to_json()  # the service's answer, as it gave it
            if phase.load is not None and phase.load.audit is not None:
                entry["load"]["audit"] = phase.load.audit.to_json()  # audit.json's own layout, verdict included
        document["time_to_detect"] = {phase.name: phase.detection for phase in self.phases if phase.fault}
        document["time_to_recover"] = {phase.name: phase.recovery for phase in self.phases if phase.fault}
        return document


def result_from_json(document: dict[str, Any]) -> GameDayResult:
    """report.json back as a `GameDayResult` (what `document()` wrote; keys it does not know are skipped,
    fields it lacks take their defaults, so reports from older and newer game days both read)."""
    built = _build(GameDayResult, document)
    assert isinstance(built, GameDayResult)
    return built


# Documents of other packages inside report.json: each read back by its own typed home.
OWN_FORMATS: tuple[type[PaymentAudit] | type[LedgerVerification], ...] = (PaymentAudit, LedgerVerification)


def _build(kind: Any, value: Any) -> Any:
    """`value` (parsed JSON) as the type `kind`: dataclasses, lists, dicts and optionals, recursively."""
    if value is None:
        return None
    if kind in OWN_FORMATS:
        return kind.from_json(value)
    origin = get_origin(kind)
    if origin in (Union, types.UnionType):
        options = [option for option in get_args(kind) if option is not type(None)]
        return _build(options[0], value) if len(options) == 1 else value
    if origin is list:
        return [_build(get_args(kind)[0], item) for item in value]
    if origin is dict:
        return {key: _build(get_args(kind)[1], item) for key, item in value.items()}
    if isinstance(kind, type) and is_dataclass(kind):
        hints = get_type_hints(kind)
        known = {f.name for f in fields(kind) if f.init}
        return kind(**{name: _build(hints[name], item) for name, item in value.items() if name in known})
    return value
