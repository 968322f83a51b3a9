"""OpenSLO v1 read whole: every kind checked, every budgeting method and window compiled, alert
policies mapped onto the generated alerts; a source that is not Prometheus is valid but not compiled."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import pytest

from slo.errors import SpecError
from slo.rules import RuleOptions, generate
from slo.spec import EventsSLI, RawSLI, TimesliceSLI, UncompilableSLI, load_specs

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "openslo"
EXAMPLES = ["timeslices.yaml", "ratio-timeslices.yaml", "low-traffic-timeslices.yaml", "occurrences-threshold.yaml"]
FULL = FIXTURES / "prometheus-v1.yaml"


@pytest.mark.parametrize("name", EXAMPLES)
def test_each_openslo_example_is_valid(name: str) -> None:
    slos = load_specs([FIXTURES / name], strict=True)
    assert slos and all(isinstance(slo.sli, UncompilableSLI) for slo in slos)


@pytest.mark.parametrize("name", EXAMPLES)
def test_rules_refuse_a_source_they_cannot_compile_in_one_line_naming_it(name: str) -> None:
    with pytest.raises(SpecError) as caught:
        generate(load_specs([FIXTURES / name]), RuleOptions())
    assert "\n" not in str(caught.value)
    assert "metric source type 'Any' cannot be compiled to Prometheus rules" in str(caught.value)


def test_several_objectives_give_one_slo_each() -> None:
    slos = load_specs([FIXTURES / "timeslices.yaml"])
    assert [(s.name, str(s.objective)) for s in slos] == [("service-availability-0", "99.5"),
                                                         ("service-availability-1", "99")]  # fmt: skip


def by_name() -> dict[str, object]:
    return {slo.name: slo for slo in load_specs([FULL], strict=True)}


def test_every_kind_of_a_full_prometheus_set_is_read_into_its_slos() -> None:
    slos = load_specs([FULL], strict=True)
    assert [slo.name for slo in slos] == [
        "availability", "errors", "error-ratio", "minutes-available", "mean-minute-success", "latency-p99",
    ]  # fmt: skip
    assert {slo.service for slo in slos} == {"checkout"}


def test_an_alert_policy_names_the_alert_and_its_conditions_choose_the_severities() -> None:
    slo = load_specs([FULL])[0]
    assert slo.alerting.name == "CheckoutBudgetBurn"
    assert not slo.alerting.page.disable and not slo.alerting.ticket.disable
    assert slo.alerting.labels == {"team": "checkout"}
    note = slo.alerting.annotations["openslo_alert_conditions"]
    assert "burn rate gte 14.4 over 1h for 5m" in note and "burn rate gte 1 over 3d" in note


def test_a_policy_with_only_a_page_condition_writes_no_ticket(tmp_path: Path) -> None:
    text = FULL.read_text().replace("        severity: ticket\n", "        severity: critical\n", 1)
    path = tmp_path / "slos.yaml"
    path.write_text(text)
    slo = load_specs([path])[0]
    assert not slo.alerting.page.disable and slo.alerting.ticket.disable
    alerts = [r for g in generate([slo], RuleOptions()) for r in g["rules"] if "alert" in r]
    assert {r["labels"]["sloth_severity"] for r in alerts} == {"page"}


def test_labels_with_list_values_are_joined() -> None:
    assert load_specs([FULL])[0].labels == {"tier": "gold,external"}


def test_bad_over_total_and_a_bare_counter_selector_compile_to_events() -> None:
    slo = load_specs([FULL])[1]
    assert isinstance(slo.sli, EventsSLI)
    assert slo.sli.total_query == "sum(rate(checkout_requests_total[{{.window}}]))"
    assert slo.period == 30 * 86400  # a calendar month, as a 30-day rolling period


def test_a_raw_failure_ratio_is_the_error_ratio() -> None:
    slo = load_specs([FULL])[2]
    assert slo.sli == RawSLI("checkout:error_ratio:rate{{.window}}")


def test_timeslices_compile_a_bad_slice_indicator_per_slice() -> None:
    slos = load_specs([FULL])
    minutes, mean, p99 = slos[3].sli, slos[4].sli, slos[5].sli
    assert isinstance(minutes, TimesliceSLI) and minutes.slice_seconds == 60
    assert minutes.slice_error_query.endswith("< bool 0.95")
    assert isinstance(mean, TimesliceSLI) and mean.slice_seconds == 300 and "bool" not in mean.slice_error_query
    assert isinstance(p99, TimesliceSLI) and p99.slice_error_query.endswith("> bool 0.3")  # lte 0.3 misses above


def test_a_timeslice_slo_is_evaluated_once_per_slice() -> None:
    groups = generate(load_specs([FULL])[3:4], RuleOptions())
    assert groups[0]["interval"] == "1m"
    assert groups[0]["rules"][0]["record"] == "slo:sli_timeslice_error:ratio"


def test_a_slice_that_does_not_divide_the_windows_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "slos.yaml"
    path.write_text(FULL.read_text().replace("timeSliceWindow: 5m", "timeSliceWindow: 7m"))
    with pytest.raises(SpecError, match=r"time slice 7m does not divide the window 5m"):
        generate(load_specs([path]), RuleOptions())


BAD = [
    ("metricSourceRef: prometheus-main\n        spec:\n          query: sum(rate(checkout_requests_total{code",
     "metricSourceRef: prometheus-other\n        spec:\n          query: sum(rate(checkout_requests_total{code",
     "no DataSource named 'prometheus-other'"),
    ("    kind: burnrate\n    op: gte\n    threshold: 14.4", "    kind: errors\n    op: gte\n    threshold: 14.4",
     "must be burnrate, not 'errors'"),
    ("    - conditionRef: fast-burn", "    - conditionRef: fastest-burn", "no AlertCondition named 'fastest-burn'"),
    ("    - alertPolicyRef: checkout-budget-burn", "    - alertPolicyRef: nobody", "no AlertPolicy named 'nobody'"),
    ("  budgetingMethod: RatioTimeslices", "  budgetingMethod: Sometimes", "must be one of Occurrences, Timeslices"),
    ("      op: lte\n      value: 0.3", "      op: le\n      value: 0.3", "op: must be one of lt, lte, gt, gte"),
    ("      op: lte\n      value: 0.3\n", "", "op: is required for a thresholdMetric"),
    ("  type: Prometheus\n  connectionDetails", "  connectionDetails", "spec.type: is required"),
]  # fmt: skip


@pytest.mark.parametrize(("old", "new", "reason"), BAD, ids=[b[2] for b in BAD])
def test_a_malformed_document_of_any_kind_is_one_error(tmp_path: Path, old: str, new: str, reason: str) -> None:
    text = FULL.read_text()
    assert old in text
    path = tmp_path / "slos.yaml"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(SpecError) as caught:
        load_specs([path])
    assert reason in str(caught.value) and "\n" not in str(caught.value)
    assert re.match(rf"{re.escape(str(path))}:\d+: ", str(caught.value))


def test_each_alert_condition_is_a_window_pair_burning_at_its_threshold() -> None:
    slo = load_specs([FULL])[0]
    assert slo.alert_windows is not None
    (page,) = slo.alert_windows.page.pairs
    (ticket,) = slo.alert_windows.ticket.pairs
    assert (page.short, page.long, page.factor) == (300, 3600, Fraction("14.4"))
    assert (ticket.short, ticket.long, ticket.factor) == (6 * 3600, 3 * 86400, Fraction(1))
    alerts = [r for g in generate([slo], RuleOptions(min_bad_events=0)) for r in g["rules"] if "alert" in r]
    page_rule = next(r for r in alerts if r["labels"]["sloth_severity"] == "page")
    assert "slo:sli_error:ratio_rate1h" in page_rule["expr"] and "(14.4 * 0.001)" in page_rule["expr"]
    assert "ratio_rate6h" not in page_rule["expr"]  # one condition, one pair


def test_a_lookback_as_long_as_the_window_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "slos.yaml"
    path.write_text(FULL.read_text().replace("lookbackWindow: 3d", "lookbackWindow: 4w", 1))
    with pytest.raises(SpecError, match="lookbackWindow: must be shorter than the SLO's time window"):
        load_specs([path])
