"""Every alert the suite can fire, with the runbook each one links to.

Three sources, in this order:

1. **SLO rules**: generated in-process from `slo/specs/` exactly as `nova slo rules` writes them
   (or read from a rule file given with `--rules`): per SLO the burn alert at `sloth_severity`
   page and ticket (`runbooks/<sloth_id>-page.md`, `-ticket.md`) and `<alert>BudgetExhaustion`
   (`runbooks/<sloth_id>-budget-exhaustion.md`).
2. **Platform rules**: `alerts/rules/platform.yml` (service down, not ready, database saturation).
3. **Predictive alerts**, which `nova alerts watch` sends straight to Alertmanager and so appear in
   no rule file. They are derived from the same SLO specs by one naming rule, the contract the
   predictive code follows (`alerts.watch.PredictiveAlert`):

   - alertname `<Service><Slo>PredictedBurn`: the service and SLO names, each with `-`/`_` read as
     word breaks and title-cased, joined (`payments` + `availability` -> `PaymentsAvailabilityPredictedBurn`);
   - labels `severity="page"`, `slo="<slo name>"`, `service="<service>"`, `kind="predictive"`;
   - annotation `runbook_url`: `<runbook base>/<sloth_id>-predictive.md`
     (`runbooks/payments-availability-predictive.md`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from runbooks.errors import RunbookError
from slo.dashboard import dashboard_uid
from slo.errors import SLOError
from slo.rules import DEFAULT_RUNBOOK_BASE, RuleOptions, generate
from slo.spec import SLO, SUITE_SPECS, load_specs

REPO = Path(__file__).resolve().parent.parent
RUNBOOKS_DIR = Path(__file__).resolve().parent
PLATFORM_RULES = REPO / "alerts" / "rules" / "platform.yml"
SLO_ALERT_GROUP = "sloth-slo-alerts-"
PREDICTIVE_SOURCE = "predictive (derived from slo/specs)"


@dataclass(frozen=True)
class Alert:
    """One alert at one severity: what fires, and where its runbook_url points."""

    name: str
    severity: str  # "page" or "ticket"
    runbook_url: str  # as the alert carries it; "" when it has none
    source: str  # the rule file (or generator) it comes from
    labels: dict[str, str] = field(default_factory=dict)
    group: str = ""  # the rule group it is defined in
    dashboard: str = ""  # uid of the SLO's Grafana dashboard (`nova slo rules --dashboards`), for SLO alerts

    @property
    def runbook_name(self) -> str:
        """The runbook file's name the URL points at (`payments-availability-page.md`), or ""."""
        return runbook_file_name(self.runbook_url)


def runbook_file_name(url: str) -> str:
    """The last path segment of a runbook_url, a relative path (`runbooks/x.md`) or a URL (`--runbook-base`)."""
    if not url:
        return ""
    return Path(urlsplit(url).path).name


def predictive_alert_name(service: str, slo: str) -> str:
    """`<Service><Slo>PredictedBurn`: the rule `alerts.watch.PredictiveAlert.name` follows."""
    return f"{_camel(service)}{_camel(slo)}PredictedBurn"


def predictive_alerts(slos: Sequence[SLO], runbook_base: str = DEFAULT_RUNBOOK_BASE) -> list[Alert]:
    return [
        Alert(
            name=predictive_alert_name(slo.service, slo.name),
            severity="page",
            runbook_url=f"{runbook_base.rstrip('/')}/{slo.sloth_id}-predictive.md",
            source=PREDICTIVE_SOURCE,
            labels={"severity": "page", "slo": slo.name, "service": slo.service, "kind": "predictive"},
            dashboard=dashboard_uid(slo),
        )
        for slo in slos
    ]


def suite_slos(specs: Iterable[Path] = SUITE_SPECS) -> list[SLO]:
    try:
        return load_specs(list(specs))
    except SLOError as exc:
        raise RunbookError(str(exc)) from None


def alerts_in_groups(groups: Sequence[dict[str, Any]], source: str) -> list[Alert]:
    """The alerting rules of Prometheus rule groups (recording rules are skipped)."""
    found: list[Alert] = []
    for group in groups:
        for rule in group.get("rules") or []:
            if not isinstance(rule, dict) or "alert" not in rule:
                continue
            labels = {str(k): str(v) for k, v in (rule.get("labels") or {}).items()}
            annotations = rule.get("annotations") or {}
            severity = labels.get("sloth_severity") or labels.get("severity", "")
            url = str(annotations.get("runbook_url", ""))
            found.append(Alert(str(rule["alert"]), severity, url, source, labels, str(group.get("name", ""))))
    return found


def alerts_in_rule_file(path: Path) -> list[Alert]:
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise RunbookError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise RunbookError(f"{path}: not YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(document, dict) or not isinstance(document.get("groups"), list):
        raise RunbookError(f"{path}: not a Prometheus rule file (no 'groups' list)")
    return alerts_in_groups(document["groups"], str(path))


def suite_alerts(rules: Path | None = None, platform_rules: Path = PLATFORM_RULES) -> list[Alert]:
    """Every alert the suite can fire: the SLO rules (generated, or `rules`), the platform's, the predictive ones."""
    slos = suite_slos()
    if rules is None:
        try:
            groups = generate(slos, RuleOptions())
        except SLOError as exc:
            raise RunbookError(str(exc)) from None
        alerts = alerts_in_groups(groups, "slo rules (generated from slo/specs)")
    else:
        alerts = alerts_in_rule_file(rules)
    # The SLO rules' alert groups are `sloth-slo-alerts-<sloth_id>` (their alerts carry no sloth_id label).
    dashboards = {f"{SLO_ALERT_GROUP}{slo.sloth_id}": dashboard_uid(slo) for slo in slos}
    alerts = [replace(alert, dashboard=dashboards.get(alert.group, "")) for alert in alerts]
    alerts += alerts_in_rule_file(platform_rules)
    alerts += predictive_alerts(slos)
    return alerts


def _camel(name: str) -> str:
    return name.replace("-", " ").replace("_", " ").title().replace(" ", "")
