"""Payments use cases: each one a single transaction that commits all of its writes or none."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from core_services import ids
from core_services.auth import Principal, TokenAuthority, is_revoked, require_admin, require_customer
from core_services.clock import utc_now
from core_services.database import LOCK_NOT_AVAILABLE, Database
from core_services.fingerprint import request_fingerprint
from core_services.idempotency import InFlightKeys
from core_services.payments import ledger_store as store
from core_services.payments.domain import (
    Account,
    LedgerRuleViolation,
    LedgerVerification,
    StoredResponse,
    check_currency,
    plan_transfer,
    replay,
    verify_ledger,
)
from core_services.payments.schema import MIGRATIONS, metadata
from core_services.problems import Problem

# The answer to give (status, body) and the money movement to write with it, if any.
Decision = tuple[int, dict[str, Any], "store.Posting | None"]
# Decides a request's answer inside its transaction; `lock` asks for its accounts row-locked.
Decide = Callable[[Connection, bool], Decision]
# A token's stored digest names its customer for good, so a worker keeps what it looked up
# for a minute. Revocation is checked apart, against this worker's copy of the revocations,
# refreshed in the background once it is _REVOCATIONS_FRESH_SECONDS old: a revocation
# reaches every worker within 1 s (DESIGN.md) for one query per worker per interval, and no
# request waits for that query. Requests go on with the old copy while it is refreshed, for at
# most _REVOCATIONS_REFRESH_GRACE_SECONDS; past that (a refresh that failed or hangs) a request
# reads the revocations itself. A slow database made the refreshing request the p99: two
# queries, where every other request has one.
_TOKEN_CACHE_SECONDS = 60.0
_REVOCATIONS_FRESH_SECONDS = 0.5
_REVOCATIONS_REFRESH_GRACE_SECONDS = 0.25
_MAX_KNOWN_TOKENS = 100_000


class IdempotentReplay(Exception):
    """Raised inside a write to leave the transaction and answer with a stored response."""

    def __init__(self, stored: StoredResponse) -> None:
        self.stored = stored


class DuplicateWon(Exception):
    """A concurrent duplicate stored its response first: undo this attempt and replay that one."""


class PaymentsService:
    def __init__(
        self, database: Database, tokens: TokenAuthority, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.db = database
        self.tokens = tokens
        self.in_flight = InFlightKeys()
        self._monotonic = monotonic
        # token digest -> (customer, trusted until)
        self._known_tokens: dict[str, tuple[str, float]] = {}
        # customer -> revocation instant (ms), as read from the database before `_revocations_until`
        self._revoked_before: dict[str, int] = {}
        self._revocations_until = 0.0
        # Until then a refresh of the revocations is under way: no other is started.
        self._refresh_claimed_until = 0.0

    def prepare(self) -> None:
        self.db.migrate(metadata, MIGRATIONS)

    # -- callers -----------------------------------------------------------------------------------

    def known_caller(self, token: str | None) -> Principal | None:
        """The caller if its token checks out without the database (admin, or seen recently).

        This is the payment path's check: a MAC, two dict lookups and a clock read.
        """
        principal, digest = self.tokens.authenticate(token)
        if principal.is_admin:
            return principal
        now = self._monotonic()
        known = self._known_tokens.get(digest)
        if known is None or known[1] <= now or not self._revocations_usable(now):
            return None
        return None if is_revoked(principal, self._revoked_before.get(known[0])) else principal

    def _revocations_usable(self, now: float) -> bool:
        """Fresh, or within the grace a background refresh has to replace them."""
        return now < self._revocations_until + _REVOCATIONS_REFRESH_GRACE_SECONDS

    def revocations_refresh_due(self) -> bool:
        """True once per freshness interval: the caller then runs `refresh_revocations`, off the request."""
        now = self._monotonic()
        if now < self._revocations_until or now < self._refresh_claimed_until:
            return False
        self._refresh_claimed_until = now + _REVOCATIONS_REFRESH_GRACE_SECONDS
        return True

    def refresh_revocations(self) -> None:
        """This worker's copy of the revocations, read again; fresh from when the read began."""
        started = self._monotonic()
        with self.db.read() as conn:
            stored = store.all_revocations(conn)
        # A revocation this worker made while the read ran stays: instants only ever move later.
        mine = self._revoked_before
        self._revoked_before = stored | {c: at for c, at in mine.items() if at > stored.get(c, 0)}
        self._revocations_until = started + _REVOCATIONS_FRESH_SECONDS

    def authenticate(self, token: str | None) -> Principal:
        """The caller, checking a customer token against the stored digests and revocations.

        Reads the database only for what is not known: a token not seen recently, or a
        revocation list that no background refresh kept usable.
        """
        principal, digest = self.tokens.authenticate(token)
        if principal.is_admin:
            return principal
        customer_id = principal.customer_id
        if customer_id is None:
            raise Problem("unauthorized")
        now = self._monotonic()
        known = self._known_tokens.get(digest)
        stale = not self._revocations_usable(now)
        unknown = known is None or known[1] <= now
        if stale or unknown:
            with self.db.read() as conn:
                if stale:
                    self._revoked_before = store.all_revocations(conn)
                    self._revocations_until = now + _REVOCATIONS_FRESH_SECONDS
                if unknown and store.customer_for_token(conn, digest) != customer_id:
                    raise Problem("unauthorized")
        if is_revoked(principal, self._revoked_before.get(customer_id)):
            raise Problem("unauthorized")
        if len(self._known_tokens) > _MAX_KNOWN_TOKENS:
            self._known_tokens.clear()
        self._known_tokens[digest] = (customer_id, now + _TOKEN_CACHE_SECONDS)
        return principal

    def revoke_tokens(self, principal: Principal, customer_id: str) -> None:
        """Every token the customer holds stops working: here at once, on every worker within 0.75 s."""
        require_admin(principal)
        now_ms = int(time.time() * 1000)
        with self.db.write() as conn:
            _check_customer(conn, customer_id)
            revoked_before_ms = max(now_ms, (store.revoked_before(conn, customer_id) or 0) + 1)
            store.revoke_tokens(conn, customer_id, revoked_before_ms)
        # This worker at once; the others when their copy of the revocations is next refreshed.
        self._revoked_before = {**self._revoked_before, customer_id: revoked_before_ms}

    def issue_token(self, principal: Principal, customer_id: str) -> dict[str, Any]:
        """A new token for the customer, issued after any revocation so that it works."""
        require_admin(principal)
        with self.db.write() as conn:
            _check_customer(conn, customer_id)
            revoked = store.revoked_before(conn, customer_id)
            issued_ms = max(int(time.time() * 1000), (revoked or 0) + 1)
            token = self.tokens.issue(customer_id, issued_ms)
            store.add_token(conn, customer_id, hashlib.sha256(token.encode()).hexdigest(), utc_now())
        return {"token": token}

    def revocations(self, principal: Principal) -> dict[str, Any]:
        """Each revoked customer's instant, for the other services to honour (portfolio polls it)."""
        require_admin(principal)
        with self.db.read() as conn:
            return {"revoked_before_ms": store.all_revocations(conn)}

    def create_customer(self, principal: Principal, name: str) -> dict[str, Any]:
        require_admin(principal)
        customer_id = ids.new_id("cus")
        token = self.tokens.issue(customer_id)
        with self.db.write() as conn:
            store.add_customer(conn, customer_id, name, hashlib.sha256(token.encode()).hexdigest(), utc_now())
        return {"id": customer_id, "name": name, "token": token}

    # -- accounts ----------------------------------------------------------------------------------

    def open_account(self, principal: Principal, currency: str) -> dict[str, Any]:
        customer_id = require_customer(principal)
        _check(check_currency, currency)
        with self.db.write() as conn:
            account = store.add_account(conn, ids.new_id("acc"), customer_id, currency, utc_now())
        return _account_json(account)

    def account(self, principal: Principal, account_id: str) -> dict[str, Any]:
        if not ids.is_well_formed(account_id):
            raise Problem("account_not_found")
        with self.db.read() as conn:
            return _account_json(_owned(principal, store.find_account(conn, account_id)))

    def entries(self, principal: Principal, account_id: str, cursor: str | None, limit: int) -> dict[str, Any]:
        before = _decode_cursor(cursor)
        if not ids.is_well_formed(account_id):
            raise Problem("account_not_found")
        with self.db.read() as conn:
            _owned(principal, store.find_account(conn, account_id))
            rows = store.account_entries(conn, account_id, before, limit + 1)
        page = rows[:limit]
        return {
            "data": [
                {
                    "id": row["id"],
                    "payment_id": row["payment_id"],
                    "amount_minor": row["amount_minor"],
                    "currency": row["currency"],
                    "created_at": row["created_at"],
                }
                for row in page
            ],
            "next_cursor": _encode_cursor(page[-1]["id"]) if len(rows) > limit else None,
        }

    # -- money movement ----------------------------------------------------------------------------

    def deposit(self, principal: Principal, key: str, body: dict[str, Any]) -> tuple[StoredResponse, bool]:
        require_admin(principal)

        def decide(conn: Connection, lock: bool) -> Decision:
            now = utc_now()
            target = store.find_account(conn, body["account_id"])
            if target is None or target.is_funding:
                raise LedgerRuleViolation("account_not_found", f"no account {body['account_id']}")
            funding = store.funding_account(conn, target.currency, now, lock=lock)
            read = store.read_accounts(conn, [funding.id, target.id], lock=lock)
            transfer = plan_transfer(read[funding.id], read[target.id], body["amount_minor"], target.currency)
            posting = store.Posting(ids.new_id("pay"), "deposit", transfer, None, now)
            return 201, posting.deposit_json(), posting

        return self._idempotent(principal, key, "deposit", body, decide)

    def pay(self, principal: Principal, key: str, body: dict[str, Any]) -> tuple[StoredResponse, bool]:
        def decide(conn: Connection, lock: bool) -> Decision:
            read = store.read_accounts(conn, [body["from_account"], body["to_account"]], lock=lock)
            source = _owned(principal, read.get(body["from_account"]))
            target = read.get(body["to_account"])
            if target is None or target.is_funding:
                raise LedgerRuleViolation("account_not_found", f"no account {body['to_account']}")
            transfer = plan_transfer(source, target, body["amount_minor"], body["currency"])
            posting = store.Posting(ids.new_id("pay"), "payment", transfer, body.get("reference"), utc_now())
            return 201, posting.payment_json(), posting

        return self._idempotent(principal, key, "payment", body, decide)

    def payment(self, principal: Principal, payment_id: str) -> dict[str, Any]:
        if not ids.is_well_formed(payment_id):
            raise Problem("payment_not_found")
        with self.db.read() as conn:
            row = store.find_payment(conn, payment_id)
            if row is None:
                raise Problem("payment_not_found")
            if not principal.is_admin:
                owners = {store.find_account(conn, row["from_account"]), store.find_account(conn, row["to_account"])}
                if not any(account and account.customer_id == principal.customer_id for account in owners):
                    raise Problem("payment_not_found")
        return {
            "id": row["id"],
            "kind": row["kind"],
            "status": row["status"],
            "from_account": row["from_account"],
            "to_account": row["to_account"],
            "amount_minor": row["amount_minor"],
            "currency": row["currency"],
            "reference": row["reference"],
            "created_at": row["created_at"],
        }

    def verify(self, principal: Principal) -> LedgerVerification:
        require_admin(principal)
        with self.db.read(snapshot=True) as conn:
            totals = store.ledger_totals(conn)
        return verify_ledger(**totals)

    # -- idempotency -------------------------------------------------------------------------------

    def _idempotent(
        self,
        principal: Principal,
        key: str,
        operation: str,
        body: dict[str, Any],
        decide: Decide,
    ) -> tuple[StoredResponse, bool]:
        """Run `decide` once per (caller, key) and write its posting with the answer; every
        retry gets the first answer.

        Rule violations are answers too, and are stored: a retry of a payment refused
        for insufficient funds is refused again, as Stripe does. Server errors are not
        stored: their transaction rolled back, so a retry may run afresh.

        The accounts are first read without row locks, so that a hot account (the house
        account every order pays or is paid by) is locked only for the write and the
        COMMIT. If a balance moved in between, the write says so and the request is
        decided again, this time with the accounts locked from the read on.
        """
        fingerprint = request_fingerprint(operation, body)
        with self.in_flight.claim(principal.scope, key):
            try:
                try:
                    return self._decide_and_record(principal.scope, key, fingerprint, decide, lock=False)
                except store.BalancesMoved:
                    return self._decide_and_record(principal.scope, key, fingerprint, decide, lock=True)
            except IdempotentReplay as replayed:
                return _check(replay, replayed.stored, fingerprint), True
            except DuplicateWon:
                # this attempt's writes are rolled back; the duplicate's answer stands
                with self.db.read() as conn:
                    first = store.stored_response(conn, principal.scope, key)
                assert first is not None
                return _check(replay, first, fingerprint), True

    def _decide_and_record(
        self, scope: str, key: str, fingerprint: str, decide: Decide, *, lock: bool
    ) -> tuple[StoredResponse, bool]:
        """One transaction: the stored answer if there is one, else `decide` and write its outcome."""
        with self.db.write() as conn:
            stored = _queue_and_look_up(conn, scope, key)
            if stored is not None:
                raise IdempotentReplay(stored)
            status, answer, posting = _decision(decide, conn, lock)
            response = StoredResponse(fingerprint, status, answer)
            if not store.record_outcome(conn, scope, key, response, posting):
                raise DuplicateWon()
            return response, False


