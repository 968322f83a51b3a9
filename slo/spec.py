"""SLO specs: Sloth `prometheus/v1`, OpenSLO `v1` and the suite's latency SLI, loaded into one model.

Every file is checked completely before anything is generated; the first problem found is
reported with its file, line, SLO and field path (`payments.yaml:12: SLO 'availability':
slos[0].objective: must be above 0 and below 100, got 100`). Objectives stay `Decimal` so
that 99.99 gives an error budget of exactly 0.0001.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from slo.durations import parse_duration
from slo.errors import SpecError

SLOTH_VERSION = "prometheus/v1"
OPENSLO_VERSION = "openslo/v1"
WINDOW = re.compile(r"\{\{\s*\.window\s*\}\}")
_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$")
_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_METRIC = re.compile(r"^[A-Za-z_:][A-Za-z0-9_:]*$")
_ALERT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RESERVED_LABELS = frozenset({"sloth_id", "sloth_service", "sloth_slo", "sloth_window", "sloth_severity"})


class _Loader(yaml.SafeLoader):
    """YAML 1.1 without timestamps: `2024-01-01` stays the text it is (as in Sloth's Go YAML),
    and a date-like value that is no date (`2024-13-01`) is not an error."""


def _timestamp_as_text(loader: _Loader, node: yaml.Node) -> str:
    assert isinstance(node, yaml.ScalarNode)
    return str(loader.construct_scalar(node))


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_text)

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class EventsSLI:
    """Bad events over all events, each a PromQL query with a `{{.window}}` placeholder."""

    error_query: str
    total_query: str


@dataclass(frozen=True)
class RawSLI:
    """An error ratio computed elsewhere; it carries no event counts, so no traffic guard applies."""

    error_ratio_query: str


@dataclass(frozen=True)
class LatencySLI:
    """Requests slower than a histogram bucket bound are the bad events.

    `threshold_seconds` must be one of the histogram's bucket bounds: `le` is matched as text.
    """

    histogram: str
    threshold_seconds: Decimal
    selector: str = ""

    @property
    def le(self) -> str:
        return repr(float(self.threshold_seconds))  # how client libraries spell bucket bounds: 0.2, 1.0

    def _matchers(self, *extra: str) -> str:
        return "{" + ",".join(m for m in (self.selector, *extra) if m) + "}"

    @property
    def total_query(self) -> str:
        return f"sum(rate({self.histogram}_count{self._matchers()}[{{{{.window}}}}]))"

    @property
    def error_query(self) -> str:
        fast = f"sum(rate({self.histogram}_bucket{self._matchers(f'le={self.le!r}'.replace(chr(39), chr(34)))}"
        return f"({self.total_query} - {fast}[{{{{.window}}}}])))"


SLI = EventsSLI | RawSLI | LatencySLI


@dataclass(frozen=True)
class AlertSpec:
    disable: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Alerting:
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    page: AlertSpec = AlertSpec()
    ticket: AlertSpec = AlertSpec()


# The suite's own SLOs: payments and portfolio, availability 99.99% and p99 latency under 200 ms.
SUITE_SPECS = sorted((Path(__file__).resolve().parent / "specs").glob("*.yaml"))


@dataclass(frozen=True)
class SLO:
    service: str
    name: str
    objective: Decimal  # percent, as written: 99.99
    sli: SLI
    alerting: Alerting
    description: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)  # spec-level and SLO-level, merged
    period: int | None = None  # seconds; None takes the generator's default
    spec_version: str = SLOTH_VERSION
    source: str = ""  # file:line, for messages

    @property
    def sloth_id(self) -> str:
        return f"{self.service}-{self.name}"

    @property
    def objective_ratio(self) -> Decimal:
        return self.objective / 100

    @property
    def error_budget(self) -> Decimal:
        return 1 - self.objective_ratio


@dataclass
class _Document:
    """One YAML document with the line of every key, so errors can point at the input."""

    file: str
    data: Any
    lines: dict[Path_, int]

    def line(self, path: Path_) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get(())

    def error(self, path: Path_, message: str, slo: str | None = None) -> SpecError:
        return SpecError(message, file=self.file, line=self.line(path), slo=slo, field=_dotted(path))


def _dotted(path: Path_) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def load_specs(paths: Iterable[Path]) -> list[SLO]:
    """Every SLO in `paths`, or the first problem with any of them."""
    documents = [doc for path in paths for doc in _read_documents(path)]
    slis = _openslo_slis(documents)
    slos: list[SLO] = []
    for doc in documents:
        slos.extend(_parse_document(doc, slis))
    _check_unique(slos)
    return slos


def _read_documents(path: Path) -> list[_Document]:
    file = str(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError(f"cannot read: {exc.strerror}", file=file) from None
    loader = _Loader(text)
    documents = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            lines: dict[Path_, int] = {(): node.start_mark.line + 1}
            _index_lines(node, (), lines)
            documents.append(_Document(file, loader.construct_document(node), lines))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"invalid YAML: {problem}", file=file, line=mark.line + 1 if mark else None) from None
    finally:
        loader.dispose()
    if not documents:
        raise SpecError("no SLO spec in the file", file=file, line=1)
    return documents


def _index_lines(node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, str(key.value))
            lines[child] = key.start_mark.line + 1
            _index_lines(value, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            _index_lines(item, (*path, index), lines)


def _parse_document(doc: _Document, slis: Mapping[str, tuple[_Document, Path_]]) -> list[SLO]:
    data = doc.data
    if not isinstance(data, dict):
        raise doc.error((), "expected a mapping (a Sloth or OpenSLO document)")
    if "version" in data:
        if data["version"] != SLOTH_VERSION:
            raise doc.error(("version",), f"unknown version {data['version']!r} (expected {SLOTH_VERSION!r})")
        return _parse_sloth(doc)
    if "apiVersion" in data:
        if data["apiVersion"] != OPENSLO_VERSION:
            raise doc.error(
                ("apiVersion",), f"unknown apiVersion {data['apiVersion']!r} (expected {OPENSLO_VERSION!r})"
            )
        kind = data.get("kind")
        if kind == "SLO":
            return [_parse_openslo(doc, slis)]
        if kind in ("SLI", "Service"):
            return []
        raise doc.error(("kind",), f"unsupported kind {kind!r} (SLO, SLI and Service are read)")
    raise doc.error((), f"not an SLO spec: expected 'version: {SLOTH_VERSION}' or 'apiVersion: {OPENSLO_VERSION}'")


# --- Sloth prometheus/v1 -------------------------------------------------------------------------


def _parse_sloth(doc: _Document) -> list[SLO]:
    data = doc.data
    _fields(doc, (), data, required={"version", "service", "slos"}, optional={"labels"})
    service = _name(doc, ("service",), data["service"])
    labels = _labels(doc, ("labels",), data.get("labels"))
    raw_slos = data["slos"]
    if not isinstance(raw_slos, list) or not raw_slos:
        raise doc.error(("slos",), "must be a non-empty list of SLOs")
    return [_parse_sloth_slo(doc, ("slos", i), raw, service, labels) for i, raw in enumerate(raw_slos)]


def _parse_sloth_slo(doc: _Document, path: Path_, raw: Any, service: str, labels: Mapping[str, str]) -> SLO:
    if not isinstance(raw, dict):
        raise doc.error(path, "an SLO must be a mapping")
    slo = raw.get("name") if isinstance(raw.get("name"), str) else None
    _fields(
        doc, path, raw, required={"name", "objective", "sli"}, optional={"description", "labels", "alerting"}, slo=slo
    )
    name = _name(doc, (*path, "name"), raw["name"])
    objective = _objective(doc, (*path, "objective"), raw["objective"], name, scale=1)
    description = _string(doc, (*path, "description"), raw.get("description", ""), name, allow_empty=True)
    merged = {**labels, **_labels(doc, (*path, "labels"), raw.get("labels"), name)}
    sli = _parse_sloth_sli(doc, (*path, "sli"), raw["sli"], name)
    alerting = _parse_alerting(doc, (*path, "alerting"), raw.get("alerting"), name)
    return SLO(service, name, objective, sli, alerting, description, merged, None, SLOTH_VERSION, _where(doc, path))


def _parse_sloth_sli(doc: _Document, path: Path_, raw: Any, slo: str) -> SLI:
    kinds = {"events", "raw", "latency"}
    _fields(doc, path, raw, required=set(), optional=kinds, slo=slo)
    present = sorted(kinds & set(raw))
    if len(present) != 1:
        raise doc.error(path, "needs exactly one of events, raw or latency", slo)
    kind = present[0]
    body, at = raw[kind], (*path, kind)
    if kind == "events":
        _fields(doc, at, body, required={"error_query", "total_query"}, slo=slo)
        return EventsSLI(_query(doc, (*at, "error_query"), body["error_query"], slo),
                         _query(doc, (*at, "total_query"), body["total_query"], slo))  # fmt: skip
    if kind == "raw":
        _fields(doc, at, body, required={"error_ratio_query"}, slo=slo)
        return RawSLI(_query(doc, (*at, "error_ratio_query"), body["error_ratio_query"], slo))
    _fields(doc, at, body, required={"histogram", "threshold_seconds"}, optional={"selector"}, slo=slo)
    histogram = body["histogram"]
    if not isinstance(histogram, str) or not _METRIC.match(histogram):
        raise doc.error((*at, "histogram"), "must be a histogram metric name (without _bucket)", slo)
    threshold = body["threshold_seconds"]
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 < threshold < math.inf:
        raise doc.error((*at, "threshold_seconds"), "must be a number of seconds above 0", slo)
    selector = _string(doc, (*at, "selector"), body.get("selector", ""), slo, allow_empty=True).strip()
    if selector.startswith("{") and selector.endswith("}"):
        selector = selector[1:-1].strip()
    if "{" in selector or "}" in selector or re.search(r"(^|,)\s*le\s*[=!]", selector):
        raise doc.error((*at, "selector"), 'must be label matchers such as service="payments" (no le)', slo)
    return LatencySLI(histogram, Decimal(repr(threshold)), selector)


def _parse_alerting(doc: _Document, path: Path_, raw: Any, slo: str) -> Alerting:
    if raw is None:
        raise doc.error(path, "is required (at least alerting.name)", slo)
    _fields(
        doc, path, raw, required={"name"}, optional={"labels", "annotations", "page_alert", "ticket_alert"}, slo=slo
    )
    name = raw["name"]
    if not isinstance(name, str) or not _ALERT.match(name):
        raise doc.error((*path, "name"), "must be an alert name ([A-Za-z_][A-Za-z0-9_]*)", slo)

    def alert(key: str) -> AlertSpec:
        body = raw.get(key) or {}
        at = (*path, key)
        _fields(doc, at, body, required=set(), optional={"disable", "labels", "annotations"}, slo=slo)
        disable = body.get("disable", False)
        if not isinstance(disable, bool):
            raise doc.error((*at, "disable"), "must be true or false", slo)
        return AlertSpec(disable, _labels(doc, (*at, "labels"), body.get("labels"), slo),
                         _annotations(doc, (*at, "annotations"), body.get("annotations"), slo))  # fmt: skip

    return Alerting(
        name,
        _labels(doc, (*path, "labels"), raw.get("labels"), slo),
        _annotations(doc, (*path, "annotations"), raw.get("annotations"), slo),
        alert("page_alert"),
        alert("ticket_alert"),
    )


# --- OpenSLO v1 ----------------------------------------------------------------------------------

_OPENSLO_TOP = {"apiVersion", "kind", "metadata", "spec"}
_METADATA = {"name", "displayName", "labels", "annotations"}


def _openslo_slis(documents: Sequence[_Document]) -> dict[str, tuple[_Document, Path_]]:
    found: dict[str, tuple[_Document, Path_]] = {}
    for doc in documents:
        data = doc.data
        if isinstance(data, dict) and data.get("apiVersion") == OPENSLO_VERSION and data.get("kind") == "SLI":
            _fields(doc, (), data, required=_OPENSLO_TOP)
            _fields(doc, ("metadata",), data["metadata"], required={"name"}, optional=_METADATA - {"name"})
            name = _name(doc, ("metadata", "name"), data["metadata"]["name"])
            if name in found:
                raise doc.error(("metadata", "name"), f"duplicate SLI {name!r}")
            # Checked here, so an SLI no SLO refers to yet is still checked completely.
            _openslo_indicator_spec(doc, ("spec",), data["spec"], None)
            found[name] = (doc, ("spec",))
    return found


def _parse_openslo(doc: _Document, slis: Mapping[str, tuple[_Document, Path_]]) -> SLO:
    data = doc.data
    _fields(doc, (), data, required=_OPENSLO_TOP)
    metadata = data["metadata"]
    _fields(doc, ("metadata",), metadata, required={"name"}, optional=_METADATA - {"name"})
    name = _name(doc, ("metadata", "name"), metadata["name"])
    spec, at = data["spec"], ("spec",)
    _fields(
        doc, at, spec, required={"service", "timeWindow", "budgetingMethod", "objectives"},
        optional={"description", "indicator", "indicatorRef", "alertPolicies"}, slo=name,
    )  # fmt: skip
    service = _name(doc, (*at, "service"), spec["service"], name)
    if spec["budgetingMethod"] != "Occurrences":
        raise doc.error((*at, "budgetingMethod"), "only Occurrences is supported", name)
    period = _openslo_period(doc, (*at, "timeWindow"), spec["timeWindow"], name)
    objective = _openslo_objective(doc, (*at, "objectives"), spec["objectives"], name)
    if ("indicator" in spec) == ("indicatorRef" in spec):
        raise doc.error(at, "needs exactly one of indicator or indicatorRef", name)
    if "indicator" in spec:
        sli = _openslo_indicator(doc, (*at, "indicator"), spec["indicator"], name)
    else:
        ref = spec["indicatorRef"]
        if not isinstance(ref, str):
            raise doc.error((*at, "indicatorRef"), "must be the name of an SLI", name)
        if ref not in slis:
            raise doc.error((*at, "indicatorRef"), f"no SLI named {ref!r} in the given files", name)
        sli_doc, sli_path = slis[ref]
        sli = _openslo_indicator_spec(sli_doc, sli_path, sli_doc.data["spec"], name)
    alert_name = "".join(part.capitalize() for part in re.split(r"[-_.]", f"{service}-{name}")) + "BudgetBurn"
    description = _string(doc, (*at, "description"), spec.get("description", ""), name, allow_empty=True)
    labels = _labels(doc, ("metadata", "labels"), metadata.get("labels"), name)
    return SLO(
        service,
        name,
        objective,
        sli,
        Alerting(alert_name),
        description,
        labels,
        period,
        OPENSLO_VERSION,
        _where(doc, ()),
    )


def _openslo_period(doc: _Document, path: Path_, raw: Any, slo: str) -> int:
    if not isinstance(raw, list) or len(raw) != 1 or not isinstance(raw[0], dict):
        raise doc.error(path, "must be a list with one rolling window", slo)
    _fields(doc, (*path, 0), raw[0], required={"duration"}, optional={"isRolling", "calendar"}, slo=slo)
    if raw[0].get("isRolling") is not True or "calendar" in raw[0]:
        raise doc.error((*path, 0, "isRolling"), "only rolling windows are supported", slo)
    try:
        return parse_duration(raw[0]["duration"])
    except ValueError as exc:
        raise doc.error((*path, 0, "duration"), str(exc), slo) from None


def _openslo_objective(doc: _Document, path: Path_, raw: Any, slo: str) -> Decimal:
    if not isinstance(raw, list) or len(raw) != 1 or not isinstance(raw[0], dict):
        raise doc.error(path, "must be a list with exactly one objective", slo)
    at = (*path, 0)
    _fields(doc, at, raw[0], required=set(), optional={"displayName", "target", "targetPercent"}, slo=slo)
    if ("target" in raw[0]) == ("targetPercent" in raw[0]):
        raise doc.error(at, "needs exactly one of target or targetPercent", slo)
    if "target" in raw[0]:
        return _objective(doc, (*at, "target"), raw[0]["target"], slo, scale=100)
    return _objective(doc, (*at, "targetPercent"), raw[0]["targetPercent"], slo, scale=1)


def _openslo_indicator(doc: _Document, path: Path_, raw: Any, slo: str) -> SLI:
    _fields(doc, path, raw, required={"spec"}, optional={"metadata"}, slo=slo)
    return _openslo_indicator_spec(doc, (*path, "spec"), raw["spec"], slo)


def _openslo_indicator_spec(doc: _Document, path: Path_, raw: Any, slo: str | None) -> SLI:
    _fields(doc, path, raw, required={"ratioMetric"}, optional={"description"}, slo=slo)
    ratio, at = raw["ratioMetric"], (*path, "ratioMetric")
    _fields(doc, at, ratio, required={"total"}, optional={"counter", "good", "bad"}, slo=slo)
    if ("good" in ratio) == ("bad" in ratio):
        raise doc.error(at, "needs exactly one of good or bad", slo)
    total = _metric_source(doc, (*at, "total"), ratio["total"], slo)
    if "bad" in ratio:
        return EventsSLI(_metric_source(doc, (*at, "bad"), ratio["bad"], slo), total)
    good = _metric_source(doc, (*at, "good"), ratio["good"], slo)
    return EventsSLI(f"(({total}) - ({good}))", total)


def _metric_source(doc: _Document, path: Path_, raw: Any, slo: str | None) -> str:
    _fields(doc, path, raw, required={"metricSource"}, slo=slo)
    source, at = raw["metricSource"], (*path, "metricSource")
    _fields(doc, at, source, required={"type", "spec"}, optional={"metricSourceRef"}, slo=slo)
    if str(source["type"]).lower() != "prometheus":
        raise doc.error((*at, "type"), "only Prometheus metric sources are supported", slo)
    _fields(doc, (*at, "spec"), source["spec"], required={"query"}, slo=slo)
    return _query(doc, (*at, "spec", "query"), source["spec"]["query"], slo)


# --- shared checks -------------------------------------------------------------------------------


def _fields(
    doc: _Document,
    path: Path_,
    raw: Any,
    *,
    required: set[str],
    optional: set[str] | frozenset[str] = frozenset(),
    slo: str | None = None,
) -> None:
    if not isinstance(raw, dict):
        raise doc.error(path, "must be a mapping", slo)
    for key in raw:
        if key not in required and key not in optional:
            raise doc.error((*path, str(key)), "unknown field", slo)
    for key in sorted(required):
        if raw.get(key) in (None, ""):
            raise doc.error((*path, key), "is required", slo)


def _name(doc: _Document, path: Path_, raw: Any, slo: str | None = None) -> str:
    if not isinstance(raw, str) or not _NAME.match(raw):
        raise doc.error(path, "must be a name of letters, digits, '-', '_' or '.'", slo)
    return raw


def _string(doc: _Document, path: Path_, raw: Any, slo: str | None, *, allow_empty: bool = False) -> str:
    if not isinstance(raw, str) or (not allow_empty and not raw.strip()):
        raise doc.error(path, "must be a string", slo)
    return raw


def _objective(doc: _Document, path: Path_, raw: Any, slo: str, *, scale: int) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise doc.error(path, "must be a number", slo)
    percent = Decimal(repr(raw)) * scale
    if not percent.is_finite() or not 0 < percent < 100:
        bounds = "0 and 1" if scale == 100 else "0 and 100"
        raise doc.error(path, f"must be above {bounds.replace(' and ', ' and below ')}, got {raw}", slo)
    return percent.normalize()


def _query(doc: _Document, path: Path_, raw: Any, slo: str | None) -> str:
    query = _string(doc, path, raw, slo).strip()
    if not WINDOW.search(query):
        raise doc.error(path, "has no {{.window}} placeholder", slo)
    return query


def _labels(doc: _Document, path: Path_, raw: Any, slo: str | None = None) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise doc.error(path, "must be a mapping of label names to values", slo)
    labels = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not _LABEL.match(key) or key.startswith("__"):
            raise doc.error((*path, str(key)), "is not a valid label name", slo)
        if key in RESERVED_LABELS:
            raise doc.error((*path, key), "is set by the generator", slo)
        if isinstance(value, bool | dict | list) or value is None:
            raise doc.error((*path, key), "label values must be strings or numbers", slo)
        labels[key] = str(value)
    return labels


def _annotations(doc: _Document, path: Path_, raw: Any, slo: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise doc.error(path, "must be a mapping of names to strings", slo)
    for key, value in raw.items():
        # Prometheus refuses a rule file with an annotation name that is not a label name.
        if not isinstance(key, str) or not _LABEL.match(key):
            raise doc.error((*path, str(key)), "is not a valid annotation name", slo)
        if not isinstance(value, str):
            raise doc.error((*path, key), "must be a string", slo)
    return dict(raw)


def _where(doc: _Document, path: Path_) -> str:
    line = doc.line(path)
    return f"{doc.file}:{line}" if line else doc.file


def _check_unique(slos: Sequence[SLO]) -> None:
    seen: dict[str, SLO] = {}
    for slo in slos:
        if slo.sloth_id in seen:
            file, _, line = slo.source.rpartition(":")
            raise SpecError(
                f"duplicate SLO (service {slo.service!r} already has it, at {seen[slo.sloth_id].source})",
                file=file or slo.source, line=int(line) if line.isdigit() else None, slo=slo.name, field="name",
            )  # fmt: skip
        seen[slo.sloth_id] = slo
