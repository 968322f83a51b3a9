"""Alertmanager's webhook notification (payload version 4), parsed into immutable values.

One notification is one alert group at one moment: Alertmanager sends it after
`group_wait`, again on `group_interval` when the group changes, again on
`repeat_interval`, and again on retries; the pager decides what is new (see `dedup`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from alerts.pager.errors import PayloadError

SUPPORTED_VERSION = "4"
STATUSES = ("firing", "resolved")
# Alertmanager writes Go's zero time for "no end yet".
_ZERO_TIME_PREFIX = "0001-01-01"


@dataclass(frozen=True)
class Alert:
    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None
    generator_url: str
    fingerprint: str

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")

    @property
    def identity(self) -> str:
        """What makes this alert the same alert across re-sends: its fingerprint and when it began."""
        return f"{self.fingerprint}@{self.starts_at.isoformat()}"


@dataclass(frozen=True)
class Notification:
    receiver: str
    status: str
    alerts: tuple[Alert, ...]
    group_labels: dict[str, str]
    common_labels: dict[str, str]
    common_annotations: dict[str, str]
    external_url: str
    group_key: str
    truncated_alerts: int

    @property
    def firing(self) -> tuple[Alert, ...]:
        return tuple(alert for alert in self.alerts if alert.status == "firing")

    @property
    def name(self) -> str:
        """The group's alert name, or the first alert's."""
        return self.group_labels.get("alertname") or self.common_labels.get("alertname") or self.alerts[0].name


def parse_notification(body: bytes | str) -> Notification:
    """The notification in `body`; anything else is one PayloadError saying what is wrong and where."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadError(f"the body is not JSON: {exc}", "invalid_json") from None
    if not isinstance(document, dict):
        raise PayloadError("the body is not a JSON object")
    version = document.get("version")
    if version != SUPPORTED_VERSION:
        raise PayloadError(
            f"payload version {version!r} is not supported (Alertmanager webhook version 4 is)", "unsupported_version"
        )
    status = _string(document, "status", "")
    if status not in STATUSES:
        raise PayloadError(f"status: expected 'firing' or 'resolved', got {status!r}")
    raw_alerts = document.get("alerts")
    if not isinstance(raw_alerts, list) or not raw_alerts:
        raise PayloadError("alerts: expected a non-empty list")
    alerts = tuple(_alert(raw, f"alerts[{i}]") for i, raw in enumerate(raw_alerts))
    group_key = _string(document, "groupKey", "")
    if not group_key:
        raise PayloadError("groupKey: missing or empty")
    truncated = document.get("truncatedAlerts", 0)
    if not isinstance(truncated, int) or isinstance(truncated, bool) or truncated < 0:
        raise PayloadError("truncatedAlerts: expected a non-negative integer")
    return Notification(
        receiver=_string(document, "receiver", ""),
        status=status,
        alerts=alerts,
        group_labels=_labels(document.get("groupLabels"), "groupLabels"),
        common_labels=_labels(document.get("commonLabels"), "commonLabels"),
        common_annotations=_labels(document.get("commonAnnotations"), "commonAnnotations"),
        external_url=_string(document, "externalURL", ""),
        group_key=group_key,
        truncated_alerts=truncated,
    )


def _alert(raw: Any, where: str) -> Alert:
    if not isinstance(raw, dict):
        raise PayloadError(f"{where}: expected an object")
    status = _string(raw, "status", "", where)
    if status not in STATUSES:
        raise PayloadError(f"{where}.status: expected 'firing' or 'resolved', got {status!r}")
    labels = _labels(raw.get("labels"), f"{where}.labels")
    if not labels.get("alertname"):
        raise PayloadError(f"{where}.labels: no alertname")
    fingerprint = _string(raw, "fingerprint", "", where)
    if not fingerprint:
        raise PayloadError(f"{where}.fingerprint: missing or empty")
    starts_at = _time(raw.get("startsAt"), f"{where}.startsAt")
    if starts_at is None:
        raise PayloadError(f"{where}.startsAt: missing")
    return Alert(
        status=status,
        labels=labels,
        annotations=_labels(raw.get("annotations"), f"{where}.annotations"),
        starts_at=starts_at,
        ends_at=_time(raw.get("endsAt"), f"{where}.endsAt"),
        generator_url=_string(raw, "generatorURL", "", where),
        fingerprint=fingerprint,
    )


def _string(document: dict[str, Any], key: str, default: str, where: str = "") -> str:
    value = document.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise PayloadError(f"{where + '.' if where else ''}{key}: expected a string")
    return value


def _labels(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise PayloadError(f"{where}: expected an object of strings")
    return dict(value)


def _time(value: Any, where: str) -> datetime | None:
    if value is None or value == "" or (isinstance(value, str) and value.startswith(_ZERO_TIME_PREFIX)):
        return None
    if not isinstance(value, str):
        raise PayloadError(f"{where}: expected an RFC 3339 time")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise PayloadError(f"{where}: {value!r} is not an RFC 3339 time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