def _decision(decide: Decide, conn: Connection, lock: bool) -> Decision:
    try:
        return decide(conn, lock)
    except LedgerRuleViolation as violation:
        problem = Problem(violation.code, violation.detail)
    except Problem as raised:
        if raised.status >= 500:
            raise
        problem = raised
    return problem.status, problem.body(), None


def _check(rule: Callable[..., Any], *args: Any) -> Any:
    try:
        return rule(*args)
    except LedgerRuleViolation as violation:
        raise Problem(violation.code, violation.detail) from None


def _check_customer(conn: Connection, customer_id: str) -> None:
    if not ids.is_well_formed(customer_id) or not store.customer_exists(conn, customer_id):
        raise Problem("not_found", "no such customer")


def _owned(principal: Principal, account: Account | None) -> Account:
    """The account if the caller may use it; others' accounts are indistinguishable from missing ones."""
    if (
        account is None
        or account.is_funding
        or not (principal.is_admin or account.customer_id == principal.customer_id)
    ):
        raise Problem("account_not_found")
    return account


def _account_json(account: Account) -> dict[str, Any]:
    return {"id": account.id, "currency": account.currency, "balance_minor": account.balance_minor}


def _queue_and_look_up(conn: Connection, scope: str, key: str) -> StoredResponse | None:
    """The stored answer for this key, after any in-flight duplicate (bounded by the lock timeout)."""
    try:
        return store.stored_response(conn, scope, key, queue=conn.dialect.name == "postgresql")
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE:
            raise Problem("request_in_progress", headers={"Retry-After": "1"}) from None
        raise


def _encode_cursor(entry_id: int) -> str:
    return base64.urlsafe_b64encode(str(entry_id).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        entry_id = int(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
    except (ValueError, UnicodeDecodeError):
        entry_id = 0
    if not 0 < entry_id < 2**63:
        raise Problem("validation_error", "cursor is not one this API returned")
    return entry_id
