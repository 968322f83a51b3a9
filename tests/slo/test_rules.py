"""Rule generation: Sloth's groups and series, exact thresholds, alerts with runbooks, traffic guard, forecast."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
import yaml

from slo.errors import SpecError
from slo.rule_yaml import dump_rule_groups, scalar
from slo.rules import RuleOptions, generate, render, runbook_url
from slo.spec import SLO, Alerting, AlertSpec, EventsSLI, LatencySLI, RawSLI

DAY = 86400
EVENTS = EventsSLI(
    'sum(rate(http_requests_total{code=~"5.."}[{{.window}}]))', "sum(rate(http_requests_total[{{.window}}]))"
)
RAW = RawSLI("sum(rate(errors_total[{{.window}}])) / sum(rate(requests_total[{{.window}}]))")
LATENCY = LatencySLI("http_server_request_duration_seconds", Decimal("0.2"), 'service="payments",route!~"/healthz"')
ALERT_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
META = [
    "slo:objective:ratio",
    "slo:error_budget:ratio",
    "slo:time_period:days",
    "slo:current_burn_rate:ratio",
    "slo:period_burn_rate:ratio",
    "slo:period_error_budget_remaining:ratio",
    "slo:time_to_error_budget_exhaustion:seconds",
    "sloth_slo_info",
]
Rule = dict[str, Any]
DEFAULTS = RuleOptions()


def an_slo(
    objective: str = "99.9",
    sli: EventsSLI | RawSLI | LatencySLI = EVENTS,
    *,
    name: str = "availability",
    service: str = "payments",
    alerting: Alerting | None = None,
    labels: Mapping[str, str] | None = None,
    period: int | None = None,
) -> SLO:
    return SLO(
        service,
        name,
        Decimal(objective),
        sli,
        alerting or Alerting("PaymentsBurn"),
        labels=dict(labels or {}),
        period=period,
        source="payments.yaml:6",
    )


def groups_of(slos: Sequence[SLO], options: RuleOptions = DEFAULTS) -> dict[str, list[Rule]]:
    return {group["name"]: group["rules"] for group in generate(slos, options)}


def sli_rules(slo: SLO, options: RuleOptions = DEFAULTS) -> list[Rule]:
    return groups_of([slo], options)[f"sloth-slo-sli-recordings-{slo.sloth_id}"]


def meta_rules(slo: SLO, options: RuleOptions = DEFAULTS) -> dict[str, Rule]:
    return {rule["record"]: rule for rule in groups_of([slo], options)[f"sloth-slo-meta-recordings-{slo.sloth_id}"]}


def alert_rules(slo: SLO, options: RuleOptions = DEFAULTS) -> list[Rule]:
    return groups_of([slo], options).get(f"sloth-slo-alerts-{slo.sloth_id}", [])


def alert(slo: SLO, severity: str, options: RuleOptions = DEFAULTS) -> Rule:
    (found,) = [
        rule
        for rule in alert_rules(slo, options)
        if rule["labels"]["sloth_severity"] == severity and not rule["alert"].endswith("BudgetExhaustion")
    ]
    return found


def exhaustion(slo: SLO, options: RuleOptions = DEFAULTS) -> Rule | None:
    found = [rule for rule in alert_rules(slo, options) if rule["alert"].endswith("BudgetExhaustion")]
    return found[0] if found else None


_CONDITION = re.compile(r"max\(slo:sli_error:ratio_rate(\w+)\{[^}]*\} > \((.+?) \* ([0-9.]+)\)\) without")


def burn_pairs(rule: Rule) -> list[tuple[str, str, str]]:
    """(window, factor, budget) for every burn-rate term of an alert, in order."""
    return _CONDITION.findall(rule["expr"])


# -- groups and recorded series -------------------------------------------------------------------


def test_each_slo_gives_sloths_three_groups_in_input_order() -> None:
    first, second = an_slo(name="availability"), an_slo(name="latency", sli=LATENCY)
    assert [group["name"] for group in generate([first, second])] == [
        "sloth-slo-sli-recordings-payments-availability",
        "sloth-slo-meta-recordings-payments-availability",
        "sloth-slo-alerts-payments-availability",
        "sloth-slo-sli-recordings-payments-latency",
        "sloth-slo-meta-recordings-payments-latency",
        "sloth-slo-alerts-payments-latency",
    ]


def test_the_sli_is_recorded_over_every_alert_window_and_the_period() -> None:
    records = [rule["record"] for rule in sli_rules(an_slo()) if rule["record"].startswith("slo:sli_error:")]
    assert records == [f"slo:sli_error:ratio_rate{w}" for w in (*ALERT_WINDOWS, "30d")]


def test_each_sli_recording_carries_its_window() -> None:
    for rule in sli_rules(an_slo()):
        assert rule["record"].endswith(rule["labels"]["sloth_window"])


def test_the_meta_recordings_are_sloths_and_the_forecast() -> None:
    assert list(meta_rules(an_slo())) == META


def test_every_recording_carries_sloth_id_service_and_slo() -> None:
    slo = an_slo()
    for rule in [*sli_rules(slo), *meta_rules(slo).values()]:
        labels = rule["labels"]
        assert (labels["sloth_id"], labels["sloth_service"], labels["sloth_slo"]) == (
            "payments-availability",
            "payments",
            "availability",
        )


def test_the_meta_recordings_carry_no_window() -> None:
    for rule in meta_rules(an_slo()).values():
        assert "sloth_window" not in rule["labels"]


def test_an_events_sli_ratio_divides_bad_by_all_events_over_the_window() -> None:
    five_minutes = sli_rules(an_slo())[0]
    assert five_minutes["expr"] == (
        '(sum(rate(http_requests_total{code=~"5.."}[5m])))\n/\n((sum(rate(http_requests_total[5m]))) > 0)\n'
    )


def test_a_raw_sli_ratio_is_its_own_query_over_the_window() -> None:
    one_hour = sli_rules(an_slo(sli=RAW))[2]
    assert one_hour["expr"] == "(sum(rate(errors_total[1h])) / sum(rate(requests_total[1h])))\n"


def test_the_period_ratio_averages_the_shortest_window_as_sloth_does() -> None:
    period = next(rule for rule in sli_rules(an_slo()) if rule["record"] == "slo:sli_error:ratio_rate30d")
    selector = '{sloth_id="payments-availability", sloth_service="payments", sloth_slo="availability"}'
    assert period["expr"] == (
        f"sum_over_time(slo:sli_error:ratio_rate5m{selector}[30d])\n"
        "/ ignoring (sloth_window)\n"
        f"count_over_time(slo:sli_error:ratio_rate5m{selector}[30d])\n"
    )


def test_burn_rates_divide_the_error_ratio_by_the_budget() -> None:
    meta = meta_rules(an_slo())
    assert meta["slo:current_burn_rate:ratio"]["expr"].startswith("slo:sli_error:ratio_rate5m{")
    assert meta["slo:period_burn_rate:ratio"]["expr"].startswith("slo:sli_error:ratio_rate30d{")
    for record in ("slo:current_burn_rate:ratio", "slo:period_burn_rate:ratio"):
        assert "/ on(sloth_id, sloth_slo, sloth_service) group_left\nslo:error_budget:ratio{" in meta[record]["expr"]
    assert meta["slo:period_error_budget_remaining:ratio"]["expr"].startswith("1 - slo:period_burn_rate:ratio{")


def test_the_slo_info_series_names_objective_spec_and_mode() -> None:
    labels = meta_rules(an_slo("99.95"))["sloth_slo_info"]["labels"]
    assert labels["sloth_objective"] == "99.95"
    assert labels["sloth_spec"] == "prometheus/v1"
    assert labels["sloth_mode"] == "cli-gen-prom"
    assert labels["sloth_version"] == "nova-slo/1"


def test_the_time_period_is_recorded_in_days() -> None:
    assert meta_rules(an_slo())["slo:time_period:days"]["expr"] == "vector(30)"
    assert meta_rules(an_slo(), RuleOptions(period=28 * DAY))["slo:time_period:days"]["expr"] == "vector(28)"
    assert meta_rules(an_slo(period=7 * DAY))["slo:time_period:days"]["expr"] == "vector(7)"


def test_a_28_day_period_is_recorded_as_4w() -> None:
    records = [rule["record"] for rule in sli_rules(an_slo(), RuleOptions(period=28 * DAY))]
    assert "slo:sli_error:ratio_rate4w" in records
    assert "slo:sli_error:ratio_rate28d" not in records


def test_slo_labels_are_carried_on_every_recording() -> None:
    slo = an_slo(labels={"owner": "payments-sre", "tier": "1"})
    for rule in [*sli_rules(slo), *meta_rules(slo).values()]:
        assert rule["labels"]["owner"] == "payments-sre"
        assert rule["labels"]["tier"] == "1"


def test_a_period_no_longer_than_the_longest_alert_window_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match=r"^payments.yaml:6: SLO 'availability': period: the SLO period 1d must be"):
        generate([an_slo()], RuleOptions(period=DAY))


# -- exact thresholds ------------------------------------------------------------------------------


def test_objective_99_99_gives_a_budget_of_exactly_0_0001() -> None:
    slo = an_slo("99.99")
    assert meta_rules(slo)["slo:error_budget:ratio"]["expr"] == "vector(0.0001)"
    assert meta_rules(slo)["slo:objective:ratio"]["expr"] == "vector(0.9999)"
    assert "(14.4 * 0.0001)" in alert(slo, "page")["expr"]


def test_objective_99_9_gives_0_001_never_its_binary_rounding() -> None:
    slo = an_slo(repr(99.9))
    text = render([slo])
    assert "vector(0.001)" in text
    assert "(14.4 * 0.001)" in text
    assert "0.0009999999999999432" not in text
    assert "0.000999" not in text


@pytest.mark.parametrize(
    ("objective", "budget"),
    [
        ("90", "0.1"),
        ("95", "0.05"),
        ("99", "0.01"),
        ("99.5", "0.005"),
        ("99.9", "0.001"),
        ("99.95", "0.0005"),
        ("99.99", "0.0001"),
        ("99.995", "0.00005"),
        ("99.999", "0.00001"),
        ("99.9999", "0.000001"),
    ],
)
def test_every_threshold_is_written_exactly(objective: str, budget: str) -> None:
    slo = an_slo(objective)
    assert meta_rules(slo)["slo:error_budget:ratio"]["expr"] == f"vector({budget})"
    page, ticket = alert(slo, "page"), alert(slo, "ticket")
    assert burn_pairs(page) == [
        ("5m", "14.4", budget),
        ("1h", "14.4", budget),
        ("30m", "6", budget),
        ("6h", "6", budget),
    ]
    assert burn_pairs(ticket) == [("2h", "3", budget), ("1d", "3", budget), ("6h", "1", budget), ("3d", "1", budget)]


def test_a_factor_without_a_finite_decimal_is_written_as_a_division() -> None:
    ticket = alert(an_slo(), "ticket", RuleOptions(period=28 * DAY))
    assert "((14 / 15) * 0.001)" in ticket["expr"]
    assert "0.9333" not in ticket["expr"]


def test_28_day_factors_are_13_44_5_6_2_8_and_14_15() -> None:
    options = RuleOptions(period=28 * DAY)
    factors = [
        factor
        for rule in (alert(an_slo(), s, options) for s in ("page", "ticket"))
        for _, factor, _ in burn_pairs(rule)
    ]
    assert factors == ["13.44", "13.44", "5.6", "5.6", "2.8", "2.8", "(14 / 15)", "(14 / 15)"]


# -- alerts -----------------------------------------------------------------------------------------


def test_one_alert_name_fires_at_page_and_ticket_severity_plus_the_exhaustion_ticket() -> None:
    rules = alert_rules(an_slo())
    assert [(rule["alert"], rule["labels"]["sloth_severity"]) for rule in rules] == [
        ("PaymentsBurn", "page"),
        ("PaymentsBurn", "ticket"),
        ("PaymentsBurnBudgetExhaustion", "ticket"),
    ]


def test_page_is_14_4x_over_1h_and_5m_or_6x_over_6h_and_30m() -> None:
    assert [(w, f) for w, f, _ in burn_pairs(alert(an_slo(), "page"))] == [
        ("5m", "14.4"),
        ("1h", "14.4"),
        ("30m", "6"),
        ("6h", "6"),
    ]
    assert "\nor\n" in alert(an_slo(), "page")["expr"]


def test_ticket_is_3x_over_1d_and_2h_or_1x_over_3d_and_6h() -> None:
    assert [(w, f) for w, f, _ in burn_pairs(alert(an_slo(), "ticket"))] == [
        ("2h", "3"),
        ("1d", "3"),
        ("6h", "1"),
        ("3d", "1"),
    ]


def test_burn_terms_drop_the_window_label_so_both_windows_match() -> None:
    expr = alert(an_slo(), "page")["expr"]
    assert expr.count("without (sloth_window)") == expr.count("max(")


@pytest.mark.parametrize("kind", ["page", "ticket", "budget-exhaustion"])
def test_every_alert_has_a_runbook_url_named_after_its_slo_and_kind(kind: str) -> None:
    rules = {
        "page": alert(an_slo(), "page"),
        "ticket": alert(an_slo(), "ticket"),
        "budget-exhaustion": exhaustion(an_slo()),
    }
    rule = rules[kind]
    assert rule is not None
    assert rule["annotations"]["runbook_url"] == f"runbooks/payments-availability-{kind}.md"


def test_the_runbook_base_may_be_a_url() -> None:
    options = RuleOptions(runbook_base="https://runbooks.example.com/slo/")
    urls = [rule["annotations"]["runbook_url"] for rule in alert_rules(an_slo(), options)]
    assert urls == [
        "https://runbooks.example.com/slo/payments-availability-page.md",
        "https://runbooks.example.com/slo/payments-availability-ticket.md",
        "https://runbooks.example.com/slo/payments-availability-budget-exhaustion.md",
    ]
    assert runbook_url("runbooks", an_slo(), "page") == "runbooks/payments-availability-page.md"


def test_a_runbook_url_set_by_the_spec_wins() -> None:
    page = AlertSpec(annotations={"runbook_url": "https://wiki.example.com/payments-paging"})
    slo = an_slo(alerting=Alerting("PaymentsBurn", page=page))
    assert alert(slo, "page")["annotations"]["runbook_url"] == "https://wiki.example.com/payments-paging"
    assert alert(slo, "ticket")["annotations"]["runbook_url"] == "runbooks/payments-availability-ticket.md"


def test_an_alerting_level_runbook_url_applies_to_every_alert() -> None:
    alerting = Alerting("PaymentsBurn", annotations={"runbook_url": "https://wiki.example.com/payments"})
    urls = {rule["annotations"]["runbook_url"] for rule in alert_rules(an_slo(alerting=alerting))}
    assert urls == {"https://wiki.example.com/payments"}


def test_spec_alert_labels_and_annotations_are_carried_to_the_right_severities() -> None:
    alerting = Alerting(
        "PaymentsBurn",
        labels={"category": "availability"},
        annotations={"dashboard": "grafana/payments.json"},
        page=AlertSpec(labels={"severity": "critical"}, annotations={"pager": "yes"}),
        ticket=AlertSpec(labels={"severity": "warning", "channel": "#payments"}),
    )
    slo = an_slo(alerting=alerting)
    page, ticket, forecast = alert(slo, "page"), alert(slo, "ticket"), exhaustion(slo)
    assert forecast is not None
    assert page["labels"] == {"category": "availability", "severity": "critical", "sloth_severity": "page"}
    assert ticket["labels"] == {
        "category": "availability",
        "channel": "#payments",
        "severity": "warning",
        "sloth_severity": "ticket",
    }
    assert forecast["labels"] == ticket["labels"]
    for rule in (page, ticket, forecast):
        assert rule["annotations"]["dashboard"] == "grafana/payments.json"
    assert page["annotations"]["pager"] == "yes"
    assert "pager" not in ticket["annotations"]


def test_spec_annotations_override_the_generated_ones() -> None:
    alerting = Alerting("PaymentsBurn", annotations={"summary": "Payments fail."})
    assert alert(an_slo(alerting=alerting), "page")["annotations"]["summary"] == "Payments fail."


def test_alerts_have_a_summary_and_a_title_by_default() -> None:
    annotations = alert(an_slo(), "page")["annotations"]
    assert (
        annotations["summary"]
        == "{{$labels.sloth_service}} {{$labels.sloth_slo}} SLO error budget burn rate is over expected."
    )
    assert annotations["title"].startswith("(page) ")


def test_a_disabled_ticket_alert_also_drops_the_exhaustion_ticket() -> None:
    slo = an_slo(alerting=Alerting("PaymentsBurn", ticket=AlertSpec(disable=True)))
    assert [rule["labels"]["sloth_severity"] for rule in alert_rules(slo)] == ["page"]


def test_a_disabled_page_alert_keeps_the_tickets() -> None:
    slo = an_slo(alerting=Alerting("PaymentsBurn", page=AlertSpec(disable=True)))
    assert [rule["alert"] for rule in alert_rules(slo)] == ["PaymentsBurn", "PaymentsBurnBudgetExhaustion"]
    assert alert(slo, "ticket")


def test_an_slo_with_every_alert_disabled_has_no_alert_group() -> None:
    off = AlertSpec(disable=True)
    slo = an_slo(alerting=Alerting("PaymentsBurn", page=off, ticket=off))
    assert [group["name"] for group in generate([slo])] == [
        "sloth-slo-sli-recordings-payments-availability",
        "sloth-slo-meta-recordings-payments-availability",
    ]


# -- traffic guard ------------------------------------------------------------------------------------


@pytest.mark.parametrize("sli", [EVENTS, LATENCY], ids=["events", "latency"])
def test_the_traffic_guard_holds_each_pair_to_bad_events_in_its_long_window(sli: EventsSLI | LatencySLI) -> None:
    slo = an_slo(sli=sli)
    for severity, longs in (("page", ("1h", "6h")), ("ticket", ("1d", "3d"))):
        expr = alert(slo, severity)["expr"]
        guards = re.findall(r"max\(slo:sli_bad_events:increase(\w+)\{[^}]*\} >= (\d+)\) without \(sloth_window\)", expr)
        assert guards == [(longs[0], "5"), (longs[1], "5")]


@pytest.mark.parametrize("sli", [EVENTS, LATENCY], ids=["events", "latency"])
def test_bad_events_are_recorded_over_each_long_window(sli: EventsSLI | LatencySLI) -> None:
    rules = [rule for rule in sli_rules(an_slo(sli=sli)) if rule["record"].startswith("slo:sli_bad_events:")]
    assert [rule["record"] for rule in rules] == [f"slo:sli_bad_events:increase{w}" for w in ("1h", "6h", "1d", "3d")]
    assert rules[0]["expr"].endswith(") * 3600")
    assert rules[0]["labels"]["sloth_window"] == "1h"


def test_the_traffic_guard_uses_the_configured_minimum() -> None:
    assert ">= 12) without (sloth_window)" in alert(an_slo(), "page", RuleOptions(min_bad_events=12))["expr"]


def test_a_raw_sli_has_no_traffic_guard() -> None:
    slo = an_slo(sli=RAW)
    assert "sli_bad_events" not in render([slo])


def test_min_bad_events_0_turns_the_traffic_guard_off() -> None:
    for sli in (EVENTS, LATENCY):
        assert "sli_bad_events" not in render([an_slo(sli=sli)], RuleOptions(min_bad_events=0))


# -- budget-exhaustion forecast -----------------------------------------------------------------------


def test_the_exhaustion_ticket_fires_below_the_default_3_day_horizon() -> None:
    forecast = exhaustion(an_slo())
    assert forecast is not None
    assert forecast["alert"] == "PaymentsBurnBudgetExhaustion"
    assert forecast["expr"].startswith("slo:time_to_error_budget_exhaustion:seconds{")
    assert forecast["expr"].endswith(" < 259200")
    assert "within 3d" in forecast["annotations"]["summary"]


def test_the_exhaustion_ticket_uses_the_configured_horizon() -> None:
    forecast = exhaustion(an_slo(), RuleOptions(exhaustion_horizon=DAY))
    assert forecast is not None
    assert forecast["expr"].endswith(" < 86400")
    assert "within 1d" in forecast["annotations"]["summary"]


def test_the_forecast_divides_the_budget_left_by_the_burn_over_the_page_slow_window() -> None:
    expr = meta_rules(an_slo())["slo:time_to_error_budget_exhaustion:seconds"]["expr"]
    assert expr.startswith("slo:period_error_budget_remaining:ratio{")
    assert " * 2592000\n" in expr
    assert "slo:sli_error:ratio_rate6h{" in expr
    assert "> 0)" in expr  # no burn, no forecast (not a division by zero)


# -- the latency SLI ------------------------------------------------------------------------------------


def test_the_latency_sli_counts_requests_above_the_bucket_bound_as_bad() -> None:
    expr = sli_rules(an_slo("99", LATENCY))[0]["expr"]
    assert 'http_server_request_duration_seconds_bucket{service="payments",route!~"/healthz",le="0.2"}[5m]' in expr
    assert 'http_server_request_duration_seconds_count{service="payments",route!~"/healthz"}[5m]' in expr
    assert expr == (
        '((sum(rate(http_server_request_duration_seconds_count{service="payments",route!~"/healthz"}[5m]))'
        ' - sum(rate(http_server_request_duration_seconds_bucket{service="payments",route!~"/healthz",le="0.2"}'
        "[5m]))))\n/\n"
        '((sum(rate(http_server_request_duration_seconds_count{service="payments",route!~"/healthz"}[5m]))) > 0)\n'
    )


# -- the rule file ----------------------------------------------------------------------------------------


def test_the_rule_file_reads_back_as_the_generated_groups() -> None:
    alerting = Alerting(
        "PaymentsBurn",
        labels={"team": "payments", "tier": "1"},
        annotations={"summary": "true", "note": "a: b #c", "since": "2024-01-01"},
        ticket=AlertSpec(labels={"channel": "#payments"}),
    )
    slos = [
        an_slo("99.99", alerting=alerting, labels={"owner": "payments-sre", "release": "2024-13-01"}),
        an_slo("99", LATENCY, name="latency"),
        an_slo("99.5", RAW, name="raw", period=28 * DAY),
    ]
    text = render(slos, RuleOptions(), ["payments.yaml"])
    assert yaml.safe_load(text) == {"groups": generate(slos)}


def test_the_rule_file_starts_with_a_generated_header() -> None:
    text = render([an_slo()], RuleOptions(), ["a.yaml", "b.yaml"])
    assert text.startswith("# Code generated by `nova slo rules` (nova-slo/1) from a.yaml, b.yaml.\n# DO NOT EDIT.\n\n")


def test_rendering_the_same_specs_twice_gives_the_same_bytes() -> None:
    slos = [an_slo(labels={"b": "2", "a": "1"}), an_slo(name="latency", sli=LATENCY)]
    assert render(slos) == render(list(slos))


def test_label_order_in_the_spec_does_not_change_the_output() -> None:
    one = an_slo(labels={"b": "2", "a": "1"})
    other = replace(one, labels={"a": "1", "b": "2"})
    assert render([one]) == render([other])


def test_an_openslo_slo_says_so_in_its_info_series() -> None:
    slo = replace(an_slo(), spec_version="openslo/v1")
    assert meta_rules(slo)["sloth_slo_info"]["labels"]["sloth_spec"] == "openslo/v1"


@pytest.mark.parametrize(
    "text",
    [
        "plain",
        "payments-sre",
        "grafana/slo-payments.json",
        "https://runbooks.example.com/x.md",
        "",
        " leading",
        "trailing ",
        "true",
        "no",
        "on",
        "null",
        "~",
        "1",
        "1.0",
        "0x1F",
        ".inf",
        "2024-01-01",
        "2024-13-01",
        "12:30",
        "#alerts",
        "a #b",
        "a: b",
        "ends:",
        "- item",
        "*alias",
        "&anchor",
        "!tag",
        "%directive",
        "@at",
        "`tick",
        "'single'",
        '"double"',
        "{{$labels.sloth_service}} is {{ $value | humanizeDuration }}",
        "[list]",
        "{map}",
        "tab\there",
        "back\\slash",
        "line\nbreak",
        "ünïcödé",
    ],
)
def test_a_scalar_reads_back_as_exactly_the_text(text: str) -> None:
    assert yaml.safe_load(f"key: {scalar(text)}\n") == {"key": text}


def test_multi_line_expressions_are_block_literals_that_read_back_exactly() -> None:
    expr = "(\n    a\n    and\n    b\n)\nor\nc\n"
    text = dump_rule_groups([{"name": "g", "rules": [{"record": "r", "expr": expr, "labels": {"x": "1"}}]}])
    assert "    expr: |\n      (\n          a\n          and\n" in text
    assert yaml.safe_load(text)["groups"][0]["rules"][0]["expr"] == expr
