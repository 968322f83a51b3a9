"""PagerDuty Events API v2 payloads for a page: trigger while the group fires, resolve when it ends.

The dedup_key is the page's (a hash of Alertmanager's group key), so PagerDuty folds
every re-send of a group into one incident and the resolve closes that incident.
"""

from __future__ import annotations

from typing import Any

from alerts.pager.page import Page, render_text

DEFAULT_URL = "https://events.pagerduty.com/v2/enqueue"
CLIENT = "Nova pager"
_SEVERITY = {"page": "critical", "ticket": "warning"}
_MAX_SUMMARY = 1024  # PagerDuty truncates longer summaries


def pagerduty_event(page: Page, routing_key: str) -> dict[str, Any]:
    """The Events API v2 body for `page`; a resolve carries only what PagerDuty reads from one."""
    event: dict[str, Any] = {"routing_key": routing_key, "event_action": page.event, "dedup_key": page.dedup_key}
    if page.event == "resolve":
        return event
    first = page.sections[0]
    subject = first.subject
    details: dict[str, Any] = {
        "firing": len(page.notification.firing),
        "group_labels": page.notification.group_labels,
        "page": render_text(page),
    }
    if first.runbook.url:
        details["runbook"] = first.runbook.url
    if first.budget is not None:
        details.update(
            burn_rate=first.budget.burn_rate,
            budget_remaining=first.budget.budget_remaining,
            seconds_to_exhaustion=first.budget.seconds_to_exhaustion,
        )
    if first.spans is not None and first.spans.failed:
        details["failed_trace_ids"] = [failed.latest.trace_id for failed in first.spans.failed]
    event["payload"] = {
        "summary": f"{page.headline}: {page.summary}"[:_MAX_SUMMARY],
        "source": subject.service or page.notification.receiver or "alertmanager",
        "severity": _SEVERITY[page.severity],
        "timestamp": first.alert.starts_at.isoformat(),
        "component": subject.slo_id or subject.service or subject.alertname,
        "group": subject.service or subject.alertname,
        "class": subject.alertname,
        "custom_details": details,
    }
    links = (
        [{"href": first.runbook.url, "text": "Runbook"}] if first.runbook.url.startswith(("http:", "https:")) else []
    )
    if first.alert.generator_url:
        links.append({"href": first.alert.generator_url, "text": "Alert rule"})
    if links:
        event["links"] = links
    event["client"] = CLIENT
    if page.external_url:
        event["client_url"] = page.external_url
    return event
