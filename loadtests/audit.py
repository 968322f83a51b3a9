"""The per-payment audit of a load run: no acknowledged payment lost, none duplicated.

The gate says how often the platform answered; this says whether what it acknowledged is
true. In every Locust process that runs users, paying customers keep a `PaymentBook`:

* each account of a `PayingCustomer` with its sign-up deposit (acknowledged at the funding
  amount: the deposit's Idempotency-Key is fixed for the sign-up, so it lands once);
* each payment, registered **in flight** before it is sent (its request body: from, to,
  amount; the Idempotency-Key every attempt carries; and the payer's token, which stays in
  this process's memory: it is never written to a file, a log or a message; nor is the key,
  which is not a secret but has no place in `audit.json`), then settled by its final answer
  after retries (`outcome_of`):
  - 201 with a payment id: **acknowledged**;
  - a definite refusal, a 4xx that the service decided (`insufficient_funds`, a replayed
    refusal): **refused**, no money moved. A 409 (`request_in_progress`) or a 429 after an
    earlier attempt that got no answer or a 5xx is not definite (that earlier attempt may
    still land), so it is unknown;
  - no answer or a 5xx after the last retry, or anything else: **unknown outcome**;
  - still in flight when the audit runs (the user was stopped, its greenlet killed, mid
    request): **unknown outcome** too.

When the test stops and every user of the process has stopped, the process audits through
the public API with its own HTTP client (so the audit's requests are not load samples).

First it **reconciles** every unknown outcome, as a client does with an order whose payment
outcome it does not know (DESIGN.md: reconciled, never lost): `POST /v1/payments` again with
the payment's Idempotency-Key, the same body and the payer's token. The API answers a payment
it already made with its first answer (`Idempotent-Replayed: true`), makes one that never ran,
and answers 409 `request_in_progress` to one still running. Each is sent up to
`len(RECONCILE_PAUSES) + 1` times while the answer is no answer, a 5xx, a 409 or a 429
(pausing 0.2, 0.5, 1 and 2 s, longer if Retry-After asks, up to 2 s), 8 at a time, and all of
it within `RECONCILE_TIMEOUT_SECONDS` (15 s) even if the service stays down. A 201 with an
id makes it **acknowledged** (`payments_reconciled`; `payments_reconciled_replayed` of them
were replays, the others were made by the reconciliation itself), another 4xx **refused**,
anything else leaves it unknown (`payments_unknown` counts those left). Unknown outcomes are
kept for this up to `MAX_RECONCILED` per process; beyond that they stay unknown. Then it
verifies, the reconciled payments counted as acknowledged (the lookups have
`AUDIT_TIMEOUT_SECONDS` of their own):

a. every acknowledged payment (up to `MAX_PAYMENT_LOOKUPS` per process; beyond that a uniform
   random sample, `payments_looked_up`, while (b) still covers all of them in aggregate):
   `GET /v1/payments/{id}` with the payer's token must be 200 with the same from_account,
   to_account and amount_minor; otherwise it is **lost**;
b. every paying customer's account that no payment whose outcome is still unknown after the
   reconciliation touched (as payer or payee): `GET /v1/accounts/{id}` with its owner's token, `balance_minor` must be
   `deposit - acknowledged outgoing + acknowledged incoming`. A difference is a payment lost
   or applied twice.

Which accounts (b) covers: only paying customers' accounts, because every movement of theirs
is recorded here. Their money only moves by their sign-up deposit, their own payments, and
payments from paying customers of the same process (the payees list is per process, and only
paying customers pay). Traders' accounts also move cash through orders (the portfolio service
pays the house and is paid by it), which this book does not see, and viewers' accounts are not
registered; payments *to* them are still checked by (a) and in their payers' balances.

A lookup that gets no answer or a 5xx is tried again (`RetryPolicy`); if it never gets one,
or an account lookup is refused, it is counted in `lookups_failed`: nothing is claimed about
it, and the audit does not pass. `passed` means no lost payment, no balance mismatch, no
failed lookup and no process whose audit is missing.

No Locust import here: the arithmetic is tested as plain code; `run_audit` is what the
Locust processes call (loadtests/recording.py), with gevent greenlets for concurrency.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from loadtests.samples import CONNECTION_FAILED
from loadtests.traffic import (
    ACCOUNT,
    PAY,
    PAYMENT,
    RetryPolicy,
    new_trace_id,
    retry_after_seconds,
    should_retry,
    trace_headers,
)

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("nova.load")

AUDIT_FILE = "audit.json"
MAX_LOST_LISTED = 100
AUDIT_TIMEOUT_SECONDS = 20.0  # the lookups of one process; those not made by then count as failed
RECONCILE_TIMEOUT_SECONDS = 15.0  # the reconciliation of one process, before the lookups; then what is left is unknown
RECONCILE_PAUSES = (0.2, 0.5, 1.0, 2.0)  # before each reconciliation attempt after the first
MAX_RETRY_AFTER_SECONDS = 2.0
# Unknown outcomes kept to reconcile, per process: a few per user at most in a run with an outage.
MAX_RECONCILED = 2_000
AUDIT_CONCURRENCY = 8
# Acknowledged payments looked up one by one, per process: all of them up to this many (about 7 s
# of lookups on a busy 2-CPU machine), a uniform random sample beyond (a soak run makes millions).
# Every acknowledged payment moves its payer's balance, and every payer's balance is checked (b),
# so the lookups are a sample that says which payment went wrong; a few hundred keep the audit of
# a run at the case study's peak to a second or two instead of minutes on a busy machine.
MAX_PAYMENT_LOOKUPS = 300
LOOKUP_TIMEOUT_SECONDS = 5.0

# lookup(path, token) -> (HTTP status or CONNECTION_FAILED, the JSON object answered)
Lookup = Callable[[str, str], tuple[int, dict[str, Any]]]
Mapper = Callable[[Callable[[Any], Any], Iterable[Any]], Iterator[Any]]


class Reply(NamedTuple):
    """The answer to one `POST /v1/payments` of the reconciliation."""

    status: int  # or CONNECTION_FAILED
    body: dict[str, Any]
    replayed: bool = False  # `Idempotent-Replayed: true`: the payment had been made before
    retry_after: str | None = None


class Post(Protocol):
    """Send one payment request: the payer's token, its Idempotency-Key and body, a trace, a timeout."""

    def __call__(self, token: str, key: str, body: dict[str, Any], trace_id: str, timeout: float, /) -> Reply: ...


