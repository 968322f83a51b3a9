"""The per-SLO Grafana dashboards: what they query, how they are laid out, and that the output is stable.

The dashboards must read only what the generated rules record, for one SLO only, in PromQL
that Prometheus accepts; `promtool check rules` is the judge of the last.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from slo.dashboard import dashboard, dashboard_uid, write_dashboards
from slo.rules import SLO_LABELS, RuleOptions, generate
from slo.spec import SLO, Alerting, RawSLI, load_specs
from tests.slo.promtool import promtool

REPO = Path(__file__).resolve().parents[2]
SPECS = sorted((REPO / "slo" / "specs").glob("*.yaml"))
DAY = 86400
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# A series name directly followed by its label matchers; the dashboards write every series so.
_SELECTOR = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)\{((?:[^}\"]|\"(?:[^\"\\]|\\.)*\")*)\}")
_MATCHER = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!=|!~|=)\s*"((?:[^"\\]|\\.)*)"')
_IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
# Words a dashboard expr may use besides series names: operators, aggregations and the labels they group by.
_PROMQL_WORDS = {"on", "group_left", "by", "max", "or"} | {"alertname", "sloth_severity", *SLO_LABELS}

SLOS = load_specs(SPECS)
OPTIONS = {"30d": RuleOptions(), "28d": RuleOptions(period=28 * DAY)}
PAIRS = [(slo, options) for slo in SLOS for options in OPTIONS.values()]
CASES = [
    pytest.param(slo, options, id=f"{slo.sloth_id}-{period}") for slo in SLOS for period, options in OPTIONS.items()
]


def _panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return list(board["panels"])


def _exprs(board: dict[str, Any]) -> Iterator[str]:
    for panel in _panels(board):
        for target in panel["targets"]:
            yield str(target["expr"])


def _recorded(slo: SLO, options: RuleOptions) -> set[str]:
    return {rule["record"] for group in generate([slo], options) for rule in group["rules"] if "record" in rule}


def _panel(board: dict[str, Any], title: str) -> dict[str, Any]:
    (panel,) = (p for p in _panels(board) if p["title"] == title)
    return panel


def _threshold_values(panel: dict[str, Any]) -> list[float]:
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    return [step["value"] for step in steps if step["value"] is not None]


def test_the_specs_give_slos_to_draw() -> None:
    assert len(SLOS) >= 2


@pytest.mark.parametrize(("slo", "options"), CASES)
def test_the_datasource_is_a_template_variable_every_panel_and_target_uses(slo: SLO, options: RuleOptions) -> None:
    board = dashboard(slo, options)
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in _panels(board):
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        assert all(target["datasource"] == DATASOURCE for target in panel["targets"]), panel["title"]


@pytest.mark.parametrize(("slo", "options"), CASES)
def test_every_expr_reads_only_series_the_rules_record_or_alerts(slo: SLO, options: RuleOptions) -> None:
    allowed = _recorded(slo, options) | {"ALERTS"}
    for expr in _exprs(dashboard(slo, options)):
        names = {name for name, _ in _SELECTOR.findall(expr)}
        assert names, expr
        assert names <= allowed, (expr, names - allowed)
        # Nothing else in the expr may name a series: what remains is PromQL's own words.
        rest = set(_IDENTIFIER.findall(_SELECTOR.sub(" ", expr)))
        assert rest <= _PROMQL_WORDS, (expr, rest - _PROMQL_WORDS)


@pytest.mark.parametrize(("slo", "options"), CASES)
def test_every_selector_names_the_slo(slo: SLO, options: RuleOptions) -> None:
    expected = {"sloth_id": slo.sloth_id, "sloth_service": slo.service, "sloth_slo": slo.name}
    for expr in _exprs(dashboard(slo, options)):
        for name, matchers in _SELECTOR.findall(expr):
            equal = {label: value for label, op, value in _MATCHER.findall(matchers) if op == "="}
            assert {k: equal.get(k) for k in expected} == expected, (name, matchers)


def test_the_stats_show_sli_objective_budget_and_time_to_exhaustion() -> None:
    board = dashboard(SLOS[0], RuleOptions())
    stats = {p["title"]: p["targets"][0]["expr"] for p in _panels(board) if p["type"] == "stat"}
    assert [name for name, _ in _SELECTOR.findall(stats["SLI over 30d"])] == ["slo:sli_error:ratio_rate30d"]
    assert stats["SLI over 30d"].startswith("1 - ")
    assert stats["Objective"].startswith("slo:objective:ratio{")
    assert stats["Error budget remaining"].startswith("slo:period_error_budget_remaining:ratio{")
    assert stats["Time to budget exhaustion"].startswith("slo:time_to_error_budget_exhaustion:seconds{")


def test_error_budget_remaining_is_a_percentage_that_turns_red_below_zero() -> None:
    defaults = _panel(dashboard(SLOS[0], RuleOptions()), "Error budget remaining")["fieldConfig"]["defaults"]
    assert defaults["unit"] == "percentunit"
    assert defaults["thresholds"] == {
        "mode": "absolute",
        "steps": [{"color": "red", "value": None}, {"color": "green", "value": 0.0}],
    }


def test_sli_vs_objective_draws_the_period_and_one_hour_slis_and_the_objective() -> None:
    panel = _panel(dashboard(SLOS[0], RuleOptions()), "SLI vs objective")
    series = {t["legendFormat"]: [n for n, _ in _SELECTOR.findall(t["expr"])] for t in panel["targets"]}
    assert series == {
        "SLI 30d": ["slo:sli_error:ratio_rate30d"],
        "SLI 1h": ["slo:sli_error:ratio_rate1h"],
        "objective": ["slo:objective:ratio"],
    }


def test_the_burn_down_follows_the_budget_remaining() -> None:
    panel = _panel(dashboard(SLOS[0], RuleOptions()), "Error budget burn-down")
    assert panel["type"] == "timeseries"
    assert [n for t in panel["targets"] for n, _ in _SELECTOR.findall(t["expr"])] == [
        "slo:period_error_budget_remaining:ratio"
    ]


def test_burn_rate_has_one_query_per_alert_window_legended_by_the_window() -> None:
    panel = _panel(dashboard(SLOS[0], RuleOptions()), "Burn rate per window")
    legends = [t["legendFormat"] for t in panel["targets"]]
    assert legends == ["5m", "30m", "1h", "2h", "6h", "1d", "3d"]
    for target in panel["targets"]:
        names = [n for n, _ in _SELECTOR.findall(target["expr"])]
        assert names == [f"slo:sli_error:ratio_rate{target['legendFormat']}", "slo:error_budget:ratio"]
    assert len({t["refId"] for t in panel["targets"]}) == len(legends)


@pytest.mark.parametrize(
    ("period", "factors"),
    [(30 * DAY, [1.0, 3.0, 6.0, 14.4]), (28 * DAY, [14 / 15, 2.8, 5.6, 13.44])],
    ids=["30d", "28d"],
)
def test_burn_rate_thresholds_are_the_page_and_ticket_factors(period: int, factors: list[float]) -> None:
    panel = _panel(dashboard(SLOS[0], RuleOptions(period=period)), "Burn rate per window")
    assert panel["fieldConfig"]["defaults"]["thresholds"]["mode"] == "absolute"
    assert panel["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"] == {"mode": "line"}
    assert _threshold_values(panel) == factors


def test_alert_state_is_a_state_timeline_of_the_slo_alerts() -> None:
    slo = SLOS[0]
    panel = _panel(dashboard(slo, RuleOptions()), "Alert state")
    assert panel["type"] == "state-timeline"
    name = slo.alerting.name
    for target in panel["targets"]:
        selectors = _SELECTOR.findall(target["expr"])
        assert {n for n, _ in selectors} == {"ALERTS"}
        for _, matchers in selectors:
            found = {(label, op, value) for label, op, value in _MATCHER.findall(matchers)}
            assert ("alertname", "=~", f"{name}|{name}BudgetExhaustion") in found
        assert "sloth_severity" in target["legendFormat"]


def test_alert_state_matches_the_alert_names_the_rules_generate() -> None:
    slo = SLOS[0]
    alerts = {rule["alert"] for group in generate([slo]) for rule in group["rules"] if "alert" in rule}
    panel = _panel(dashboard(slo, RuleOptions()), "Alert state")
    matchers = [m for _, text in _SELECTOR.findall(panel["targets"][0]["expr"]) for m in _MATCHER.findall(text)]
    (pattern,) = {value for label, _, value in matchers if label == "alertname"}
    assert alerts == set(pattern.split("|"))


@pytest.mark.parametrize(("slo", "options"), CASES)
def test_panels_do_not_overlap_and_fit_the_grid(slo: SLO, options: RuleOptions) -> None:
    boxes = [p["gridPos"] for p in _panels(dashboard(slo, options))]
    assert all(b["x"] >= 0 and b["x"] + b["w"] <= 24 and b["y"] >= 0 and b["w"] > 0 and b["h"] > 0 for b in boxes)
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            columns_meet = a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
            rows_meet = a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]
            assert not (columns_meet and rows_meet), (a, b)


def test_panel_ids_are_unique() -> None:
    ids = [p["id"] for p in _panels(dashboard(SLOS[0], RuleOptions()))]
    assert len(ids) == len(set(ids))


def test_title_tags_and_schema_name_the_slo() -> None:
    board = dashboard(SLOS[0], RuleOptions())
    assert board["title"] == f"SLO / {SLOS[0].service} / {SLOS[0].name}"
    assert board["tags"] == ["slo", SLOS[0].service]
    assert board["schemaVersion"] == 39


def test_uid_is_the_sloth_id_when_grafana_accepts_it() -> None:
    slo = next(s for s in SLOS if s.sloth_id == "payments-availability")
    assert dashboard(slo, RuleOptions())["uid"] == "slo-payments-availability"


def _named(service: str, name: str) -> SLO:
    return SLO(service, name, Decimal("99.9"), RawSLI("x[{{.window}}]"), Alerting("Burn"))


def test_uid_of_a_long_or_unusual_sloth_id_stays_short_stable_and_distinct() -> None:
    long_a, long_b = _named("a" * 30, "availability-one"), _named("a" * 30, "availability-two")
    dotted = _named("payments", "availability.v2")
    uids = [dashboard_uid(s) for s in (long_a, long_b, dotted)]
    assert all(len(uid) <= 40 and re.fullmatch(r"[A-Za-z0-9_-]+", uid) for uid in uids), uids
    assert len(set(uids)) == 3
    assert uids == [dashboard_uid(s) for s in (long_a, long_b, dotted)]


def test_write_dashboards_writes_one_sorted_indented_file_per_slo(tmp_path: Path) -> None:
    paths = write_dashboards(SLOS, RuleOptions(), tmp_path / "out")
    assert paths == [tmp_path / "out" / f"{slo.sloth_id}.json" for slo in SLOS]
    for slo, path in zip(SLOS, paths, strict=True):
        text = path.read_text()
        assert text == json.dumps(dashboard(slo, RuleOptions()), indent=2, sort_keys=True) + "\n"


def test_output_is_byte_identical_across_runs(tmp_path: Path) -> None:
    # Separate interpreters with different hash seeds: set or dict iteration order cannot leak in.
    script = (
        "import sys; from pathlib import Path; from slo.dashboard import write_dashboards; "
        "from slo.rules import RuleOptions; from slo.spec import load_specs; "
        "write_dashboards(load_specs([Path(p) for p in sys.argv[2:]]), RuleOptions(), Path(sys.argv[1]))"
    )
    runs = []
    for seed in ("1", "2"):
        out = tmp_path / seed
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run([sys.executable, "-c", script, str(out), *map(str, SPECS)], cwd=REPO, env=env, check=True)
        runs.append({p.name: p.read_bytes() for p in sorted(out.iterdir())})
    assert runs[0] == runs[1]
    assert len(runs[0]) == len(SLOS)


def test_every_panel_expr_is_valid_promql(tmp_path: Path) -> None:
    exprs = sorted({expr for slo, options in PAIRS for expr in _exprs(dashboard(slo, options))})
    rules = [{"record": f"dashboard:expr_{i}:check", "expr": expr} for i, expr in enumerate(exprs)]
    path = tmp_path / "dashboard_exprs.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard-exprs", "rules": rules}]}, width=1 << 20))
    result = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(rules)} rules found" in result.stdout
