"""Pyrra's `pyrra.dev/v1alpha1` `ServiceLevelObjective`, compiled to the same Sloth-shaped rules.

Each indicator kind is a row of `INDICATORS`: how its metrics become an error query and a total
query (or an error ratio). The SLO's service is its namespace, its name the object's name;
`window` is the period (the workbook's alert windows scale to it), `target` is a percent
written as a string ("99.9"), and `alerting.disabled` or `alerting.burnrates: false` turn the
burn-rate alerts off; alerts carry Pyrra's `slo` label. Pyrra's own labels for rules
(`pyrra.dev/<name>`) are carried as `<name>`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from slo.formats import document as d
from slo.formats.document import Document, FieldPath
from slo.model import PYRRA_VERSION, SLI, SLO, Alerting, AlertSpec, EventsSLI, RawSLI

DEFAULT_ALERT = "ErrorBudgetBurn"  # Pyrra's alert name when the spec gives none
LABEL_PREFIX = "pyrra.dev/"
_GO_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)$")
_GO_UNITS: Mapping[str, Decimal] = {"ms": Decimal("0.001"), "s": Decimal(1), "m": Decimal(60), "h": Decimal(3600)}


@dataclass(frozen=True)
class _Kind:
    """One indicator kind: its metric fields and how they compile."""

    metrics: tuple[str, ...]  # fields holding `{metric: <selector>}`
    extra: tuple[str, ...]  # other fields besides `grouping`
    compile: Callable[[Document, FieldPath, Mapping[str, Any], str, str], SLI]


def _sum(selector: str, grouping: str, function: str = "rate") -> str:
    return f"sum{grouping}({function}({selector}[{{{{.window}}}}]))"


def _ratio(doc: Document, at: FieldPath, body: Mapping[str, Any], by: str, slo: str) -> SLI:
    return EventsSLI(_sum(_metric(doc, at, body, "errors", slo), by), _sum(_metric(doc, at, body, "total", slo), by))


def _latency(doc: Document, at: FieldPath, body: Mapping[str, Any], by: str, slo: str) -> SLI:
    success, total = _metric(doc, at, body, "success", slo), _metric(doc, at, body, "total", slo)
    if not re.search(r'\ble\s*=\s*"', success):
        raise doc.error((*at, "success", "metric"), 'must select one bucket (le="...")', slo)
    return EventsSLI(f"({_sum(total, by)} - {_sum(success, by)})", _sum(total, by))


def _latency_native(doc: Document, at: FieldPath, body: Mapping[str, Any], by: str, slo: str) -> SLI:
    total = _metric(doc, at, body, "total", slo)
    seconds = _go_duration(doc, (*at, "latency"), body.get("latency"), slo)
    return RawSLI(f"1 - histogram_fraction(0, {seconds}, {_sum(total, by)})")


def _bool_gauge(doc: Document, at: FieldPath, body: Mapping[str, Any], by: str, slo: str) -> SLI:
    # Bad samples over all samples; a ratio of sample counts, so it is raw (no event counts to guard).
    metric = d.string(doc, (*at, "metric"), body.get("metric"), slo).strip()
    good, every = _sum(metric, by, "sum_over_time"), _sum(metric, by, "count_over_time")
    return RawSLI(f"1 - ({good}\n/\n({every} > 0))")


INDICATORS: Mapping[str, _Kind] = {
    "ratio": _Kind(("errors", "total"), (), _ratio),
    "latency": _Kind(("success", "total"), (), _latency),
    "latencyNative": _Kind(("total",), ("latency",), _latency_native),
    "bool_gauge": _Kind((), ("metric",), _bool_gauge),
    "boolGauge": _Kind((), ("metric",), _bool_gauge),
}


def _metric(doc: Document, at: FieldPath, body: Mapping[str, Any], key: str, slo: str) -> str:
    raw = body.get(key)
    d.fields(doc, (*at, key), raw, required={"metric"}, slo=slo)
    assert isinstance(raw, dict)
    return d.string(doc, (*at, key, "metric"), raw["metric"], slo).strip()


def _go_duration(doc: Document, path: FieldPath, raw: Any, slo: str) -> str:
    match = _GO_DURATION.match(raw) if isinstance(raw, str) else None
    if not match:
        raise doc.error(path, "must be a latency such as 200ms or 1s", slo)
    return format((Decimal(match.group(1)) * _GO_UNITS[match.group(2)]).normalize(), "f")


def _grouping(doc: Document, path: FieldPath, raw: Any, slo: str) -> str:
    if raw is None:
        return ""
    if not isinstance(raw, list) or not all(isinstance(g, str) and d.LABEL.match(g) for g in raw):
        raise doc.error(path, "must be a list of label names", slo)
    return f" by ({', '.join(raw)}) " if raw else ""


def read_service_level_objective(doc: Document) -> SLO:
    data = doc.data
    d.fields(doc, (), data, required={"apiVersion", "kind", "metadata", "spec"}, optional={"status"})
    metadata = data["metadata"]
    d.fields(doc, ("metadata",), metadata, required={"name"}, optional={"namespace", "labels", "annotations"})
    name = d.name(doc, ("metadata", "name"), metadata["name"])
    service = d.name(doc, ("metadata", "namespace"), metadata.get("namespace", "default"), name)
    spec, at = data["spec"], ("spec",)
    d.fields(
        doc, at, spec, required={"target", "window", "indicator"},
        optional={"description", "alerting", "partialResponseStrategy", "performOnly"}, slo=name,
    )  # fmt: skip
    objective = d.objective(doc, (*at, "target"), spec["target"], name, scale=1, text=True)
    period = _window(doc, (*at, "window"), spec["window"], name)
    description = d.string(doc, (*at, "description"), spec.get("description", ""), name, allow_empty=True)
    indicator, where = spec["indicator"], (*at, "indicator")
    d.fields(doc, where, indicator, optional=set(INDICATORS), slo=name)
    kind_name = d.one_of(doc, where, indicator, tuple(INDICATORS), name)
    kind, body, kat = INDICATORS[kind_name], indicator[kind_name], (*where, kind_name)
    d.fields(doc, kat, body, required={*kind.metrics, *kind.extra}, optional={"grouping"}, slo=name)
    by = _grouping(doc, (*kat, "grouping"), body.get("grouping"), name)
    sli = kind.compile(doc, kat, body, by, name)
    labels = _pyrra_labels(doc, metadata.get("labels"), name)
    alerting = _alerting(doc, (*at, "alerting"), spec.get("alerting"), name)
    return SLO(service, name, objective, sli, alerting, description, labels, period, PYRRA_VERSION, doc.where(()))


def _window(doc: Document, path: FieldPath, raw: Any, slo: str) -> int:
    from slo.formats.openslo import duration  # Pyrra's windows are Prometheus durations (2w, 28d, 4w)

    return duration(doc, path, raw, slo)


def _pyrra_labels(doc: Document, raw: Any, slo: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise doc.error(("metadata", "labels"), "must be a mapping", slo)
    carried = {str(k)[len(LABEL_PREFIX) :]: v for k, v in raw.items() if str(k).startswith(LABEL_PREFIX)}
    return d.labels(doc, ("metadata", "labels"), carried, slo)


_ALERTING = ("disabled", "name", "burnrates", "absent", "burnRateType")


def _alerting(doc: Document, path: FieldPath, raw: Any, slo: str) -> Alerting:
    raw = raw or {}
    d.fields(doc, path, raw, optional=set(_ALERTING), slo=slo)
    disabled = d.boolean(doc, (*path, "disabled"), raw.get("disabled", False), slo)
    burnrates = d.boolean(doc, (*path, "burnrates"), raw.get("burnrates", True), slo)
    name = d.alert_name(doc, (*path, "name"), raw.get("name") or DEFAULT_ALERT, slo)
    off = disabled or not burnrates
    # Pyrra labels its alerts with the SLO's name (`slo`), which also keeps two SLOs that share
    # the default alert name apart.
    return Alerting(name, {"slo": slo}, page=AlertSpec(disable=off), ticket=AlertSpec(disable=off))


__all__: Sequence[str] = ["INDICATORS", "read_service_level_objective"]