class Outcome(StrEnum):
    IN_FLIGHT = "in flight"
    ACKNOWLEDGED = "acknowledged"
    REFUSED = "refused"
    UNKNOWN = "unknown"


def outcome_of(status: int, attempts: int = 1, payment_id: str | None = None) -> Outcome:
    """What a payment's final answer (after `attempts` attempts) says happened; see the module docstring."""
    if status == 201 and payment_id:
        return Outcome.ACKNOWLEDGED
    if 400 <= status < 500 and (attempts == 1 or status not in (409, 429)):
        return Outcome.REFUSED
    return Outcome.UNKNOWN


@dataclass(eq=False, slots=True)
class PaymentRecord:
    from_account: str
    to_account: str
    amount_minor: int
    token: str = field(repr=False)  # the payer's; memory only
    key: str = field(repr=False)  # the Idempotency-Key it was sent with (memory only, as the body)
    body: dict[str, Any] = field(repr=False)  # the request body it was sent with
    outcome: Outcome = Outcome.IN_FLIGHT
    payment_id: str | None = None


@dataclass(slots=True)
class AuditedAccount:
    token: str = field(repr=False)  # the owner's; memory only
    funded_minor: int


class PaymentBook:
    """This process's paying customers' accounts and what their payments did (memory only).

    Bounded however long the run: payments in flight are kept until settled; settled ones only
    change counts, each account's net acknowledged movement, and the set of accounts an unknown
    outcome touched. Acknowledged payments are kept for lookup up to `lookups_kept`; beyond
    that a uniform random sample of them (reservoir sampling) is, and the balance check still
    covers every one of them in aggregate. Unknown outcomes are kept to be reconciled up to
    `unknown_kept`; beyond that only the accounts they touched are.
    """

    def __init__(
        self,
        lookups_kept: int = MAX_PAYMENT_LOOKUPS,
        rng: random.Random | None = None,
        unknown_kept: int = MAX_RECONCILED,
    ) -> None:
        self.lookups_kept = lookups_kept
        self.rng = rng or random.Random()
        self.unknown_kept = unknown_kept
        self.accounts: dict[str, AuditedAccount] = {}
        self.in_flight: set[PaymentRecord] = set()
        self.acknowledged = 0
        self.refused = 0
        self.unknown = 0
        self.reconciled = 0  # unknown outcomes the reconciliation found acknowledged
        self.reconciled_replayed = 0  # of them, those the API answered as replays (made before)
        self.moved: dict[str, int] = defaultdict(int)  # account -> acknowledged incoming - outgoing
        self.touched: set[str] = set()  # accounts an unknown outcome not kept moved money from or to
        self.unresolved: list[PaymentRecord] = []  # unknown outcomes kept to be reconciled
        self.to_look_up: list[PaymentRecord] = []

    def open_account(self, account_id: str, token: str, funded_minor: int) -> None:
        """A paying customer's account, with its acknowledged sign-up deposit."""
        self.accounts[account_id] = AuditedAccount(token, funded_minor)

    def sending(self, token: str, key: str, body: dict[str, Any]) -> PaymentRecord:
        """Register a payment (`POST /v1/payments` with this Idempotency-Key and body) before it is sent.

        In flight until `settle` is called.
        """
        body = dict(body)
        record = PaymentRecord(body["from_account"], body["to_account"], body["amount_minor"], token, key, body)
        self.in_flight.add(record)
        return record

    def settle(self, record: PaymentRecord, status: int, attempts: int, payment_id: str | None) -> None:
        """The payment's final answer, after retries."""
        self.in_flight.discard(record)
        self._count(record, outcome_of(status, attempts, payment_id), payment_id)

    def take_unresolved(self) -> list[PaymentRecord]:
        """The payments to reconcile (those in flight and the unknown outcomes kept), out of the book's counts."""
        records = [*self.in_flight, *self.unresolved]
        self.unknown -= len(self.unresolved)
        self.in_flight.clear()
        self.unresolved.clear()
        return records

    def reconciled_by(self, record: PaymentRecord, reply: Reply) -> None:
        """A payment taken by `take_unresolved`, settled by the reconciliation's last answer."""
        payment_id = reply.body.get("id")
        payment_id = payment_id if isinstance(payment_id, str) else None
        # Never a first attempt: a 409 or 429 may hide the original still running.
        outcome = outcome_of(reply.status, 2, payment_id)
        self._count(record, outcome, payment_id)
        if outcome == Outcome.ACKNOWLEDGED:
            self.reconciled += 1
            self.reconciled_replayed += int(reply.replayed)

    def _count(self, record: PaymentRecord, outcome: Outcome, payment_id: str | None) -> None:
        record.outcome = outcome
        if record.outcome == Outcome.REFUSED:
            self.refused += 1
        elif record.outcome == Outcome.UNKNOWN:
            self.unknown += 1
            if len(self.unresolved) < self.unknown_kept:
                self.unresolved.append(record)
            else:
                self.touched.update((record.from_account, record.to_account))
        else:
            record.payment_id = payment_id
            self.acknowledged += 1
            self.moved[record.from_account] -= record.amount_minor
            self.moved[record.to_account] += record.amount_minor
            if len(self.to_look_up) < self.lookups_kept:
                self.to_look_up.append(record)
            elif (slot := self.rng.randrange(self.acknowledged)) < self.lookups_kept:
                self.to_look_up[slot] = record


