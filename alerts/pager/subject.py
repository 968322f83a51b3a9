"""What an alert is about, read from its labels, whichever rules produced it.

Two shapes arrive: the SLO burn-rate rules (`sloth_id`, `sloth_service`, `sloth_slo`,
`sloth_severity` page|ticket) and the predictive alerts (`slo`, `severity`,
`kind="predictive"`, `service`), and the platform alerts (`severity`, `service` or `job`, no SLO).
Anything else is still paged, with what is known.
"""

from __future__ import annotations

from dataclasses import dataclass

from alerts.pager.webhook import Alert

PAGE_SEVERITIES = frozenset({"page", "critical"})


@dataclass(frozen=True)
class Subject:
    alertname: str
    slo_id: str  # `<service>-<slo>`, the `sloth_id` the SLO's recorded series carry; "" when unknown
    service: str
    slo: str
    severity: str  # "page" or "ticket"
    kind: str  # "burn", "exhaustion", "predictive" or "other"

    @property
    def title(self) -> str:
        if self.service and self.slo:
            return f"{self.service} {self.slo}"
        return self.slo_id or self.service or self.alertname


def subject_of(alert: Alert) -> Subject:
    labels = alert.labels
    # Platform alerts name the service by `service` or, for scrape failures, by the scrape `job`.
    service = labels.get("sloth_service") or labels.get("service") or labels.get("job", "")
    slo = labels.get("sloth_slo", "")
    slo_id = labels.get("sloth_id", "")
    if not slo_id and labels.get("slo"):
        named = labels["slo"]
        # The predictive alerts may name the SLO alone ("availability") or with its service.
        if service and not named.startswith(f"{service}-"):
            slo_id, slo = f"{service}-{named}", named
        else:
            slo_id = named
    if slo_id and not service and "-" in slo_id:
        service = slo_id.split("-", 1)[0]
    if slo_id and not slo and service and slo_id.startswith(f"{service}-"):
        slo = slo_id.removeprefix(f"{service}-")
    raw_severity = labels.get("sloth_severity") or labels.get("severity", "")
    severity = "page" if raw_severity in PAGE_SEVERITIES else "ticket"
    if labels.get("kind") == "predictive":
        kind = "predictive"
    elif alert.name.endswith("BudgetExhaustion"):
        kind = "exhaustion"
    elif labels.get("sloth_id"):
        kind = "burn"
    else:
        kind = "other"
    return Subject(alert.name, slo_id, service, slo, severity, kind)
