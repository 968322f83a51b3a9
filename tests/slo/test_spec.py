"""Spec loading: Sloth prometheus/v1, OpenSLO v1 and the latency SLI into one model, or one precise SpecError."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.utils import floatToGoString

from instrumentation import metrics
from slo.errors import SpecError
from slo.rules import RuleOptions, render
from slo.spec import OPENSLO_VERSION, SLOTH_VERSION, EventsSLI, LatencySLI, RawSLI, load_specs
from tests.slo.promtool import query_promtool

ROOT = Path(__file__).resolve().parents[2]
OWN_SPECS = sorted((ROOT / "slo" / "specs").glob("*.yaml"))

SLOTH = """\
version: "prometheus/v1"
service: "payments"
labels:
  owner: "payments-sre"
slos:
  - name: "availability"
    objective: 99.99
    description: "Payments answered without a server error."
    sli:
      events:
        error_query: sum(rate(http_server_requests_total{service="payments",code=~"5.."}[{{.window}}]))
        total_query: sum(rate(http_server_requests_total{service="payments"}[{{.window}}]))
    alerting:
      name: PaymentsAvailabilityBurn
      labels:
        category: availability
      annotations:
        summary: "Payments are failing."
      page_alert:
        labels:
          severity: critical
      ticket_alert:
        labels:
          severity: warning
  - name: "latency"
    objective: 99
    sli:
      latency:
        histogram: http_server_request_duration_seconds
        threshold_seconds: 0.2
        selector: service="payments"
    alerting:
      name: PaymentsLatencyBurn
"""

OPENSLO = """\
apiVersion: openslo/v1
kind: SLI
metadata:
  name: search-good-requests
spec:
  ratioMetric:
    counter: true
    good:
      metricSource:
        type: Prometheus
        spec:
          query: sum(rate(search_requests_total{code!~"5.."}[{{.window}}]))
    total:
      metricSource:
        type: Prometheus
        spec:
          query: sum(rate(search_requests_total[{{.window}}]))
---
apiVersion: openslo/v1
kind: SLO
metadata:
  name: availability
spec:
  service: search
  budgetingMethod: Occurrences
  indicatorRef: search-good-requests
  timeWindow:
    - duration: 30d
      isRolling: true
  objectives:
    - target: 0.9995
"""

OPENSLO_INLINE = """\
apiVersion: openslo/v1
kind: SLO
metadata:
  name: availability
  labels:
    team: orders
spec:
  service: orders
  budgetingMethod: Occurrences
  timeWindow:
    - duration: 28d
      isRolling: true
  objectives:
    - targetPercent: 99.9
  indicator:
    metadata:
      name: orders-errors
    spec:
      ratioMetric:
        counter: true
        bad:
          metricSource:
            type: Prometheus
            spec:
              query: sum(rate(orders_total{code=~"5.."}[{{.window}}]))
        total:
          metricSource:
            type: Prometheus
            spec:
              query: sum(rate(orders_total[{{.window}}]))