BOOK = PaymentBook()  # this process's book (like the payees, one per Locust process)


@dataclass(frozen=True)
class BalanceCheck:
    account_id: str
    token: str = field(repr=False)
    expected_minor: int


@dataclass(frozen=True)
class AuditPlan:
    """What the audit looks up, worked out from the book alone."""

    to_look_up: list[PaymentRecord]
    balances: list[BalanceCheck]
    acknowledged: int
    unknown: int
    refused: int
    accounts_skipped: int
    reconciled: int = 0
    reconciled_replayed: int = 0


def plan_audit(book: PaymentBook) -> AuditPlan:
    """The acknowledged payments to find, and the expected balance of every account no unknown outcome touched.

    Unknown outcomes, and payments still in flight (their user was stopped mid-request), touch
    the accounts they name.
    """
    touched = book.touched | {
        account
        for record in (*book.in_flight, *book.unresolved)
        for account in (record.from_account, record.to_account)
    }
    checks = [
        BalanceCheck(account_id, account.token, account.funded_minor + book.moved.get(account_id, 0))
        for account_id, account in book.accounts.items()
        if account_id not in touched
    ]
    return AuditPlan(
        list(book.to_look_up),
        checks,
        book.acknowledged,
        book.unknown + len(book.in_flight),
        book.refused,
        len(book.accounts) - len(checks),
        book.reconciled,
        book.reconciled_replayed,
    )


