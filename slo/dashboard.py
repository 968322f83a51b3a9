"""Grafana dashboards for SLOs: one importable dashboard JSON per SLO, over the series `slo.rules` records.

This module owns the dashboard's layout and its PromQL. It reads only what the generated rules
record (`slo:*`, `sloth_slo_info`) and `ALERTS`, so a dashboard works on any Prometheus that
loads those rules and never repeats an SLI query. Every selector names the SLO by `sloth_id`,
`sloth_service` and `sloth_slo`, as the rules' own selectors do, so two SLOs never mix on a panel.

The Prometheus data source is a template variable (`${datasource}`): the same file imports into
any Grafana without editing. Output is deterministic (sorted keys, fixed panel order and ids) so
generated files can be committed and reviewed as diffs.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from slo.durations import format_duration
from slo.rules import RuleOptions, selector
from slo.spec import SLO
from slo.windows import AlertWindows

SCHEMA_VERSION = 39
GRID_COLUMNS = 24
UID_MAX_LENGTH = 40  # Grafana refuses longer dashboard uids
DATASOURCE: dict[str, str] = {"type": "prometheus", "uid": "${datasource}"}
_ON = "on(sloth_id, sloth_slo, sloth_service)"
_UID_SAFE = re.compile(r"[^A-Za-z0-9_-]")
_UID_HASH_LENGTH = 10
# Alert state as a value, so one state-timeline row per alert and severity changes colour
# from pending to firing instead of splitting into one row per state.
_PENDING, _FIRING = 1, 2

Panel = dict[str, Any]


def dashboard(slo: SLO, options: RuleOptions) -> dict[str, Any]:
    """The Grafana dashboard of one SLO, with windows and burn-rate factors as its rules use them."""
    windows = options.windows_for(slo)
    panels = _layout(
        [
            [
                (6, 4, _current_sli(slo, windows)),
                (6, 4, _objective(slo)),
                (6, 4, _budget_remaining(slo)),
                (6, 4, _time_to_exhaustion(slo, options)),
            ],
            [(24, 8, _sli_vs_objective(slo, windows))],
            [(12, 8, _burn_down(slo)), (12, 8, _burn_rates(slo, windows))],
            [(24, 6, _alert_state(slo))],
        ]
    )
    return {
        "annotations": {"list": []},
        "description": slo.description or f"SLO {slo.name} of {slo.service}",
        "editable": True,
        "graphTooltip": 1,
        "id": None,
        "links": [],
        "panels": panels,
        "refresh": "1m",
        "schemaVersion": SCHEMA_VERSION,
        "tags": ["slo", slo.service],
        "templating": {
            "list": [
                {
                    "current": {},
                    "hide": 0,
                    "includeAll": False,
                    "label": "Prometheus",
                    "multi": False,
                    "name": "datasource",
                    "options": [],
                    "query": "prometheus",
                    "refresh": 1,
                    "regex": "",
                    "type": "datasource",
                }
            ]
        },
        "time": {"from": "now-7d", "to": "now"},
        "timepicker": {},
        "timezone": "utc",
        "title": f"SLO / {slo.service} / {slo.name}",
        "uid": dashboard_uid(slo),
        "version": 1,
    }


def dashboard_uid(slo: SLO) -> str:
    """`slo-<sloth_id>` when Grafana accepts it as a uid; else a readable prefix and a hash of the id.

    The uid is what links and provisioning point at, so it depends on the sloth_id alone: the
    same SLO keeps its URL across regenerations. The hash keeps ids that differ only in
    characters Grafana refuses, or beyond the 40th, from sharing a uid.
    """
    plain = f"slo-{slo.sloth_id}"
    if len(plain) <= UID_MAX_LENGTH and not _UID_SAFE.search(slo.sloth_id):
        return plain
    digest = hashlib.sha256(slo.sloth_id.encode()).hexdigest()[:_UID_HASH_LENGTH]
    prefix = _UID_SAFE.sub("-", slo.sloth_id)[: UID_MAX_LENGTH - len("slo--") - _UID_HASH_LENGTH]
    return f"slo-{prefix}-{digest}"


def write_dashboards(slos: Sequence[SLO], options: RuleOptions, out_dir: Path) -> list[Path]:
    """Write `<out_dir>/<sloth_id>.json` per SLO, in input order; the same input gives the same bytes."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for slo in slos:
        path = out_dir / f"{slo.sloth_id}.json"
        path.write_text(json.dumps(dashboard(slo, options), indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


# --- panels --------------------------------------------------------------------------------------


def _current_sli(slo: SLO, windows: AlertWindows) -> Panel:
    period = format_duration(windows.period)
    return _stat(
        f"SLI over {period}",
        f"Share of good events over the SLO period ({period}); red below the objective.",
        _target(f"1 - slo:sli_error:ratio_rate{period}{selector(slo)}", f"SLI {period}"),
        unit="percentunit",
        decimals=_percent_decimals(slo),
        steps=[_step("red", None), _step("green", float(slo.objective_ratio))],
    )


def _objective(slo: SLO) -> Panel:
    return _stat(
        "Objective",
        "The SLO's objective as the rules record it.",
        _target(f"slo:objective:ratio{selector(slo)}", "objective"),
        unit="percentunit",
        decimals=_percent_decimals(slo),
        steps=[_step("blue", None)],
    )


def _budget_remaining(slo: SLO) -> Panel:
    return _stat(
        "Error budget remaining",
        "Share of the period's error budget not yet spent; below 0 the SLO is breached.",
        _target(f"slo:period_error_budget_remaining:ratio{selector(slo)}", "budget remaining"),
        unit="percentunit",
        decimals=1,
        steps=[_step("red", None), _step("green", 0.0)],
    )


def _time_to_exhaustion(slo: SLO, options: RuleOptions) -> Panel:
    # Red within the horizon the BudgetExhaustion ticket uses, so the panel and the ticket agree.
    panel = _stat(
        "Time to budget exhaustion",
        "At the recent burn rate, when the remaining error budget runs out; empty while nothing burns.",
        _target(f"slo:time_to_error_budget_exhaustion:seconds{selector(slo)}", "time to exhaustion"),
        unit="s",
        decimals=None,
        steps=[_step("red", None), _step("green", float(options.exhaustion_horizon))],
    )
    panel["fieldConfig"]["defaults"]["noValue"] = "not burning"
    return panel


def _sli_vs_objective(slo: SLO, windows: AlertWindows) -> Panel:
    # The short line is the page's quick long window (1h with the workbook's windows): a window
    # the rules always record, whatever alert windows are configured.
    sel, period, short = selector(slo), format_duration(windows.period), format_duration(windows.page.quick.long)
    return _timeseries(
        "SLI vs objective",
        f"Share of good events over the period ({period}) and over {short}, against the objective.",
        [
            _target(f"1 - slo:sli_error:ratio_rate{period}{sel}", f"SLI {period}", "A"),
            _target(f"1 - slo:sli_error:ratio_rate{short}{sel}", f"SLI {short}", "B"),
            _target(f"slo:objective:ratio{sel}", "objective", "C"),
        ],
        unit="percentunit",
        decimals=_percent_decimals(slo),
        overrides=[
            {
                "matcher": {"id": "byName", "options": "objective"},
                "properties": [
                    {"id": "color", "value": {"fixedColor": "red", "mode": "fixed"}},
                    {"id": "custom.lineStyle", "value": {"dash": [10, 10], "fill": "dash"}},
                ],
            }
        ],
    )


def _burn_down(slo: SLO) -> Panel:
    return _timeseries(
        "Error budget burn-down",
        "Share of the period's error budget remaining over time.",
        [_target(f"slo:period_error_budget_remaining:ratio{selector(slo)}", "budget remaining")],
        unit="percentunit",
        decimals=1,
        steps=[_step("red", None), _step("green", 0.0)],
        threshold_style="line",
    )


def _burn_rates(slo: SLO, windows: AlertWindows) -> Panel:
    """Burn rate over every alert window, with the page and ticket factors as threshold lines.

    The factors come from the same `AlertWindows` the alerts are built from, so a line crossing
    a threshold here is what an alert condition sees (both windows of a pair must cross).
    """
    sel = selector(slo)
    targets = [
        _target(
            f"slo:sli_error:ratio_rate{format_duration(w)}{sel} / {_ON} group_left slo:error_budget:ratio{sel}",
            format_duration(w),
            _ref_id(index),
        )
        for index, w in enumerate(windows.windows)
    ]
    colors: dict[float, str] = {}
    for severity, color in ((windows.ticket, "orange"), (windows.page, "red")):  # page wins a shared factor
        for pair in severity.pairs:
            colors[float(pair.factor)] = color
    steps = [_step("green", None)] + [_step(colors[factor], factor) for factor in sorted(colors)]
    return _timeseries(
        "Burn rate per window",
        "Error ratio over each alert window divided by the error budget; 1 spends the budget exactly in the period.",
        targets,
        unit="suffix:x",
        decimals=2,
        steps=steps,
        threshold_style="line",
    )


def _alert_state(slo: SLO) -> Panel:
    name = slo.alerting.name
    matchers = selector(slo)[1:-1]

    def alerts(state: str) -> str:
        return (
            f"max by (alertname, sloth_severity) "
            f'(ALERTS{{alertstate="{state}", alertname=~"{name}|{name}BudgetExhaustion", {matchers}}})'
        )

    # `or` adds a pending row only where no firing row has the same alert and severity.
    expr = f"{alerts('firing')} * {_FIRING} or {alerts('pending')} * {_PENDING}"
    return {
        "datasource": DATASOURCE,
        "description": "The SLO's burn-rate alerts (page and ticket) and its budget-exhaustion ticket.",
        "fieldConfig": {
            "defaults": {
                "color": {"mode": "thresholds"},
                "custom": {"fillOpacity": 80, "lineWidth": 0},
                "mappings": [
                    {
                        "options": {
                            str(_PENDING): {"color": "orange", "index": 0, "text": "pending"},
                            str(_FIRING): {"color": "red", "index": 1, "text": "firing"},
                        },
                        "type": "value",
                    }
                ],
                "thresholds": {"mode": "absolute", "steps": [_step("green", None)]},
            },
            "overrides": [],
        },
        "options": {
            "alignValue": "left",
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "mergeValues": True,
            "rowHeight": 0.9,
            "showValue": "auto",
            "tooltip": {"mode": "single", "sort": "none"},
        },
        "targets": [_target(expr, "{{alertname}} {{sloth_severity}}")],
        "title": "Alert state",
        "type": "state-timeline",
    }


# --- building blocks -----------------------------------------------------------------------------


def _target(expr: str, legend: str, ref_id: str = "A") -> dict[str, Any]:
    return {
        "datasource": DATASOURCE,
        "editorMode": "code",
        "expr": expr,
        "instant": False,
        "legendFormat": legend,
        "range": True,
        "refId": ref_id,
    }


def _ref_id(index: int) -> str:
    return chr(ord("A") + index)


def _step(color: str, value: float | None) -> dict[str, Any]:
    """A threshold step; Grafana reads the first step's `null` as minus infinity."""
    return {"color": color, "value": value}


def _percent_decimals(slo: SLO) -> int:
    """One digit more than the objective has, so 99.99% never shows rounded up to 100%."""
    exponent = slo.objective.normalize().as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    return places + 1


def _stat(
    title: str,
    description: str,
    target: dict[str, Any],
    *,
    unit: str,
    decimals: int | None,
    steps: list[dict[str, Any]],
) -> Panel:
    defaults: dict[str, Any] = {
        "color": {"mode": "thresholds"},
        "mappings": [],
        "thresholds": {"mode": "absolute", "steps": steps},
        "unit": unit,
    }
    if decimals is not None:
        defaults["decimals"] = decimals
    return {
        "datasource": DATASOURCE,
        "description": description,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "colorMode": "value",
            "graphMode": "none",
            "justifyMode": "auto",
            "orientation": "auto",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "textMode": "auto",
        },
        "targets": [target],
        "title": title,
        "type": "stat",
    }


def _timeseries(
    title: str,
    description: str,
    targets: list[dict[str, Any]],
    *,
    unit: str,
    decimals: int,
    steps: list[dict[str, Any]] | None = None,
    threshold_style: str = "off",
    overrides: list[dict[str, Any]] | None = None,
) -> Panel:
    return {
        "datasource": DATASOURCE,
        "description": description,
        "fieldConfig": {
            "defaults": {
                "color": {"mode": "palette-classic"},
                "custom": {
                    "drawStyle": "line",
                    "fillOpacity": 0,
                    "lineWidth": 1,
                    "showPoints": "never",
                    "spanNulls": False,
                    "thresholdsStyle": {"mode": threshold_style},
                },
                "decimals": decimals,
                "mappings": [],
                "thresholds": {"mode": "absolute", "steps": steps or [_step("green", None)]},
                "unit": unit,
            },
            "overrides": overrides or [],
        },
        "options": {
            "legend": {"calcs": [], "displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "targets": targets,
        "title": title,
        "type": "timeseries",
    }


def _layout(rows: Sequence[Sequence[tuple[int, int, Panel]]]) -> list[Panel]:
    """Place rows of (width, height, panel) top to bottom, left to right, numbering panels from 1.

    Each row starts below the tallest panel of the row before, so no two panels overlap.
    """
    placed: list[Panel] = []
    y = 0
    for row in rows:
        x = 0
        for width, height, panel in row:
            if x + width > GRID_COLUMNS:
                raise ValueError(f"row is wider than {GRID_COLUMNS} columns")
            placed.append({**panel, "gridPos": {"h": height, "w": width, "x": x, "y": y}, "id": len(placed) + 1})
            x += width
        y += max(height for _, height, _ in row)
    return placed


__all__ = ["dashboard", "dashboard_uid", "write_dashboards"]
