"""Sloth's specs, read as Sloth reads them: `prometheus/v1` files and the Kubernetes
`sloth.slok.dev/v1` `PrometheusServiceLevel`.

The two spell the same fields differently (`error_query` in files, `errorQuery` in the CRD);
`SPELLINGS` is that difference as data, and one reader serves both. `alerting.name` is needed
only when an alert is enabled. Sloth's Go plugins (`sli.plugin`, `plugins`, `slo_plugins`) are
not run: naming one is a one-line error that names the plugin.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from slo.formats import document as d
from slo.formats.document import Document, FieldPath
from slo.model import (
    SLI,
    SLO,
    SLOTH_KUBERNETES_VERSION,
    SLOTH_VERSION,
    Alerting,
    AlertSpec,
    EventsSLI,
    LatencySLI,
    RawSLI,
)


@dataclass(frozen=True)
class Spelling:
    """How one Sloth flavour names the fields that differ between the file spec and the CRD."""

    version: str
    error_query: str
    total_query: str
    error_ratio_query: tuple[str, ...]  # the first is the current name, the others still read
    page_alert: str
    ticket_alert: str
    service_plugins: str


SPELLINGS: Mapping[str, Spelling] = {
    SLOTH_VERSION: Spelling(
        SLOTH_VERSION, "error_query", "total_query", ("errorRatioQuery", "error_ratio_query"),
        "page_alert", "ticket_alert", "slo_plugins",
    ),
    SLOTH_KUBERNETES_VERSION: Spelling(
        SLOTH_KUBERNETES_VERSION, "errorQuery", "totalQuery", ("errorRatioQuery",),
        "pageAlert", "ticketAlert", "sloPlugins",
    ),
}  # fmt: skip


@dataclass(frozen=True)
class KubernetesServiceLevel:
    """Where a `PrometheusServiceLevel`'s rules go: a `PrometheusRule` of the same name and namespace."""

    name: str
    namespace: str
    labels: Mapping[str, str]


def read_prometheus_v1(doc: Document) -> list[SLO]:
    """A `version: prometheus/v1` document."""
    data = doc.data
    d.fields(doc, (), data, required={"version", "service", "slos"}, optional={"labels", "slo_plugins"})
    return _read_service(doc, (), data, SPELLINGS[SLOTH_VERSION])


def read_kubernetes(doc: Document) -> tuple[KubernetesServiceLevel, list[SLO]]:
    """A `sloth.slok.dev/v1` `PrometheusServiceLevel`: its SLOs and the rule resource they go to."""
    data = doc.data
    d.fields(doc, (), data, required={"apiVersion", "kind", "metadata", "spec"}, optional={"status"})
    metadata = data["metadata"]
    d.fields(
        doc, ("metadata",), metadata, required={"name"},
        optional={"namespace", "labels", "annotations", "uid", "resourceVersion", "generation", "creationTimestamp"},
    )  # fmt: skip
    name = d.name(doc, ("metadata", "name"), metadata["name"])
    namespace = d.name(doc, ("metadata", "namespace"), metadata.get("namespace", "default"))
    labels = metadata.get("labels") or {}
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise doc.error(("metadata", "labels"), "must be a mapping of label names to strings")
    spelling = SPELLINGS[SLOTH_KUBERNETES_VERSION]
    d.fields(doc, ("spec",), data["spec"], required={"service", "slos"}, optional={"labels", "sloPlugins"})
    return KubernetesServiceLevel(name, namespace, dict(labels)), _read_service(doc, ("spec",), data["spec"], spelling)


def _read_service(doc: Document, at: FieldPath, body: dict[str, Any], spelling: Spelling) -> list[SLO]:
    _refuse_plugins(doc, (*at, spelling.service_plugins), body.get(spelling.service_plugins), None)
    service = d.name(doc, (*at, "service"), body["service"])
    labels = d.labels(doc, (*at, "labels"), body.get("labels"))
    raw_slos = body["slos"]
    if not isinstance(raw_slos, list) or not raw_slos:
        raise doc.error((*at, "slos"), "must be a non-empty list of SLOs")
    return [_read_slo(doc, (*at, "slos", i), raw, service, labels, spelling) for i, raw in enumerate(raw_slos)]


def _refuse_plugins(doc: Document, path: FieldPath, raw: Any, slo: str | None) -> None:
    """Sloth's SLO plugin chain (`{chain: [{id: ...}]}`) names Go code this generator does not run."""
    if raw is None:
        return
    chain = raw.get("chain") if isinstance(raw, dict) else None
    ids = [item.get("id") for item in chain or () if isinstance(item, dict)]
    named = ", ".join(repr(i) for i in ids if i) or "(unnamed)"
    raise doc.error(path, f"Sloth Go plugin {named} is not supported: plugins are Go code, not run here", slo)