def indefinite(status: int) -> bool:
    """An answer that says nothing yet about a payment: none, a 5xx, a 409 (still running) or a 429."""
    return should_retry(status) or status in (409, 429)


def replay_payment(
    record: PaymentRecord, post: Post, deadline: float, sleep: Callable[[float], None] = time.sleep
) -> Reply:
    """The payment sent again as it was first sent, until a definite answer, the last attempt or `deadline`.

    One trace for all the attempts; a pause that would end past `deadline` is not taken, and no
    request waits past it. No attempt made: `CONNECTION_FAILED`.
    """
    trace_id = new_trace_id()
    reply = Reply(CONNECTION_FAILED, {})
    for pause in (0.0, *RECONCILE_PAUSES):
        if pause:
            asked = retry_after_seconds(reply.retry_after)
            pause = max(pause, min(asked, MAX_RETRY_AFTER_SECONDS)) if asked is not None else pause
            if time.monotonic() + pause >= deadline:
                break
            sleep(pause)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        reply = post(record.token, record.key, record.body, trace_id, min(LOOKUP_TIMEOUT_SECONDS, remaining))
        if not indefinite(reply.status):
            break
    return reply


def reconcile(
    book: PaymentBook,
    post: Post,
    mapper: Mapper = map,
    sleep: Callable[[float], None] = time.sleep,
    timeout: float = RECONCILE_TIMEOUT_SECONDS,
) -> None:
    """Send every unknown outcome (and payment left in flight) again through `post`; settle each by its answer.

    See the module docstring. The book's counts then say what the reconciliation found.
    """
    deadline = time.monotonic() + timeout

    def replay(record: PaymentRecord) -> tuple[PaymentRecord, Reply]:
        return record, replay_payment(record, post, deadline, sleep)

    for record, reply in list(mapper(replay, book.take_unresolved())):
        book.reconciled_by(record, reply)


class _Found(NamedTuple):
    kind: str  # "confirmed", "lost", "failed", "balance"
    subject: str
    actual_minor: int = 0
    expected_minor: int = 0


