"""The on-call pager: Alertmanager webhooks (version 4) in, one page per alert group out.

A page says what is burning and how fast, the error budget left and when it runs out,
the failed and slowest spans to open, the runbook and its first steps. Pages go to
stdout, files, webhooks and PagerDuty (Events API v2); re-sent notifications page once.
"""
