"""Pyrra's `ServiceLevelObjective` (ratio, latency, latencyNative, boolGauge; grouping; window;
target as a string; alerting) compiled to the same Sloth-shaped rules, which promtool accepts."""

from __future__ import annotations

import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

from slo.errors import SpecError
from slo.rules import RuleOptions, generate, render
from slo.spec import PYRRA_VERSION, EventsSLI, RawSLI, load_specs
from tests.slo.promtool import promtool

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "pyrra"
SHAPES = sorted(FIXTURES.glob("*.yaml"))
TARGETS = {"ratio": "0.99", "latency": "0.99", "latency-native": "0.995", "bool-gauge": "0.999", "grouping": "0.9999"}


def test_every_pyrra_shape_compiles_to_rules_promtool_accepts(tmp_path: Path) -> None:
    slos = load_specs(SHAPES, strict=True)
    assert {slo.spec_version for slo in slos} == {PYRRA_VERSION}
    path = tmp_path / "rules.yml"
    path.write_text(render(slos, RuleOptions()))
    result = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr and "FAILED" not in result.stdout + result.stderr


@pytest.mark.parametrize("spec", SHAPES, ids=lambda p: p.stem)
def test_the_objective_ratio_is_the_target(spec: Path) -> None:
    (slo,) = load_specs([spec])
    objective = next(
        r for g in generate([slo], RuleOptions()) for r in g["rules"] if r.get("record") == "slo:objective:ratio"
    )
    assert objective["expr"] == f"vector({TARGETS[spec.stem]})"


def test_the_target_string_stays_exact_and_the_window_is_the_period() -> None:
    (slo,) = load_specs([FIXTURES / "bool-gauge.yaml"])
    assert slo.objective == Decimal("99.9") and slo.period == 28 * 86400
    assert (slo.service, slo.name) == ("monitoring", "prometheus-availability")


def test_a_ratio_compiles_to_errors_over_total() -> None:
    (slo,) = load_specs([FIXTURES / "ratio.yaml"])
    assert slo.sli == EventsSLI(
        'sum(rate(apiserver_request_total{component="apiserver",verb=~"LIST|GET",code=~"5.."}[{{.window}}]))',
        'sum(rate(apiserver_request_total{component="apiserver",verb=~"LIST|GET"}[{{.window}}]))',
    )


def test_a_latency_counts_the_requests_above_the_bucket_as_bad() -> None:
    (slo,) = load_specs([FIXTURES / "latency.yaml"])
    assert isinstance(slo.sli, EventsSLI)
    assert slo.sli.error_query.startswith("(sum(rate(apiserver_request_duration_seconds_count{")
    assert ' - sum(rate(apiserver_request_duration_seconds_bucket{job="apiserver"' in slo.sli.error_query


def test_grouping_keeps_its_labels_on_every_window() -> None:
    (slo,) = load_specs([FIXTURES / "grouping.yaml"])
    assert isinstance(slo.sli, EventsSLI)
    assert slo.sli.error_query.startswith("sum by (handler) (rate(")
    assert slo.sli.total_query.startswith("sum by (handler) (rate(")


def test_latency_native_and_bool_gauge_are_ratios_of_their_own() -> None:
    native, gauge = load_specs([FIXTURES / "latency-native.yaml", FIXTURES / "bool-gauge.yaml"])
    assert native.sli == RawSLI(
        "1 - histogram_fraction(0, 0.2, sum by (service, method) "
        '(rate(connect_server_requests_duration_seconds{job="pyrra",code="ok"}[{{.window}}])))'
    )
    assert isinstance(gauge.sli, RawSLI) and "sum_over_time(up{" in gauge.sli.error_ratio_query


def test_alerting_name_and_disabled_are_kept_and_pyrra_labels_carried() -> None:
    native, gauge, grouped, ratio = load_specs(
        [FIXTURES / name for name in ("latency-native.yaml", "bool-gauge.yaml", "grouping.yaml", "ratio.yaml")]
    )
    assert native.alerting.name == "PyrraConnectLatencyErrorBudgetBurn"
    assert native.alerting.labels == {"slo": "pyrra-connect-native-latency"}
    assert ratio.alerting.name == "ErrorBudgetBurn"
    assert grouped.alerting.page.disable and grouped.alerting.ticket.disable
    assert not any(g["name"].startswith("sloth-slo-alerts-") for g in generate([grouped], RuleOptions()))
    assert gauge.labels == {"team": "observability"}


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        ('target: "99"', 'target: "ninety-nine"', "must be a number"),
        ('target: "99"', 'target: "100"', "must be above 0 and below 100"),
        ("window: 2w", "window: fortnight", "not a duration"),
        (',le="1"}', "}", 'must select one bucket (le="...")'),
    ],
)
def test_a_bad_pyrra_spec_is_one_error(tmp_path: Path, old: str, new: str, reason: str) -> None:
    text = (FIXTURES / "latency.yaml").read_text()
    path = tmp_path / "slo.yaml"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(SpecError) as caught:
        load_specs([path])
    assert reason in str(caught.value) and "\n" not in str(caught.value)