def audit(book: PaymentBook, lookup: Lookup, mapper: Mapper = map) -> PaymentAudit:
    """Audit the book through `lookup`; the process's audit document (`audit.json`'s shape).

    `mapper` runs the lookups (`map` in order; a gevent pool's `imap_unordered` concurrently).
    Unknown outcomes are reconciled (`reconcile`) before, if they are to be.
    """
    plan = plan_audit(book)

    def find_payment(record: PaymentRecord) -> _Found:
        assert record.payment_id is not None
        status, body = lookup(PAYMENT.path(id=record.payment_id), record.token)
        if status == CONNECTION_FAILED or status >= 500:
            return _Found("failed", record.payment_id)
        same = status == 200 and (
            body.get("from_account") == record.from_account
            and body.get("to_account") == record.to_account
            and body.get("amount_minor") == record.amount_minor
        )
        return _Found("confirmed" if same else "lost", record.payment_id)

    def check_balance(check: BalanceCheck) -> _Found:
        status, body = lookup(ACCOUNT.path(id=check.account_id), check.token)
        balance = body.get("balance_minor")
        if status != 200 or not isinstance(balance, int):
            return _Found("failed", check.account_id)
        return _Found("balance", check.account_id, balance, check.expected_minor)

    found = [*mapper(find_payment, plan.to_look_up), *mapper(check_balance, plan.balances)]
    lost = sorted(item.subject for item in found if item.kind == "lost")
    mismatches = [
        BalanceMismatch(item.subject, item.expected_minor, item.actual_minor)
        for item in sorted(found)
        if item.kind == "balance" and item.actual_minor != item.expected_minor
    ]
    return PaymentAudit(
        payments_acknowledged=plan.acknowledged,
        payments_looked_up=len(plan.to_look_up),
        payments_confirmed=sum(1 for item in found if item.kind == "confirmed"),
        payments_unknown=plan.unknown,
        payments_reconciled=plan.reconciled,
        payments_reconciled_replayed=plan.reconciled_replayed,
        payments_refused=plan.refused,
        payments_lost=len(lost),
        lost=lost[:MAX_LOST_LISTED],
        accounts_checked=sum(1 for item in found if item.kind == "balance"),
        accounts_skipped=plan.accounts_skipped,
        balance_mismatches=mismatches,
        lookups_failed=sum(1 for item in found if item.kind == "failed"),
        processes=1,
        processes_missing=0,
    )


@dataclass(frozen=True)
class BalanceMismatch:
    """An audited account whose balance is not what the payments acknowledged make it."""

    account: str
    expected_minor: int
    actual_minor: int


