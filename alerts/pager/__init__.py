"""The on-call pager: Alertmanager webhooks (version 4) in, one page per alert group out.

A page says what is burning and how fast, the error budget left and when it runs out,
the failed and slowest spans to open, the runbook and its first steps. Pages go to
stdout, files, webhooks and PagerDuty (Events API v2); re-sent notifications page once.
"""

from alerts.pager.dedup import Decision, PageLedger
from alerts.pager.delivery import (
    Destination,
    FileDestination,
    PagerDutyDestination,
    StreamDestination,
    WebhookDestination,
    parse_destination,
)
from alerts.pager.errors import DeliveryError, PagerError, PayloadError
from alerts.pager.page import Page, PageSources, build_page, dedup_key, page_json, render_text
from alerts.pager.pagerduty import pagerduty_event
from alerts.pager.receiver import Outcome, Pager, PagerServer
from alerts.pager.webhook import Alert, Notification, parse_notification

__all__ = [
    "Alert",
    "Decision",
    "DeliveryError",
    "Destination",
    "FileDestination",
    "Notification",
    "Outcome",
    "Page",
    "PageLedger",
    "PageSources",
    "Pager",
    "PagerDutyDestination",
    "PagerError",
    "PagerServer",
    "PayloadError",
    "StreamDestination",
    "WebhookDestination",
    "build_page",
    "dedup_key",
    "page_json",
    "pagerduty_event",
    "parse_destination",
    "parse_notification",
    "render_text",
]
