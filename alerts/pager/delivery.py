"""Where pages go: stdout, a file (Markdown, or JSON lines for machines), a webhook (the page as JSON),
PagerDuty's Events API v2.

Each destination has a `name` safe to log and to keep in the state file: URLs are shown
without credentials or query strings, and the PagerDuty routing key is never shown.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol
from urllib.parse import urlsplit

import httpx

from alerts.pager.errors import DeliveryError, PagerError
from alerts.pager.page import Page, page_json, render_text
from alerts.pager.pagerduty import pagerduty_event

TIMEOUT_SECONDS = 10.0


class Destination(Protocol):
    @property
    def name(self) -> str: ...

    def deliver(self, page: Page) -> None:
        """Hand the page over, or raise DeliveryError."""


@dataclass
class StreamDestination:
    stream: IO[str] = field(default_factory=lambda: sys.stdout)
    name: str = "stdout"

    def deliver(self, page: Page) -> None:
        try:
            self.stream.write(render_text(page) + "\n")
            self.stream.flush()
        except (OSError, ValueError) as exc:
            raise DeliveryError(f"{self.name}: {exc}") from None


@dataclass
class FileDestination:
    """Appends each page as Markdown, one write per page, so a reader never sees half of one."""

    path: Path
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def name(self) -> str:
        return f"file:{self.path}"

    def deliver(self, page: Page) -> None:
        text = render_text(page) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock, self.path.open("a", encoding="utf-8") as file:
                file.write(text)
        except OSError as exc:
            raise DeliveryError(f"{self.name}: {exc}") from None


@dataclass
class JsonLinesDestination:
    """Appends each page as one JSON line (`page_json` plus `delivered_at`, unix seconds): the form a
    program reads back, such as the game day's drill, which needs when each page left and what it said."""

    path: Path
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def name(self) -> str:
        return f"jsonl:{self.path}"

    def deliver(self, page: Page) -> None:
        line = json.dumps({"delivered_at": time.time(), **page_json(page)}, sort_keys=True) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock, self.path.open("a", encoding="utf-8") as file:
                file.write(line)
        except OSError as exc:
            raise DeliveryError(f"{self.name}: {exc}") from None


@dataclass
class WebhookDestination:
    """POSTs the page as JSON; any 2xx is taken."""

    url: str

    @property
    def name(self) -> str:
        return f"webhook:{safe_url(self.url)}"

    def deliver(self, page: Page) -> None:
        _post(self.name, self.url, page_json(page), None)


@dataclass
class PagerDutyDestination:
    routing_key: str = field(repr=False)
    url: str = "https://events.pagerduty.com/v2/enqueue"

    @property
    def name(self) -> str:
        return f"pagerduty:{safe_url(self.url)}"

    def deliver(self, page: Page) -> None:
        _post(self.name, self.url, pagerduty_event(page, self.routing_key), self.routing_key)


def parse_destination(spec: str) -> Destination:
    """`stdout`, `file:PATH`, `jsonl:PATH` or `webhook:URL`; anything else is a PagerError naming the forms."""
    kind, _, target = spec.partition(":")
    if spec == "stdout":
        return StreamDestination()
    if kind == "file" and target:
        return FileDestination(Path(target))
    if kind == "jsonl" and target:
        return JsonLinesDestination(Path(target))
    if kind == "webhook" and target:
        check_http_url(target, "webhook")
        return WebhookDestination(target)
    raise PagerError(f"--deliver {safe_url(spec)!r}: expected stdout, file:PATH, jsonl:PATH or webhook:URL")


def check_http_url(url: str, what: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PagerError(f"{what} URL {safe_url(url)!r} is not an http:// or https:// URL")


def safe_url(url: str) -> str:
    """`url` without user, password, query or fragment: what may be logged."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(unparseable URL)"
    if not parts.scheme or not host:
        return url.split("?", 1)[0].split("@")[-1]
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _post(name: str, url: str, body: object, secret: str | None) -> None:
    try:
        response = httpx.post(url, json=body, timeout=TIMEOUT_SECONDS)
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{name}: {_redact(str(exc), url, secret)}") from None
    if not 200 <= response.status_code < 300:
        detail = _redact(response.text[:200].strip(), url, secret)
        raise DeliveryError(f"{name}: answered {response.status_code} {detail}".rstrip())


def _redact(text: str, url: str, secret: str | None) -> str:
    text = text.replace(url, safe_url(url))
    return text.replace(secret, "[redacted]") if secret else text