@dataclass(frozen=True)
class PaymentAudit:
    """`audit.json`: its one typed home (`to_json`/`from_json`; `read_audit`/`write_audit`).

    A process's audit (`audit`), several merged (`merge_audits`), the document a Locust worker
    sends its master, and the `audit` of `summary.json` are all this. `passed`: no payment lost,
    no balance wrong, no lookup unanswered, no process's audit missing.
    """

    payments_acknowledged: int = 0
    payments_looked_up: int = 0  # every acknowledged payment up to MAX_PAYMENT_LOOKUPS, a sample beyond
    payments_confirmed: int = 0
    payments_unknown: int = 0
    payments_reconciled: int = 0
    payments_reconciled_replayed: int = 0
    payments_refused: int = 0
    payments_lost: int = 0
    lost: list[str] = field(default_factory=list)  # the first MAX_LOST_LISTED lost payment ids
    accounts_checked: int = 0
    accounts_skipped: int = 0
    balance_mismatches: list[BalanceMismatch] = field(default_factory=list)
    lookups_failed: int = 0
    processes: int = 1
    processes_missing: int = 0

    @property
    def passed(self) -> bool:
        return not (self.payments_lost or self.balance_mismatches or self.lookups_failed or self.processes_missing)

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {name: getattr(self, name) for name in AUDIT_KEYS}
        document["lost"] = list(self.lost)
        document["balance_mismatches"] = [asdict(row) for row in self.balance_mismatches]
        return {**document, "passed": self.passed}

    @classmethod
    def from_json(cls, document: Any) -> PaymentAudit:
        """The audit from its JSON document; ValueError if it is not one.

        Counts it lacks are 0 (`payments_looked_up`: every acknowledged payment, as before sampling).
        """
        if not isinstance(document, Mapping):
            raise ValueError(f"a payment audit is an object, not {type(document).__name__}")
        counts = {name: document.get(name, 0) for name in COUNTS}
        counts["payments_looked_up"] = document.get("payments_looked_up", counts["payments_acknowledged"])
        counts["processes"] = document.get("processes", 1)
        if not all(isinstance(value, int) and not isinstance(value, bool) for value in counts.values()):
            raise ValueError("a payment audit's counts are integers")
        lost = document.get("lost") or []
        rows = document.get("balance_mismatches") or []
        if not isinstance(lost, list) or not isinstance(rows, list):
            raise ValueError("a payment audit's 'lost' and 'balance_mismatches' are lists")
        try:
            mismatches = [
                BalanceMismatch(str(row["account"]), int(row["expected_minor"]), int(row["actual_minor"]))
                for row in rows
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"a balance mismatch is {{account, expected_minor, actual_minor}} ({exc!r})") from None
        return cls(**counts, lost=[str(payment) for payment in lost], balance_mismatches=mismatches)

    def breach(self) -> str | None:
        """What a failed audit found, in one phrase (as the gate's breaches); None if it passed."""
        if self.passed:
            return None
        found = []
        if self.payments_lost:
            found.append(f"{self.payments_lost} of {self.payments_looked_up} acknowledged payments lost")
        if self.balance_mismatches:
            found.append(f"{len(self.balance_mismatches)} of {self.accounts_checked} account balances wrong")
        if self.lookups_failed:
            found.append(f"{self.lookups_failed} audit lookups unanswered")
        if self.processes_missing:
            found.append(f"no audit from {self.processes_missing} Locust process(es)")
        return "payment audit: " + (", ".join(found) or "failed")

    def summary_line(self) -> str:
        """`audit: 812 acknowledged payments all found; 40 accounts balance (0 skipped); 2 unknown outcome, 3 refused`.

        Followed by `, 13 unknown outcomes reconciled (9 replayed)` when the reconciliation settled some.
        """
        acknowledged, looked_up, confirmed = (
            self.payments_acknowledged,
            self.payments_looked_up,
            self.payments_confirmed,
        )
        found = (
            f"{acknowledged} acknowledged payments all found"
            if confirmed == looked_up == acknowledged
            else f"{confirmed} of {looked_up} acknowledged payments found"
            + (f" (a sample of {acknowledged})" if looked_up < acknowledged else "")
        )
        checked, wrong = self.accounts_checked, len(self.balance_mismatches)
        balances = f"{checked} accounts balance" if not wrong else f"{wrong} of {checked} account balances wrong"
        reconciled = self.payments_reconciled
        return (
            f"audit: {found}; {balances} ({self.accounts_skipped} skipped); "
            f"{self.payments_unknown} unknown outcome, {self.payments_refused} refused"
            + (
                f", {reconciled} unknown outcomes reconciled ({self.payments_reconciled_replayed} replayed)"
                if reconciled
                else ""
            )
        )


AUDIT_KEYS = tuple(name for name in PaymentAudit.__dataclass_fields__)
# Everything but the two lists is a count, summed when processes' audits are merged.
LISTED = ("lost", "balance_mismatches")
COUNTS = tuple(key for key in AUDIT_KEYS if key not in LISTED)


def merge_audits(audits: Iterable[PaymentAudit], missing: int = 0) -> PaymentAudit:
    """One audit from the audits of several processes; `missing`: processes that sent none."""
    parts = list(audits)
    counts = {name: sum(int(getattr(part, name)) for part in parts) for name in COUNTS}
    counts["processes_missing"] += missing
    return PaymentAudit(
        **counts,
        lost=sorted(payment for part in parts for payment in part.lost)[:MAX_LOST_LISTED],
        balance_mismatches=[row for part in parts for row in part.balance_mismatches],
    )


def write_audit(folder: Path, audit: PaymentAudit) -> Path:
    path = folder / AUDIT_FILE
    partial = path.with_name(AUDIT_FILE + ".partial")
    partial.write_text(json.dumps(audit.to_json(), indent=2) + "\n")
    partial.replace(path)
    return path