def _read_slo(
    doc: Document, path: FieldPath, raw: Any, service: str, labels: Mapping[str, str], spelling: Spelling
) -> SLO:
    if not isinstance(raw, dict):
        raise doc.error(path, "an SLO must be a mapping", slo=None)
    slo = raw.get("name") if isinstance(raw.get("name"), str) else None
    d.fields(
        doc, path, raw, required={"name", "objective", "sli"},
        optional={"description", "labels", "alerting", "plugins"}, slo=slo,
    )  # fmt: skip
    name = d.name(doc, (*path, "name"), raw["name"])
    _refuse_plugins(doc, (*path, "plugins"), raw.get("plugins"), name)
    objective = d.objective(doc, (*path, "objective"), raw["objective"], name, scale=1)
    description = d.string(doc, (*path, "description"), raw.get("description", ""), name, allow_empty=True)
    merged = {**labels, **d.labels(doc, (*path, "labels"), raw.get("labels"), name)}
    sli = _read_sli(doc, (*path, "sli"), raw["sli"], name, spelling)
    alerting = _read_alerting(doc, (*path, "alerting"), raw.get("alerting"), name, spelling)
    return SLO(service, name, objective, sli, alerting, description, merged, None, spelling.version, doc.where(path))


def _read_sli(doc: Document, path: FieldPath, raw: Any, slo: str, spelling: Spelling) -> SLI:
    d.fields(doc, path, raw, optional={"events", "raw", "latency", "plugin"}, slo=slo)
    if isinstance(raw.get("plugin"), dict):
        plugin = raw["plugin"].get("id") or "(unnamed)"
        raise doc.error(
            (*path, "plugin"), f"Sloth Go plugin {plugin!r} is not supported: give events or raw queries", slo
        )
    kind = d.one_of(doc, path, raw, ("events", "raw", "latency"), slo)
    body, at = raw[kind], (*path, kind)
    if kind == "events":
        d.fields(doc, at, body, required={spelling.error_query, spelling.total_query}, slo=slo)
        return EventsSLI(
            d.query(doc, (*at, spelling.error_query), body[spelling.error_query], slo),
            d.query(doc, (*at, spelling.total_query), body[spelling.total_query], slo),
        )
    if kind == "raw":
        d.fields(doc, at, body, optional=set(spelling.error_ratio_query), slo=slo)
        key = next((k for k in spelling.error_ratio_query if body.get(k) is not None), spelling.error_ratio_query[0])
        if body.get(key) in (None, ""):
            raise doc.error((*at, key), "is required", slo)
        return RawSLI(d.query(doc, (*at, key), body[key], slo))
    return _read_latency(doc, at, body, slo)


def _read_latency(doc: Document, at: FieldPath, body: Any, slo: str) -> LatencySLI:
    """The suite's latency SLI: bad events are requests slower than a histogram bucket bound."""
    d.fields(doc, at, body, required={"histogram", "threshold_seconds"}, optional={"selector"}, slo=slo)
    histogram = body["histogram"]
    if not isinstance(histogram, str) or not d.METRIC.match(histogram):
        raise doc.error((*at, "histogram"), "must be a histogram metric name (without _bucket)", slo)
    threshold = body["threshold_seconds"]
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 < threshold < math.inf:
        raise doc.error((*at, "threshold_seconds"), "must be a number of seconds above 0", slo)
    selector = d.string(doc, (*at, "selector"), body.get("selector", ""), slo, allow_empty=True).strip()
    if selector.startswith("{") and selector.endswith("}"):
        selector = selector[1:-1].strip()
    if "{" in selector or "}" in selector or re.search(r"(^|,)\s*le\s*[=!]", selector):
        raise doc.error((*at, "selector"), 'must be label matchers such as service="payments" (no le)', slo)
    return LatencySLI(histogram, Decimal(repr(threshold)), selector)


def _read_alerting(doc: Document, path: FieldPath, raw: Any, slo: str, spelling: Spelling) -> Alerting:
    raw = {} if raw is None else raw
    severities = (spelling.page_alert, spelling.ticket_alert)
    d.fields(doc, path, raw, optional={"name", "labels", "annotations", *severities}, slo=slo)

    def alert(key: str) -> AlertSpec:
        body = raw.get(key) or {}
        at = (*path, key)
        d.fields(doc, at, body, optional={"disable", "labels", "annotations"}, slo=slo)
        disable = d.boolean(doc, (*at, "disable"), body.get("disable", False), slo)
        return AlertSpec(disable, d.labels(doc, (*at, "labels"), body.get("labels"), slo),
                         d.annotation_map(doc, (*at, "annotations"), body.get("annotations"), slo))  # fmt: skip

    page, ticket = alert(spelling.page_alert), alert(spelling.ticket_alert)
    if raw.get("name") in (None, ""):
        if not (page.disable and ticket.disable):
            raise doc.error((*path, "name"), "is required (an alert is enabled)", slo)
        name = ""
    else:
        name = d.alert_name(doc, (*path, "name"), raw["name"], slo)
    return Alerting(
        name,
        d.labels(doc, (*path, "labels"), raw.get("labels"), slo),
        d.annotation_map(doc, (*path, "annotations"), raw.get("annotations"), slo),
        page,
        ticket,
    )