"""


def exported_le(bound: float) -> str:
    """A bucket bound as prometheus-client writes it in `le`, which the latency SLI must match as text."""
    return str(floatToGoString(bound))  # type: ignore[no-untyped-call]


def write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def mutate(text: str, old: str, new: str) -> str:
    assert text.count(old) >= 1, f"{old!r} is not in the base spec"
    return text.replace(old, new, 1)


# -- loading good specs ---------------------------------------------------------------------------


def test_a_sloth_spec_loads_every_slo_in_order(tmp_path: Path) -> None:
    slos = load_specs([write(tmp_path, SLOTH)])
    assert [(s.service, s.name, s.sloth_id) for s in slos] == [
        ("payments", "availability", "payments-availability"),
        ("payments", "latency", "payments-latency"),
    ]
    assert all(s.spec_version == SLOTH_VERSION for s in slos)


def test_a_sloth_events_sli_keeps_its_queries(tmp_path: Path) -> None:
    sli = load_specs([write(tmp_path, SLOTH)])[0].sli
    assert sli == EventsSLI(
        'sum(rate(http_server_requests_total{service="payments",code=~"5.."}[{{.window}}]))',
        'sum(rate(http_server_requests_total{service="payments"}[{{.window}}]))',
    )


def test_a_sloth_raw_sli_keeps_its_query(tmp_path: Path) -> None:
    text = mutate(
        SLOTH, f"      events:\n        {ERROR_QUERY}\n        total_query", "      raw:\n        error_ratio_query"
    )
    sli = load_specs([write(tmp_path, text)])[0].sli
    assert sli == RawSLI('sum(rate(http_server_requests_total{service="payments"}[{{.window}}]))')


def test_objectives_stay_exact_decimals(tmp_path: Path) -> None:
    availability, latency = load_specs([write(tmp_path, SLOTH)])
    assert availability.objective == Decimal("99.99")
    assert availability.objective_ratio == Decimal("0.9999")
    assert availability.error_budget == Decimal("0.0001")
    assert latency.error_budget == Decimal("0.01")


def test_spec_labels_and_slo_labels_are_merged_with_the_slo_winning(tmp_path: Path) -> None:
    text = mutate(SLOTH, "    objective: 99.99\n", '    objective: 99.99\n    labels: {owner: checkout, tier: "1"}\n')
    availability, latency = load_specs([write(tmp_path, text)])
    assert availability.labels == {"owner": "checkout", "tier": "1"}
    assert latency.labels == {"owner": "payments-sre"}


def test_alerting_keeps_name_labels_annotations_and_per_severity_labels(tmp_path: Path) -> None:
    alerting = load_specs([write(tmp_path, SLOTH)])[0].alerting
    assert alerting.name == "PaymentsAvailabilityBurn"
    assert alerting.labels == {"category": "availability"}
    assert alerting.annotations == {"summary": "Payments are failing."}
    assert alerting.page.labels == {"severity": "critical"}
    assert alerting.ticket.labels == {"severity": "warning"}
    assert not alerting.page.disable and not alerting.ticket.disable


def test_a_disabled_ticket_alert_is_kept_disabled(tmp_path: Path) -> None:
    text = mutate(SLOTH, "      ticket_alert:\n", "      ticket_alert:\n        disable: true\n")
    assert load_specs([write(tmp_path, text)])[0].alerting.ticket.disable


def test_a_sloth_spec_takes_the_generators_period(tmp_path: Path) -> None:
    assert load_specs([write(tmp_path, SLOTH)])[0].period is None


def test_the_latency_sli_queries_its_histograms_bucket_and_count(tmp_path: Path) -> None:
    sli = load_specs([write(tmp_path, SLOTH)])[1].sli
    assert sli == LatencySLI("http_server_request_duration_seconds", Decimal("0.2"), 'service="payments"')
    assert sli.total_query == 'sum(rate(http_server_request_duration_seconds_count{service="payments"}[{{.window}}]))'
    assert sli.error_query == (
        '(sum(rate(http_server_request_duration_seconds_count{service="payments"}[{{.window}}]))'
        ' - sum(rate(http_server_request_duration_seconds_bucket{service="payments",le="0.2"}[{{.window}}])))'
    )


def test_a_latency_selector_may_be_written_in_braces(tmp_path: Path) -> None:
    text = mutate(SLOTH, 'selector: service="payments"', "selector: '{service=\"payments\"}'")
    sli = load_specs([write(tmp_path, text)])[1].sli
    assert isinstance(sli, LatencySLI)
    assert sli.selector == 'service="payments"'


def test_a_latency_sli_without_selector_queries_every_series(tmp_path: Path) -> None:
    text = mutate(SLOTH, '        selector: service="payments"\n', "")
    sli = load_specs([write(tmp_path, text)])[1].sli
    assert isinstance(sli, LatencySLI)
    assert sli.total_query == "sum(rate(http_server_request_duration_seconds_count{}[{{.window}}]))"
    assert 'http_server_request_duration_seconds_bucket{le="0.2"}' in sli.error_query


@pytest.mark.parametrize(("threshold", "le"), [("0.2", "0.2"), ("1", "1.0"), ("0.05", "0.05"), ("2.5", "2.5")])
def test_the_latency_bucket_bound_is_spelled_as_client_libraries_expose_it(
    tmp_path: Path, threshold: str, le: str
) -> None:
    text = mutate(SLOTH, "threshold_seconds: 0.2", f"threshold_seconds: {threshold}")
    sli = load_specs([write(tmp_path, text)])[1].sli
    assert isinstance(sli, LatencySLI)
    assert sli.le == le == exported_le(float(threshold))
    assert f'le="{le}"' in sli.error_query


def test_an_openslo_slo_with_an_inline_indicator_loads(tmp_path: Path) -> None:
    (slo,) = load_specs([write(tmp_path, OPENSLO_INLINE)])
    assert (slo.service, slo.name, slo.spec_version) == ("orders", "availability", OPENSLO_VERSION)
    assert slo.objective == Decimal("99.9")
    assert slo.period == 28 * 86400
    assert slo.labels == {"team": "orders"}
    assert slo.alerting.name == "OrdersAvailabilityBudgetBurn"
    assert slo.sli == EventsSLI(
        'sum(rate(orders_total{code=~"5.."}[{{.window}}]))', "sum(rate(orders_total[{{.window}}]))"
    )


def test_an_openslo_target_is_a_ratio_and_becomes_a_percent(tmp_path: Path) -> None:
    (slo,) = load_specs([write(tmp_path, OPENSLO)])
    assert slo.objective == Decimal("99.95")
    assert slo.error_budget == Decimal("0.0005")


def test_an_openslo_indicator_ref_finds_the_sli_document_in_the_same_file(tmp_path: Path) -> None:
    (slo,) = load_specs([write(tmp_path, OPENSLO)])
    assert slo.sli == EventsSLI(
        "((sum(rate(search_requests_total[{{.window}}])))"
        ' - (sum(rate(search_requests_total{code!~"5.."}[{{.window}}]))))',
        "sum(rate(search_requests_total[{{.window}}]))",
    )


def test_an_openslo_indicator_ref_finds_the_sli_document_in_another_file(tmp_path: Path) -> None:
    sli_text, slo_text = OPENSLO.split("---\n")
    slos = load_specs([write(tmp_path, slo_text, "slo.yaml"), write(tmp_path, sli_text, "sli.yaml")])
    assert [s.sloth_id for s in slos] == ["search-availability"]
    assert slos[0].sli == load_specs([write(tmp_path, OPENSLO)])[0].sli


def test_an_openslo_service_document_is_accepted_and_gives_no_slo(tmp_path: Path) -> None:
    service = "apiVersion: openslo/v1\nkind: Service\nmetadata:\n  name: search\nspec: {}\n---\n"
    assert [s.sloth_id for s in load_specs([write(tmp_path, service + OPENSLO)])] == ["search-availability"]


def test_specs_from_several_files_load_in_the_order_given(tmp_path: Path) -> None:
    first = write(tmp_path, OPENSLO_INLINE, "orders.yaml")
    second = write(tmp_path, SLOTH, "payments.yaml")
    assert [s.sloth_id for s in load_specs([first, second])] == [
        "orders-availability",
        "payments-availability",
        "payments-latency",
    ]


def test_the_same_slo_name_in_two_services_is_no_duplicate(tmp_path: Path) -> None:
    other = mutate(SLOTH, 'service: "payments"', 'service: "portfolio"')
    slos = load_specs([write(tmp_path, SLOTH, "a.yaml"), write(tmp_path, other, "b.yaml")])
    assert len({s.sloth_id for s in slos}) == 4


def test_date_like_values_stay_the_text_written(tmp_path: Path) -> None:
    dates = '  owner: "payments-sre"\n  since: 2024-01-01\n  until: 2024-13-01\n'
    text = mutate(SLOTH, '  owner: "payments-sre"\n', dates)
    assert load_specs([write(tmp_path, text)])[0].labels == {
        "owner": "payments-sre",
        "since": "2024-01-01",
        "until": "2024-13-01",
    }


def test_numeric_label_values_become_text(tmp_path: Path) -> None:
    text = mutate(SLOTH, '  owner: "payments-sre"\n', "  tier: 1\n")
    assert load_specs([write(tmp_path, text)])[0].labels == {"tier": "1"}


def test_each_slo_knows_where_it_was_written(tmp_path: Path) -> None:
    path = write(tmp_path, SLOTH)
    assert [s.source for s in load_specs([path])] == [f"{path}:6", f"{path}:25"]


# -- bad specs: one SpecError, one line, naming file, line, SLO and field ------------------------------


@dataclass(frozen=True)
class BadSpec:
    """A spec made from `base` with `old` replaced by `new` (all of it when `old` is empty).

    `located` is what the one-line message says after `<file>:`, before the reason:
    `<line>[: SLO '<name>'][: <field>]`.
    """

    id: str
    base: str
    old: str
    new: str
    located: str
    reason: str

    @property
    def text(self) -> str:
        return mutate(self.base, self.old, self.new) if self.old else self.new

    @property
    def line(self) -> int:
        return int(self.located.split(":")[0])

    @property
    def slo(self) -> str | None:
        found = re.search(r"SLO '([^']*)'", self.located)
        return found.group(1) if found else None


AVAIL = "SLO 'availability'"
LATENCY = "SLO 'latency'"
EVENTS = f"{AVAIL}: slos[0].sli.events"
LATENCY_SLI = f"{LATENCY}: slos[1].sli.latency"
TARGET = f"{AVAIL}: spec.objectives[0].target"
RATIO = "spec.ratioMetric"
EVENTS_SLI = (
    '      events:\n        error_query: sum(rate(http_server_requests_total{service="payments",code=~"5.."}'
    '[{{.window}}]))\n        total_query: sum(rate(http_server_requests_total{service="payments"}[{{.window}}]))'
)
ERROR_QUERY = 'error_query: sum(rate(http_server_requests_total{service="payments",code=~"5.."}[{{.window}}]))'
TWO_SLIS = "---\n" + OPENSLO.split("---\n")[0] + "---\n"

# fmt: off
BAD_SPECS = [
    # Sloth: versions and the top level
    BadSpec("unknown-version", SLOTH, '"prometheus/v1"', '"prometheus/v2"', "1: version", "unknown version"),
    BadSpec("no-version", SLOTH, 'version: "prometheus/v1"\n', "", "1", "not an SLO spec"),
    BadSpec("unknown-top-field", SLOTH, "labels:", "owners: x\nlabels:", "3: owners", "unknown field"),
    BadSpec("no-service", SLOTH, 'service: "payments"\n', "", "1: service", "is required"),
    BadSpec("bad-service", SLOTH, '"payments"', '"pay ments"', "2: service", "must be a name"),
    BadSpec("no-slos", SLOTH, "", 'version: "prometheus/v1"\nservice: x\nslos: []\n', "3: slos", "non-empty list"),
    BadSpec("bad-label-name", SLOTH, '  owner: "', '  owner-team: "', "4: labels.owner-team", "label name"),
    BadSpec("reserved-label", SLOTH, '  owner: "', '  sloth_id: "', "4: labels.sloth_id", "set by the generator"),
    BadSpec("label-list-value", SLOTH, '"payments-sre"', "[a, b]", "4: labels.owner", "strings or numbers"),
    # Sloth: objectives
    BadSpec("objective-zero", SLOTH, "99.99", "0", f"7: {AVAIL}: slos[0].objective", "above 0 and below 100, got 0"),
    BadSpec("objective-negative", SLOTH, "99.99", "-99.9", f"7: {AVAIL}: slos[0].objective", "above 0 and below 100"),
    BadSpec("objective-100", SLOTH, "99.99", "100", f"7: {AVAIL}: slos[0].objective", "below 100, got 100"),
    BadSpec("objective-100.0", SLOTH, "99.99", "100.0", f"7: {AVAIL}: slos[0].objective", "above 0 and below 100"),
    BadSpec("objective-101", SLOTH, "99.99", "101", f"7: {AVAIL}: slos[0].objective", "below 100, got 101"),
    BadSpec("objective-nan", SLOTH, "99.99", ".nan", f"7: {AVAIL}: slos[0].objective", "above 0 and below 100"),
    BadSpec("objective-inf", SLOTH, "99.99", ".inf", f"7: {AVAIL}: slos[0].objective", "above 0 and below 100"),
    BadSpec("objective-text", SLOTH, "99.99", '"99.99"', f"7: {AVAIL}: slos[0].objective", "must be a number"),
    BadSpec("objective-bool", SLOTH, "99.99", "true", f"7: {AVAIL}: slos[0].objective", "must be a number"),
    BadSpec("no-objective", SLOTH, "    objective: 99.99\n", "", f"6: {AVAIL}: slos[0].objective", "is required"),
    # Sloth: SLIs
    BadSpec("no-error-query", SLOTH, "        error_query", "        # error_query", f"10: {EVENTS}.error_query",
            "is required"),
    BadSpec("no-total-query", SLOTH, "        total_query", "        # total_query", f"10: {EVENTS}.total_query",
            "is required"),
    BadSpec("empty-error-query", SLOTH, ERROR_QUERY, 'error_query: ""', f"11: {EVENTS}.error_query", "is required"),
    BadSpec("error-query-not-text", SLOTH, ERROR_QUERY, "error_query: [a]", f"11: {EVENTS}.error_query",
            "must be a string"),
    BadSpec("error-query-without-window", SLOTH, "[{{.window}}]))", "[5m]))", f"11: {EVENTS}.error_query",
            "has no {{.window}} placeholder"),
    BadSpec("total-query-without-window", SLOTH, '"payments"}[{{.window}}]))', '"payments"}[1h]))',
            f"12: {EVENTS}.total_query", "has no {{.window}} placeholder"),
    BadSpec("raw-query-without-window", SLOTH, EVENTS_SLI,
            "      raw:\n        error_ratio_query: sum(rate(errors[5m])) / sum(rate(requests[5m]))",
            f"11: {AVAIL}: slos[0].sli.raw.error_ratio_query", "has no {{.window}} placeholder"),
    BadSpec("two-sli-kinds", SLOTH, "      events:", "      raw: {error_ratio_query: 'x[{{.window}}]'}\n      events:",
            f"9: {AVAIL}: slos[0].sli", "needs exactly one of events, raw or latency"),
    BadSpec("no-sli-kind", SLOTH, EVENTS_SLI, "      {}", f"9: {AVAIL}: slos[0].sli",
            "needs exactly one of events, raw or latency"),
    BadSpec("latency-threshold-zero", SLOTH, "threshold_seconds: 0.2", "threshold_seconds: 0",
            f"30: {LATENCY_SLI}.threshold_seconds", "above 0"),
    BadSpec("latency-threshold-negative", SLOTH, "threshold_seconds: 0.2", "threshold_seconds: -0.2",
            f"30: {LATENCY_SLI}.threshold_seconds", "above 0"),
    BadSpec("latency-threshold-nan", SLOTH, "threshold_seconds: 0.2", "threshold_seconds: .nan",
            f"30: {LATENCY_SLI}.threshold_seconds", "above 0"),
    BadSpec("latency-threshold-inf", SLOTH, "threshold_seconds: 0.2", "threshold_seconds: .inf",
            f"30: {LATENCY_SLI}.threshold_seconds", "above 0"),
    BadSpec("latency-threshold-text", SLOTH, "threshold_seconds: 0.2", "threshold_seconds: 200ms",
            f"30: {LATENCY_SLI}.threshold_seconds", "number of seconds"),
    BadSpec("latency-histogram-name", SLOTH, "histogram: http_server_request_duration_seconds",
            "histogram: http-server-request-duration", f"29: {LATENCY_SLI}.histogram", "histogram metric name"),
    BadSpec("latency-no-histogram", SLOTH, "        histogram: http_server_request_duration_seconds\n", "",
            f"28: {LATENCY_SLI}.histogram", "is required"),
    BadSpec("latency-selector-with-le", SLOTH, 'selector: service="payments"', 'selector: service="payments",le="0.2"',
            f"31: {LATENCY_SLI}.selector", "(no le)"),
    BadSpec("latency-selector-braces-inside", SLOTH, 'selector: service="payments"', "selector: '{a=\"b\"},{c=\"d\"}'",
            f"31: {LATENCY_SLI}.selector", "must be label matchers"),
    # Sloth: unknown fields at every level
    BadSpec("unknown-slo-field", SLOTH, "    objective: 99.99\n", "    objective: 99.99\n    objectve: 99.9\n",
            f"8: {AVAIL}: slos[0].objectve", "unknown field"),
    BadSpec("unknown-sli-field", SLOTH, "      events:", "      event:", f"10: {AVAIL}: slos[0].sli.event",
            "unknown field"),
    BadSpec("unknown-events-field", SLOTH, "        total_query", "        totals_query", f"12: {EVENTS}.totals_query",
            "unknown field"),
    BadSpec("unknown-latency-field", SLOTH, "        selector:", "        selectors:", f"31: {LATENCY_SLI}.selectors",
            "unknown field"),
    BadSpec("unknown-alerting-field", SLOTH, "      page_alert:", "      pager_alert:",
            f"19: {AVAIL}: slos[0].alerting.pager_alert", "unknown field"),
    BadSpec("unknown-page-alert-field", SLOTH, "      page_alert:\n", "      page_alert:\n        disabled: true\n",
            f"20: {AVAIL}: slos[0].alerting.page_alert.disabled", "unknown field"),
    # Sloth: alerting
    BadSpec("no-alerting", SLOTH, "    alerting:\n      name: PaymentsLatencyBurn\n", "",
            f"25: {LATENCY}: slos[1].alerting.name", "is required (an alert is enabled)"),
    BadSpec("no-alert-name", SLOTH, "      name: PaymentsLatencyBurn\n", "      labels: {}\n",
            f"32: {LATENCY}: slos[1].alerting.name", "is required"),
    BadSpec("bad-alert-name", SLOTH, "name: PaymentsLatencyBurn", "name: Payments-Latency",
            f"33: {LATENCY}: slos[1].alerting.name", "must be an alert name"),
    BadSpec("reserved-alert-label", SLOTH, "        category: availability", "        sloth_severity: page",
            f"16: {AVAIL}: slos[0].alerting.labels.sloth_severity", "set by the generator"),
    BadSpec("bad-annotation-name", SLOTH, "        summary:", '        "the summary":',
            f"18: {AVAIL}: slos[0].alerting.annotations.the summary", "not a valid annotation name"),
    BadSpec("annotation-not-text", SLOTH, '        summary: "Payments are failing."', "        summary: [a]",
            f"18: {AVAIL}: slos[0].alerting.annotations.summary", "must be a string"),
    BadSpec("disable-not-bool", SLOTH, "      ticket_alert:\n", '      ticket_alert:\n        disable: "yes"\n',
            f"23: {AVAIL}: slos[0].alerting.ticket_alert.disable", "true or false"),
    # Sloth: duplicates, YAML, empty files
    BadSpec("duplicate-slo-in-one-file", SLOTH, '  - name: "latency"', '  - name: "availability"',
            f"25: {AVAIL}: name", "duplicate SLO (service 'payments' already has it, at "),
    BadSpec("yaml-syntax", SLOTH, "name: PaymentsAvailabilityBurn", "name: Payments: Availability", "14",
            "invalid YAML: mapping values are not allowed here"),
    BadSpec("yaml-tab", SLOTH, "    description:", "\tdescription:", "8", "invalid YAML"),
    BadSpec("yaml-unclosed-flow", SLOTH, '  owner: "payments-sre"\n', "  owner: [\n", "6", "invalid YAML"),
    BadSpec("empty-file", SLOTH, "", "", "1", "no SLO spec in the file"),
    BadSpec("only-comments", SLOTH, "", "# nothing here\n", "1", "no SLO spec in the file"),
    BadSpec("not-a-mapping", SLOTH, "", "- version: prometheus/v1\n", "1", "expected a mapping"),
    # OpenSLO
    BadSpec("openslo-target-1", OPENSLO, "target: 0.9995", "target: 1", f"31: {TARGET}", "above 0 and below 1, got 1"),
    BadSpec("openslo-target-over-1", OPENSLO, "target: 0.9995", "target: 1.5", f"31: {TARGET}", "above 0 and below 1"),
    BadSpec("openslo-target-as-percent", OPENSLO, "target: 0.9995", "target: 99.95", f"31: {TARGET}", "got 99.95"),
    BadSpec("openslo-target-zero", OPENSLO, "target: 0.9995", "target: 0", f"31: {TARGET}", "above 0 and below 1"),
    BadSpec("openslo-target-percent-100", OPENSLO, "target: 0.9995", "targetPercent: 100", f"31: {TARGET}Percent",
            "above 0 and below 100"),
    BadSpec("openslo-two-targets", OPENSLO, "target: 0.9995", "target: 0.9995\n      targetPercent: 99.95",
            f"31: {AVAIL}: spec.objectives[0]", "exactly one of target or targetPercent"),
    BadSpec("openslo-missing-sli", OPENSLO, "indicatorRef: search-good-requests", "indicatorRef: search-good",
            f"26: {AVAIL}: spec.indicatorRef", "no SLI named 'search-good' in the given files"),
    BadSpec("openslo-ref-not-a-name", OPENSLO, "indicatorRef: search-good-requests", "indicatorRef: {name: x}",
            f"26: {AVAIL}: spec.indicatorRef", "must be the name of an SLI"),
    BadSpec("openslo-no-indicator", OPENSLO, "  indicatorRef: search-good-requests\n", "", f"23: {AVAIL}: spec",
            "exactly one of indicator or indicatorRef"),
    BadSpec("openslo-unsupported-kind", OPENSLO, "kind: SLO", "kind: Alert", "20: kind",
            "unsupported kind 'Alert'"),
    BadSpec("openslo-unknown-api-version", OPENSLO, "apiVersion: openslo/v1\nkind: SLO",
            "apiVersion: openslo/v2alpha\nkind: SLO", "19: apiVersion", "unknown apiVersion 'openslo/v2alpha'"),
    BadSpec("openslo-calendar-window", OPENSLO, "      isRolling: true",
            "      calendar: {startTime: 2024-01-01 00:00:00}",
            f"29: {AVAIL}: spec.timeWindow[0].calendar.timeZone", "is required"),
    BadSpec("openslo-not-rolling", OPENSLO, "isRolling: true", "isRolling: false",
            f"28: {AVAIL}: spec.timeWindow[0]", "a calendar window needs calendar.startTime"),
    BadSpec("openslo-bad-window", OPENSLO, "duration: 30d", "duration: a month",
            f"28: {AVAIL}: spec.timeWindow[0].duration", "not a duration"),
    BadSpec("openslo-timeslices", OPENSLO, "budgetingMethod: Occurrences", "budgetingMethod: Timeslices",
            f"31: {AVAIL}: spec.objectives[0].timeSliceWindow", "is required with Timeslices"),
    BadSpec("openslo-unknown-slo-field", OPENSLO, "  service: search\n", "  service: search\n  owner: me\n",
            f"25: {AVAIL}: spec.owner", "unknown field"),
    BadSpec("openslo-unknown-metadata-field", OPENSLO, "  name: availability\n", "  name: availability\n  team: x\n",
            "23: metadata.team", "unknown field"),
    BadSpec("openslo-good-and-bad", OPENSLO, "    total:",
            "    bad: {metricSource: {type: Prometheus, spec: {query: 'x[{{.window}}]'}}}\n    total:",
            f"6: {RATIO}", "exactly one of good or bad"),
    BadSpec("openslo-unused-sli-is-checked", OPENSLO, "    counter: true", "    counter: true\n    raw: 1",
            f"6: {RATIO}", "raw excludes good, bad and total"),
    BadSpec("openslo-sli-metadata-not-mapping", OPENSLO, "metadata:\n  name: search-good-requests\n",
            "metadata: [search-good-requests]\n", "3: metadata", "must be a mapping"),
    BadSpec("openslo-duplicate-sli", OPENSLO, "---\n", TWO_SLIS, "22: metadata.name",
            "duplicate SLI 'search-good-requests'"),
]
# fmt: on


@pytest.mark.parametrize("bad", BAD_SPECS, ids=[b.id for b in BAD_SPECS])
def test_a_bad_spec_is_one_spec_error_naming_file_line_slo_and_field(tmp_path: Path, bad: BadSpec) -> None:
    path = write(tmp_path, bad.text)
    with pytest.raises(SpecError) as caught:
        load_specs([path], strict=True)  # strict: the unknown-field cases are errors, the others are anyway
    error, message = caught.value, str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}:{bad.located}: "), message
    assert bad.reason in message
    assert (error.file, error.line, error.slo) == (str(path), bad.line, bad.slo)
    assert message == f"{path}:{bad.located}: {error.reason}"


def test_a_duplicate_slo_names_where_the_first_one_is(tmp_path: Path) -> None:
    path = write(tmp_path, mutate(SLOTH, '  - name: "latency"', '  - name: "availability"'))
    with pytest.raises(SpecError, match=rf"already has it, at {re.escape(str(path))}:6\)$"):
        load_specs([path])


def test_a_duplicate_slo_across_two_files_names_both(tmp_path: Path) -> None:
    first, second = write(tmp_path, SLOTH, "first.yaml"), write(tmp_path, SLOTH, "second.yaml")
    with pytest.raises(SpecError) as caught:
        load_specs([first, second])
    assert str(caught.value) == (
        f"{second}:6: SLO 'availability': name: duplicate SLO (service 'payments' already has it, at {first}:6)"
    )


def test_the_same_file_given_twice_is_a_duplicate(tmp_path: Path) -> None:
    path = write(tmp_path, SLOTH)
    with pytest.raises(SpecError, match="duplicate SLO"):
        load_specs([path, path])


def test_a_sloth_and_an_openslo_slo_with_the_same_id_are_duplicates(tmp_path: Path) -> None:
    openslo = mutate(OPENSLO_INLINE, "service: orders", "service: payments")
    with pytest.raises(SpecError, match=r"openslo.yaml:1: SLO 'availability': name: duplicate SLO"):
        load_specs([write(tmp_path, SLOTH, "sloth.yaml"), write(tmp_path, openslo, "openslo.yaml")])


def test_an_indicator_ref_is_not_found_in_files_not_given(tmp_path: Path) -> None:
    _, slo_text = OPENSLO.split("---\n")
    with pytest.raises(SpecError, match=r"slo.yaml:8: SLO 'availability': spec.indicatorRef: no SLI named"):
        load_specs([write(tmp_path, slo_text, "slo.yaml")])


def test_the_first_bad_file_is_reported(tmp_path: Path) -> None:
    good = write(tmp_path, SLOTH, "good.yaml")
    bad = write(tmp_path, mutate(SLOTH, "99.99", "100"), "bad.yaml")
    worse = write(tmp_path, "version: nope\n", "worse.yaml")
    with pytest.raises(SpecError, match=rf"^{re.escape(str(bad))}:7: "):
        load_specs([good, bad, worse])


def test_a_missing_spec_file_is_a_spec_error(tmp_path: Path) -> None:
    path = tmp_path / "missing.yaml"
    with pytest.raises(SpecError) as caught:
        load_specs([path])
    assert str(caught.value) == f"{path}: cannot read: No such file or directory"


def test_a_folder_given_as_spec_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"cannot read: Is a directory"):
        load_specs([tmp_path])


# -- the suite's own specs fit the metrics instrumentation/ exports -----------------------------------

_MATCHER = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)\s*"')
_SELECTOR = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)\{([^}]*)\}")
_LABELS = {metrics.REQUESTS_TOTAL: {"service", "route", "method", "code"}}
_HISTOGRAM_LABELS = {"service", "route", "method"}


def test_the_suite_has_its_own_specs() -> None:
    assert [path.name for path in OWN_SPECS] == ["payments.yaml", "portfolio.yaml"]


@pytest.mark.parametrize("path", OWN_SPECS, ids=[p.stem for p in OWN_SPECS])
def test_the_own_latency_threshold_is_a_bucket_bound_of_the_exported_histogram(path: Path) -> None:
    latency = [slo.sli for slo in load_specs([path]) if isinstance(slo.sli, LatencySLI)]
    assert latency, "each service has a latency SLO"
    for sli in latency:
        assert sli.histogram == metrics.REQUEST_DURATION
        assert float(sli.threshold_seconds) in metrics.BUCKETS
        assert sli.le == exported_le(float(sli.threshold_seconds))  # the `le` the exporter writes


@pytest.mark.parametrize("path", OWN_SPECS, ids=[p.stem for p in OWN_SPECS])
def test_the_own_specs_meet_the_suites_targets(path: Path) -> None:
    """99.99% availability and 99% of requests within 200 ms (p99 < 200 ms), as DESIGN.md sets them."""
    slos = {slo.name: slo for slo in load_specs([path])}
    assert slos["availability"].objective == Decimal("99.99")
    assert isinstance(slos["availability"].sli, EventsSLI)
    assert slos["latency"].objective == Decimal("99")
    latency = slos["latency"].sli
    assert isinstance(latency, LatencySLI)
    assert latency.threshold_seconds == Decimal("0.2")


@pytest.mark.parametrize("path", OWN_SPECS, ids=[p.stem for p in OWN_SPECS])
def test_the_own_specs_query_only_exported_metrics_and_labels_of_their_service(path: Path) -> None:
    for slo in load_specs([path]):
        sli = slo.sli
        assert isinstance(sli, EventsSLI | LatencySLI)
        for query in (sli.error_query, sli.total_query):
            selectors = _SELECTOR.findall(query)
            assert selectors, query
            for metric, matchers in selectors:
                labels = _LABELS.get(metric)
                if labels is None:
                    assert metric in (f"{metrics.REQUEST_DURATION}_bucket", f"{metrics.REQUEST_DURATION}_count")
                    labels = _HISTOGRAM_LABELS | ({"le"} if metric.endswith("_bucket") else set())
                assert set(_MATCHER.findall(matchers)) <= labels, matchers
                assert f'service="{slo.service}"' in matchers


@pytest.mark.parametrize("path", OWN_SPECS, ids=[p.stem for p in OWN_SPECS])
def test_the_own_availability_slis_count_server_errors_as_bad(path: Path) -> None:
    availability = next(slo for slo in load_specs([path]) if slo.name == "availability")
    assert isinstance(availability.sli, EventsSLI)
    assert 'code=~"5.."' in availability.sli.error_query
    assert "code" not in availability.sli.total_query


def test_the_exported_histogram_has_the_200ms_bucket() -> None:
    assert 0.2 in metrics.BUCKETS
    assert math.inf in metrics.BUCKETS


# One minute of traffic for a service, observed by the real exporter: (route, code, seconds, requests).
# 1000 customer requests: 10 failed, 20 slower than 200 ms; and scrapes and probes the SLOs leave out.
MINUTE_OF_TRAFFIC = [
    ("/v1/payments", 201, 0.05, 900),
    ("/v1/accounts/{account_id}", 200, 0.02, 70),
    ("/v1/payments", 201, 0.3, 20),
    ("/v1/payments", 503, 0.05, 10),
    ("/healthz", 200, 0.5, 40),
    ("/metrics", 500, 0.01, 5),
]


def _exported_samples(service: str) -> dict[str, float]:
    """`/metrics` of a fresh process after one minute of traffic: series text to value (own process, no state)."""
    script = (
        "import sys\n"
        "from instrumentation import metrics\n"
        f"served = metrics.HttpServerMetrics({service!r})\n"
        f"for route, code, seconds, count in {MINUTE_OF_TRAFFIC!r}:\n"
        "    for _ in range(count):\n"
        "        served.observe(route, 'GET' if code == 200 else 'POST', code, seconds)\n"
        "sys.stdout.write(metrics.exposition('text/plain')[0].decode())\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"}
    text = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("http_server_request"):
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


@pytest.mark.parametrize("path", OWN_SPECS, ids=[p.stem for p in OWN_SPECS])
def test_the_own_slis_read_the_exported_series_as_meant(tmp_path: Path, path: Path) -> None:
    """Prometheus (promtool) runs the own rules over the exporter's own series, a minute of traffic per scrape:
    1% of customer requests fail and 2% are slow; scrapes and probes do not count."""
    service = path.stem
    per_minute = _exported_samples(service)
    series = {name: [count * minute for minute in range(16)] for name, count in per_minute.items()}
    queries = [f'slo:sli_error:ratio_rate5m{{sloth_id="{service}-{slo}"}}' for slo in ("availability", "latency")]
    got = query_promtool(
        render(load_specs([path]), RuleOptions()),
        series,
        scrape_interval=60,
        evaluation_interval=60,
        queries=queries,
        eval_times=[900],
        workdir=tmp_path,
    )
    availability, latency = (got[(query, 900.0)] for query in queries)
    assert [s.value for s in availability] == [pytest.approx(0.01)]
    assert [s.value for s in latency] == [pytest.approx(0.02)]
