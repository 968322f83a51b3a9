"""RFC 9457 problem details: the one shape every error of both services takes.

Each error has a stable machine `code` (clients branch on it) beside the human `title`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from core_services.telemetry import record_problem

PROBLEM_MEDIA_TYPE = "application/problem+json"

TITLES: dict[str, tuple[int, str]] = {
    "malformed_json": (400, "Request body is not valid JSON"),
    "idempotency_key_missing": (400, "Idempotency-Key header is required"),
    "unauthorized": (401, "Missing or invalid bearer token"),
    "forbidden": (403, "Not allowed for this token"),
    "not_found": (404, "No such resource"),
    "account_not_found": (404, "No such account"),
    "payment_not_found": (404, "No such payment"),
    "unknown_symbol": (404, "No such symbol"),
    "fault_not_found": (404, "No such fault in this service"),
    "method_not_allowed": (405, "Method not allowed"),
    "request_in_progress": (409, "A request with this Idempotency-Key is still in progress"),
    "payload_too_large": (413, "Request body too large"),
    "request_header_too_large": (431, "Request line and headers too large"),
    "unsupported_media_type": (415, "Request body must be application/json"),
    "validation_error": (422, "Request is not valid"),
    "idempotency_key_reused": (422, "Idempotency-Key was used with a different request"),
    "insufficient_funds": (422, "Insufficient funds"),
    "currency_mismatch": (422, "Currency does not match the accounts"),
    "same_account": (422, "Cannot pay an account from itself"),
    "balance_limit_exceeded": (422, "The balance would leave the range a balance can hold"),
    "insufficient_position": (422, "Not enough shares to sell"),
    "payment_rejected": (422, "Payment for the order was rejected"),
    "rate_limited": (429, "Too many requests"),
    "internal_error": (500, "Internal error"),
    "payments_unavailable": (503, "Payments service unavailable; the order will be reconciled"),
    "database_unavailable": (503, "Database unavailable"),
    # The status is the one the error_rate fault asks for (5xx); 503 is its default.
    "fault_injected": (503, "Injected fault: refused on purpose by a game-day experiment"),
}


# RFC 9110: a 401 names the scheme it wants.
_DEFAULT_HEADERS = {"unauthorized": {"WWW-Authenticate": "Bearer"}}


# Problems any route may answer, and those of routes with a body or an idempotency key.
ALWAYS_ERRORS = ("unauthorized", "rate_limited", "internal_error", "database_unavailable")
BODY_ERRORS = ("malformed_json", "payload_too_large", "validation_error")
IDEMPOTENCY_ERRORS = ("idempotency_key_missing", "idempotency_key_reused", "request_in_progress")


class Problem(Exception):
    """An error answered as problem+json; raising it rolls back the unit of work."""

    def __init__(
        self,
        code: str,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        status: int | None = None,
        **extensions: Any,
    ) -> None:
        """`status` overrides the code's usual one, for the few codes whose status varies (`fault_injected`)."""
        self.status, self.title = TITLES[code]
        if status is not None:
            self.status = status
        self.code = code
        self.detail = detail
        self.headers = {**_DEFAULT_HEADERS.get(code, {}), **(headers or {})}
        self.extensions = extensions
        super().__init__(detail or self.title)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"https://nova.dev/problems/{self.code.replace('_', '-')}",
            "title": self.title,
            "status": self.status,
            "code": self.code,
        }
        if self.detail:
            body["detail"] = self.detail
        body.update(self.extensions)
        return body

    def response(self, instance: str | None = None) -> JSONResponse:
        record_problem(self.code)
        body = self.body()
        if instance:
            body["instance"] = instance
        return JSONResponse(body, status_code=self.status, headers=self.headers, media_type=PROBLEM_MEDIA_TYPE)


def problem_schema() -> dict[str, Any]:
    """The JSON schema of a problem document, for the OpenAPI error responses."""
    return {
        "type": "object",
        "required": ["type", "title", "status", "code"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "code": {"type": "string", "enum": sorted(TITLES)},
            "detail": {"type": "string"},
            "instance": {"type": "string"},
            "errors": {"type": "array", "items": {"type": "object"}},
        },
    }


def error_responses(*codes: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the given problem codes, grouped by status."""
    by_status: dict[int, list[str]] = {}
    for code in codes:
        by_status.setdefault(TITLES[code][0], []).append(code)
    return {
        status: {
            "description": "; ".join(f"`{code}`: {TITLES[code][1]}" for code in group),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status, group in sorted(by_status.items())
    }


_HTTP_STATUS_CODES = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized", 413: "payload_too_large"}


def install_problem_handlers(app: FastAPI) -> None:
    """Route every error the framework raises through problem+json, never its default shapes."""

    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return exc.response(request.url.path)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [_validation_error(error) for error in exc.errors()]
        if any(error["type"] == "json_invalid" for error in errors):
            return Problem("malformed_json").response(request.url.path)
        if any(error["field"].lower() == "header.idempotency-key" and error["type"] == "missing" for error in errors):
            return Problem("idempotency_key_missing").response(request.url.path)
        return Problem("validation_error", errors[0]["message"] if errors else None, errors=errors).response(
            request.url.path
        )

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _HTTP_STATUS_CODES.get(
            exc.status_code, "validation_error" if exc.status_code < 500 else "internal_error"
        )
        # keep what the framework said must go with the status, such as Allow on a 405
        return Problem(code, headers=dict(exc.headers or {})).response(request.url.path)

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)


def _validation_error(error: Any) -> dict[str, str]:
    location = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
    return {"field": location, "message": f"{location}: {error.get('msg', 'invalid')}", "type": error.get("type", "")}