def read_audit(folder: Path) -> PaymentAudit | None:
    """`audit.json` of a results folder; None if there is none (or it is not an audit)."""
    try:
        document = json.loads((folder / AUDIT_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(document, dict) or not isinstance(document.get("passed"), bool):
        return None
    try:
        return PaymentAudit.from_json(document)
    except ValueError:
        return None


def breach(audit: PaymentAudit | None) -> str | None:
    """What a failed audit found, in one phrase (as the gate's breaches); None if it passed or there is none."""
    return audit.breach() if audit is not None else None


def summary_line(audit: PaymentAudit) -> str:
    return audit.summary_line()


def run_audit(
    book: PaymentBook,
    payments_url: str,
    timeout: float = AUDIT_TIMEOUT_SECONDS,
    reconcile_timeout: float = RECONCILE_TIMEOUT_SECONDS,
    transport: httpx.BaseTransport | None = None,
) -> PaymentAudit:
    """Reconcile then audit `book` against the payments service at `payments_url`, in a gevent-patched Locust process.

    Its own httpx clients (not Locust's, so nothing here is a load sample): `AUDIT_CONCURRENCY`
    greenlets, each request borrowing one of as many single-connection clients (one shared pool
    costs twice the CPU under gevent, and the audit shares the machine with the services).
    The reconciliation takes at most `reconcile_timeout`; then the lookups, retried on no answer
    or a 5xx, have `timeout`: those not made by then count as failed. Like every load-test
    request they are traced and marked synthetic (`traffic.trace_headers`; the attempts of one
    lookup or one reconciled payment share a trace), so the services never count them as
    customers'. Tokens go only into the Authorization header of these requests, Idempotency-Keys
    only into their Idempotency-Key header. `transport` replaces the network (tests).
    """
    import gevent.pool  # type: ignore[import-untyped]  # only ever in a Locust process
    import gevent.queue  # type: ignore[import-untyped]
    import httpx

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request otherwise
    retry = RetryPolicy()
    clients = [
        httpx.Client(
            base_url=payments_url.rstrip("/"),
            timeout=LOOKUP_TIMEOUT_SECONDS,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            transport=transport,
        )
        for _ in range(AUDIT_CONCURRENCY)
    ]
    idle = gevent.queue.Queue(items=clients)

    def send(
        method: str,
        path: str,
        headers: dict[str, str],
        body: dict[str, Any] | None = None,
        seconds: float = LOOKUP_TIMEOUT_SECONDS,
    ) -> tuple[int, dict[str, Any], httpx.Headers]:
        client = idle.get()
        try:
            response = client.request(method, path, headers=headers, json=body, timeout=seconds)
        except httpx.HTTPError:
            return CONNECTION_FAILED, {}, httpx.Headers()
        finally:
            idle.put(client)
        try:
            decoded = response.json()
        except ValueError:
            decoded = {}
        return response.status_code, decoded if isinstance(decoded, dict) else {}, response.headers

    def post(token: str, key: str, body: dict[str, Any], trace_id: str, seconds: float) -> Reply:
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": key, **trace_headers(trace_id)}
        status, answer, answered = send(PAY.method, PAY.path(), headers, body, seconds)
        replayed = answered.get("Idempotent-Replayed", "").lower() == "true"
        return Reply(status, answer, replayed, answered.get("Retry-After"))

    deadline = 0.0  # set once the reconciliation is over

    def lookup(path: str, token: str) -> tuple[int, dict[str, Any]]:
        status: int = CONNECTION_FAILED
        body: dict[str, Any] = {}
        trace_id = new_trace_id()
        for attempt in retry.attempts():
            if time.monotonic() > deadline:
                break
            headers = {"Authorization": f"Bearer {token}", **trace_headers(trace_id)}
            status, body, answered = send("GET", path, headers)
            if not should_retry(status) or attempt > retry.retries:
                break
            time.sleep(retry.pause(attempt, answered.get("Retry-After")))
        return status, body

    try:
        pool = gevent.pool.Pool(AUDIT_CONCURRENCY)
        reconcile(book, post, pool.imap_unordered, timeout=reconcile_timeout)
        deadline = time.monotonic() + timeout
        return audit(book, lookup, pool.imap_unordered)
    finally:
        for client in clients:
            client.close()
