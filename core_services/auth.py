"""Who is calling: the admin (operator) or a customer, from a bearer token.

Customer tokens are `nvt_<customer>_<nonce>_<mac>`: the MAC (keyed from the admin
token) lets either service reject a forged token without a database read, and the
payments service also keeps the token's SHA-256 so a token can be revoked. The
plain token is shown once, at creation, and never stored or logged. The nonce starts
with the token's issue time (`<ms in hex>.<random>`), under the MAC: revoking a
customer's tokens is one instant per customer ("issued before this"), which both
services can check without storing tokens.

A service calling another (portfolio paying through payments) has its own token,
`nvs_<service>_<mac>`: admin rights, but its own rate-limit bucket, so one busy
portfolio cannot starve the operator's calls.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from core_services.problems import Problem

_PREFIX = "nvt"
_SERVICE_PREFIX = "nvs"


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller; `customer_id` is None for the admin and for services.

    `issued_ms`: when a customer token was issued (0 for tokens older than the field).
    """

    customer_id: str | None
    service: str | None = None
    issued_ms: int = 0

    @property
    def is_admin(self) -> bool:
        return self.customer_id is None

    @property
    def scope(self) -> str:
        """The namespace of this caller's idempotency keys; a service acts as the admin."""
        return self.customer_id or "admin"

    @property
    def rate_bucket(self) -> str:
        """Whose share of the rate limit a request takes."""
        if self.service is not None:
            return f"service:{self.service}"
        return self.scope


ADMIN = Principal(customer_id=None)


class TokenAuthority:
    """Issues and checks tokens; built once per process from the admin token."""

    def __init__(self, admin_token: str) -> None:
        self._admin_token = admin_token.encode()
        self._mac_key = hmac.new(self._admin_token, b"nova customer token v1", hashlib.sha256).digest()

    def issue(self, customer_id: str, issued_ms: int | None = None) -> str:
        issued_ms = int(time.time() * 1000) if issued_ms is None else issued_ms
        nonce = f"{issued_ms:x}.{secrets.token_urlsafe(18).replace('_', '-')}"
        return f"{_PREFIX}_{customer_id}_{nonce}_{self._mac(customer_id, nonce)}"

    def service_token(self, service: str) -> str:
        """The token `service` calls the others with: derived from the admin token, so every process agrees."""
        return f"{_SERVICE_PREFIX}_{service}_{self._mac('service', service)}"

    def authenticate(self, token: str | None) -> tuple[Principal, str]:
        """The caller and the SHA-256 of its bearer token, or 401.

        The digest is what the payments service looks up to honour revocation.
        """
        if not token or not _is_printable_ascii(token):
            # compare_digest refuses non-ASCII text with a TypeError: such a token is simply wrong.
            raise Problem("unauthorized")
        if hmac.compare_digest(token.encode(), self._admin_token):
            return ADMIN, ""
        parts = token.split("_")
        if len(parts) == 3 and parts[0] == _SERVICE_PREFIX:
            if not hmac.compare_digest(parts[2], self._mac("service", parts[1])):
                raise Problem("unauthorized")
            return Principal(None, service=parts[1]), ""
        # customer ids themselves contain one underscore: cus_<id>
        if len(parts) != 5 or parts[0] != _PREFIX:
            raise Problem("unauthorized")
        customer_id, nonce, mac = f"{parts[1]}_{parts[2]}", parts[3], parts[4]
        if not hmac.compare_digest(mac, self._mac(customer_id, nonce)):
            raise Problem("unauthorized")
        return Principal(customer_id, issued_ms=_issued_ms(nonce)), token_digest(token)

    def _mac(self, customer_id: str, nonce: str) -> str:
        message = f"{customer_id}.{nonce}".encode()
        return hmac.new(self._mac_key, message, hashlib.sha256).hexdigest()[:32]


def _issued_ms(nonce: str) -> int:
    stamp, dot, _ = nonce.partition(".")
    try:
        return int(stamp, 16) if dot else 0
    except ValueError:
        return 0


def is_revoked(principal: Principal, revoked_before_ms: int | None) -> bool:
    """A customer token issued at or before its customer's revocation instant no longer works."""
    return revoked_before_ms is not None and principal.issued_ms <= revoked_before_ms


def _is_printable_ascii(token: str) -> bool:
    """Visible ASCII only (0x21-0x7e): what every token this authority issues is made of."""
    return token.isascii() and token.isprintable() and " " not in token


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise Problem("forbidden", "this call needs the admin token")


def require_customer(principal: Principal) -> str:
    if principal.customer_id is None:
        raise Problem("forbidden", "this call needs a customer token")
    return principal.customer_id
