"""OpenSLO: the whole of `openslo/v1`, and `openslo/v1alpha` as Sloth reads it.

v1 documents are read together, so an SLO finds its `SLI`, `DataSource`, `AlertPolicy` and
`AlertCondition` by name in any of the given files. Every kind is checked completely; an SLO
whose metric source is not Prometheus (say `type: Datadog`) is well-formed, so `check`
accepts it, and `rules` refuses it in one line (`UncompilableSLI`).

How v1 maps onto the rules (tables below, not `if` chains on names):
- `ratioMetric` good/total, bad/total or raw (`rawType` success/failure) -> events or raw SLI;
- `Occurrences` counts events; `Timeslices` counts slices whose good ratio (or threshold
  metric) misses the objective as bad; `RatioTimeslices` averages the slices' error ratios;
  `thresholdMetric` under `Occurrences` is judged once a minute (one data point a slice);
- rolling windows are the SLO period; a calendar window (`1M`, `1Q`...) is compiled as a
  rolling window of its length (30, 90 days): Prometheus rules have no calendar;
- `AlertPolicy` names the alert; its conditions' severities choose the page and ticket alerts,
  and each condition is a window pair: its threshold is the burn rate, its lookback window the
  long window (the short one a twelfth of it, as in the workbook); a severity's quickest and
  slowest conditions are its quick and slow pairs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from slo.durations import format_duration, parse_duration
from slo.formats import document as d
from slo.formats.document import Document, FieldPath
from slo.model import (
    OPENSLO_ALPHA_VERSION,
    OPENSLO_VERSION,
    SLI,
    SLO,
    WINDOW,
    Alerting,
    AlertSpec,
    EventsSLI,
    RawSLI,
    TimesliceSLI,
    UncompilableSLI,
)
from slo.windows import AlertWindows, BurnAlertWindows, Severity, WindowPair, workbook_windows

METADATA = frozenset({"name", "displayName", "labels", "annotations", "namespace"})
TOP = frozenset({"apiVersion", "kind", "metadata", "spec"})
# OpenSLO duration shorthand: calendar units as the rolling lengths the rules use.
DURATION_UNITS: Mapping[str, int] = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400,
                                     "M": 30 * 86400, "Q": 90 * 86400, "Y": 365 * 86400}  # fmt: skip
_DURATION = re.compile(r"^(\d+)([smhdwMQY])$")
# v1alpha `timeWindows[].unit`, as Sloth reads them.
ALPHA_UNITS: Mapping[str, int] = {"Second": 1, "Minute": 60, "Hour": 3600, "Day": 86400, "Week": 7 * 86400,
                                  "Month": 30 * 86400, "Quarter": 90 * 86400, "Year": 365 * 86400}  # fmt: skip
# A threshold objective `op value` holds when the metric compares so; a slice is bad otherwise.
BAD_WHEN: Mapping[str, str] = {"lt": ">=", "lte": ">", "gt": "<=", "gte": "<"}
BUDGETING_METHODS = ("Occurrences", "Timeslices", "RatioTimeslices")
# AlertCondition severities onto the two alerts every SLO has.
SEVERITIES: Mapping[str, str] = {
    "page": "page", "critical": "page", "high": "page",
    "ticket": "ticket", "warning": "ticket", "medium": "ticket", "low": "ticket", "info": "ticket",
}  # fmt: skip
OCCURRENCE_SLICE = 60  # a thresholdMetric under Occurrences: one data point a minute
_SELECTOR = re.compile(r"^[A-Za-z_:][A-Za-z0-9_:]*(\{[^{}]*\})?$|^\{[^{}]+\}$")
_BURN_RATE_CONDITION = {"kind", "op", "threshold", "lookbackWindow", "alertAfter"}


@dataclass
class Catalogue:
    """Every named v1 document of the run, by kind and name, checked once."""

    documents: dict[str, dict[str, tuple[Document, FieldPath]]] = field(default_factory=dict)

    def find(self, kind: str, name: str) -> tuple[Document, FieldPath] | None:
        return self.documents.get(kind, {}).get(name)


def _metadata(doc: Document, path: FieldPath, slo: str | None = None) -> tuple[str, dict[str, str]]:
    raw = doc.data if not path else _at(doc.data, path)
    metadata = raw.get("metadata") if isinstance(raw, dict) else None
    d.fields(doc, (*path, "metadata"), metadata, required={"name"}, optional=METADATA - {"name"}, slo=slo)
    assert isinstance(metadata, dict)
    name = d.name(doc, (*path, "metadata", "name"), metadata["name"], slo)
    return name, _openslo_labels(doc, (*path, "metadata", "labels"), metadata.get("labels"), name)


def _openslo_labels(doc: Document, path: FieldPath, raw: Any, slo: str | None) -> dict[str, str]:
    """OpenSLO label values may be lists; a Prometheus label gets them joined with commas."""
    if isinstance(raw, dict):
        raw = {k: ",".join(str(v) for v in value) if isinstance(value, list) else value for k, value in raw.items()}
    return d.labels(doc, path, raw, slo)


def _at(data: Any, path: FieldPath) -> Any:
    for part in path:
        data = data[part]
    return data


# --- the catalogue: every kind checked ------------------------------------------------------------


def catalogue(documents: Sequence[Document]) -> Catalogue:
    """Index and check every v1 document that is not an SLO (SLOs are read after, against it)."""
    found = Catalogue()
    for doc in documents:
        data = doc.data
        if not (isinstance(data, dict) and data.get("apiVersion") == OPENSLO_VERSION):
            continue
        kind = data.get("kind")
        if kind == "SLO" or kind not in KIND_CHECKS:
            continue
        d.fields(doc, (), data, required=TOP)
        name, _ = _metadata(doc, ())
        named = found.documents.setdefault(str(kind), {})
        if name in named:
            raise doc.error(("metadata", "name"), f"duplicate {kind} {name!r}")
        named[name] = (doc, ())
    for kind, named in found.documents.items():
        for doc, path in named.values():
            KIND_CHECKS[kind](doc, (*path, "spec"), found)
    return found


def _check_service(doc: Document, at: FieldPath, _: Catalogue) -> None:
    d.fields(doc, at, _at(doc.data, at), optional={"description"})


def _check_data_source(doc: Document, at: FieldPath, _: Catalogue) -> None:
    spec = _at(doc.data, at)
    d.fields(doc, at, spec, required={"type"}, optional={"description", "connectionDetails"})
    d.string(doc, (*at, "type"), spec["type"], None)


def _check_target(doc: Document, at: FieldPath, _: Catalogue) -> None:
    spec = _at(doc.data, at)
    d.fields(doc, at, spec, required={"target"}, optional={"description"})


def _check_condition(doc: Document, at: FieldPath, _: Catalogue) -> None:
    spec = _at(doc.data, at)
    d.fields(doc, at, spec, required={"severity", "condition"}, optional={"description"})
    d.string(doc, (*at, "severity"), spec["severity"], None)
    condition, where = spec["condition"], (*at, "condition")
    d.fields(doc, where, condition, required=_BURN_RATE_CONDITION - {"alertAfter"}, optional={"alertAfter"})
    if condition["kind"] != "burnrate":
        raise doc.error((*where, "kind"), f"must be burnrate, not {condition['kind']!r}")
    if condition["op"] not in BAD_WHEN:
        raise doc.error((*where, "op"), f"must be one of {', '.join(BAD_WHEN)}")
    d.number(doc, (*where, "threshold"), condition["threshold"], None)
    for key in ("lookbackWindow", "alertAfter"):
        if key in condition:
            duration(doc, (*where, key), condition[key], None)


def _check_policy(doc: Document, at: FieldPath, found: Catalogue) -> None:
    spec = _at(doc.data, at)
    d.fields(
        doc, at, spec, required={"conditions"},
        optional={"description", "alertWhenNoData", "alertWhenResolved", "alertWhenBreaching", "notificationTargets"},
    )  # fmt: skip
    for key in ("alertWhenNoData", "alertWhenResolved", "alertWhenBreaching"):
        if key in spec:
            d.boolean(doc, (*at, key), spec[key], None)
    _inline_or_ref(doc, (*at, "conditions"), spec["conditions"], "AlertCondition", "conditionRef", found)
    _inline_or_ref(doc, (*at, "notificationTargets"), spec.get("notificationTargets") or [],
                   "AlertNotificationTarget", "targetRef", found)  # fmt: skip


def _check_sli(doc: Document, at: FieldPath, found: Catalogue) -> None:
    indicator_spec(doc, at, _at(doc.data, at), None, found, None)


KIND_CHECKS = {
    "Service": _check_service,
    "DataSource": _check_data_source,
    "AlertNotificationTarget": _check_target,
    "AlertCondition": _check_condition,
    "AlertPolicy": _check_policy,
    "SLI": _check_sli,
}


def _inline_or_ref(
    doc: Document, path: FieldPath, raw: Any, kind: str, ref_key: str, found: Catalogue
) -> list[tuple[Document, FieldPath]]:
    """A list of inline `kind` documents or `{ref_key: name}` references, each resolved and checked."""
    if not isinstance(raw, list):
        raise doc.error(path, f"must be a list of {kind}s")
    resolved = []
    for index, item in enumerate(raw):
        at = (*path, index)
        if isinstance(item, dict) and ref_key in item:
            d.fields(doc, at, item, required={ref_key})
            target = found.find(kind, str(item[ref_key]))
            if target is None:
                raise doc.error((*at, ref_key), f"no {kind} named {item[ref_key]!r} in the given files")
            resolved.append(target)
            continue
        d.fields(doc, at, item, required={"kind", "metadata", "spec"}, optional={"apiVersion"})
        if item["kind"] != kind:
            raise doc.error((*at, "kind"), f"must be {kind} (or a {ref_key})")
        _metadata(doc, at)
        KIND_CHECKS[kind](doc, (*at, "spec"), found)
        resolved.append((doc, at))
    return resolved


def duration(doc: Document, path: FieldPath, raw: Any, slo: str | None) -> int:
    """OpenSLO's `<n><unit>` (m, h, d, w, M, Q, Y), or a Prometheus duration."""
    match = _DURATION.match(raw) if isinstance(raw, str) else None
    if match:
        seconds = int(match.group(1)) * DURATION_UNITS[match.group(2)]
        if seconds > 0:
            return seconds
    try:
        return parse_duration(raw)
    except ValueError:
        raise doc.error(path, f"{raw!r} is not a duration such as 30d, 4w or 1M", slo) from None


# --- indicators -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Ratio:
    """A ratio indicator as queries: errors and total, or an error ratio on its own."""

    error: str | None = None
    total: str | None = None
    error_ratio: str | None = None

    def error_ratio_query(self) -> str:
        if self.error_ratio is not None:
            return self.error_ratio
        return f"({self.error})\n/\n(({self.total}) > 0)"


@dataclass(frozen=True)
class _Threshold:
    query: str


_Indicator = _Ratio | _Threshold | UncompilableSLI


def indicator_spec(
    doc: Document, path: FieldPath, raw: Any, slo: str | None, found: Catalogue, budgeting: str | None
) -> _Indicator:
    d.fields(doc, path, raw, optional={"description", "ratioMetric", "thresholdMetric"}, slo=slo)
    kind = d.one_of(doc, path, raw, ("ratioMetric", "thresholdMetric"), slo)
    at = (*path, kind)
    if kind == "thresholdMetric":
        d.fields(doc, at, raw[kind], required={"metricSource"}, slo=slo)
        source = _metric_source(doc, at, raw[kind], slo, found, needs_window=False)
        return source if isinstance(source, UncompilableSLI) else _Threshold(source)
    ratio = raw[kind]
    d.fields(doc, at, ratio, optional={"counter", "good", "bad", "total", "raw", "rawType"}, slo=slo)
    if "counter" in ratio:
        d.boolean(doc, (*at, "counter"), ratio["counter"], slo)
    if "raw" in ratio:
        if any(key in ratio for key in ("good", "bad", "total")):
            raise doc.error(at, "raw excludes good, bad and total", slo)
        raw_type = ratio.get("rawType")
        if raw_type not in ("success", "failure"):
            raise doc.error((*at, "rawType"), "must be success or failure (with raw)", slo)
        query = _metric_source(doc, (*at, "raw"), ratio["raw"], slo, found, needs_window=True)
        if isinstance(query, UncompilableSLI):
            return query
        return _Ratio(error_ratio=query if raw_type == "failure" else f"1 - ({query})")
    if "rawType" in ratio:
        raise doc.error((*at, "rawType"), "goes with raw only", slo)
    if ratio.get("total") is None:
        raise doc.error((*at, "total"), "is required", slo)
    which = d.one_of(doc, at, ratio, ("good", "bad"), slo)
    queries = [_metric_source(doc, (*at, key), ratio[key], slo, found, needs_window=True) for key in (which, "total")]
    for query in queries:
        if isinstance(query, UncompilableSLI):
            return query
    part, total = (str(q) for q in queries)
    return _Ratio(error=part if which == "bad" else f"(({total}) - ({part}))", total=total)


def _metric_source(
    doc: Document, path: FieldPath, raw: Any, slo: str | None, found: Catalogue, *, needs_window: bool
) -> str | UncompilableSLI:
    """The Prometheus query of a metric source, or why it cannot be one."""
    d.fields(doc, path, raw, required={"metricSource"}, slo=slo)
    source, at = raw["metricSource"], (*path, "metricSource")
    d.fields(doc, at, source, optional={"metricSourceRef", "type", "spec"}, slo=slo)
    kind = source.get("type")
    if "metricSourceRef" in source:
        ref = source["metricSourceRef"]
        target = found.find("DataSource", str(ref))
        if target is None:
            raise doc.error((*at, "metricSourceRef"), f"no DataSource named {ref!r} in the given files", slo)
        kind = kind or _at(target[0].data, (*target[1], "spec"))["type"]
    if not kind:
        raise doc.error((*at, "type"), "is required (or a metricSourceRef to a DataSource)", slo)
    spec = source.get("spec")
    if spec is not None and not isinstance(spec, dict):
        raise doc.error((*at, "spec"), "must be a mapping", slo)
    if str(kind).lower() != "prometheus":
        # Its spec is whatever that source needs: well-formed, not ours to read.
        return UncompilableSLI(f"metric source type {kind!r} cannot be compiled to Prometheus rules")
    d.fields(doc, (*at, "spec"), spec, required={"query"}, slo=slo)
    assert isinstance(spec, dict)
    query = d.string(doc, (*at, "spec", "query"), spec["query"], slo).strip()
    if needs_window and not WINDOW.search(query):
        if not _SELECTOR.match(query):
            return UncompilableSLI(f"query {query!r} has no {{{{.window}}}} placeholder and is not a counter selector")
        query = f"sum(rate({query}[{{{{.window}}}}]))"  # a counter: its rate over each window
    return query


# --- SLOs -------------------------------------------------------------------------------------


def read_v1_slo(doc: Document, found: Catalogue) -> list[SLO]:
    data = doc.data
    d.fields(doc, (), data, required=TOP)
    name, labels = _metadata(doc, ())
    spec, at = data["spec"], ("spec",)
    d.fields(
        doc, at, spec, required={"service", "timeWindow", "budgetingMethod", "objectives"},
        optional={"description", "indicator", "indicatorRef", "alertPolicies"}, slo=name,
    )  # fmt: skip
    service = d.name(doc, (*at, "service"), spec["service"], name)
    budgeting = spec["budgetingMethod"]
    if budgeting not in BUDGETING_METHODS:
        raise doc.error((*at, "budgetingMethod"), f"must be one of {', '.join(BUDGETING_METHODS)}", name)
    period = _time_window(doc, (*at, "timeWindow"), spec["timeWindow"], name)
    description = d.string(doc, (*at, "description"), spec.get("description", ""), name, allow_empty=True)
    alerting, alert_windows = _alerting(
        doc, (*at, "alertPolicies"), spec.get("alertPolicies"), service, name, found, period
    )
    objectives = spec["objectives"]
    if not isinstance(objectives, list) or not objectives:
        raise doc.error((*at, "objectives"), "must be a non-empty list of objectives", name)
    slo_indicator = None
    if "indicator" in spec or "indicatorRef" in spec:
        slo_indicator = _indicator(doc, at, spec, name, found, budgeting)
    slos = []
    for index, objective in enumerate(objectives):
        where = (*at, "objectives", index)
        slo_name = name if len(objectives) == 1 else f"{name}-{index}"
        target, sli = _objective(doc, where, objective, slo_name, found, budgeting, slo_indicator)
        slos.append(
            SLO(service, slo_name, target, sli, alerting, description, labels, period, OPENSLO_VERSION, doc.where(()),
                alert_windows)
        )  # fmt: skip
    return slos


def _indicator(
    doc: Document, at: FieldPath, spec: Mapping[str, Any], slo: str, found: Catalogue, budgeting: str
) -> _Indicator:
    kind = d.one_of(doc, at, spec, ("indicator", "indicatorRef"), slo)
    if kind == "indicator":
        raw = spec["indicator"]
        d.fields(doc, (*at, "indicator"), raw, required={"spec"}, optional={"metadata", "apiVersion", "kind"}, slo=slo)
        if "metadata" in raw:
            _metadata(doc, (*at, "indicator"), slo)
        return indicator_spec(doc, (*at, "indicator", "spec"), raw["spec"], slo, found, budgeting)
    ref = spec["indicatorRef"]
    if not isinstance(ref, str):
        raise doc.error((*at, "indicatorRef"), "must be the name of an SLI", slo)
    target = found.find("SLI", ref)
    if target is None:
        raise doc.error((*at, "indicatorRef"), f"no SLI named {ref!r} in the given files", slo)
    sli_doc, sli_path = target
    return indicator_spec(sli_doc, (*sli_path, "spec"), _at(sli_doc.data, (*sli_path, "spec")), slo, found, budgeting)


_OBJECTIVE = {"displayName", "target", "targetPercent", "op", "value", "timeSliceTarget", "timeSliceWindow",
              "indicator", "indicatorRef", "compositeWeight"}  # fmt: skip


def _objective(
    doc: Document,
    at: FieldPath,
    raw: Any,
    slo: str,
    found: Catalogue,
    budgeting: str,
    slo_indicator: _Indicator | None,
) -> tuple[Decimal, SLI]:
    d.fields(doc, at, raw, optional=_OBJECTIVE, slo=slo)
    kind = d.one_of(doc, at, raw, ("target", "targetPercent"), slo)
    target = d.objective(doc, (*at, kind), raw[kind], slo, scale=100 if kind == "target" else 1)
    if "indicator" in raw or "indicatorRef" in raw:
        indicator = _indicator(doc, at, raw, slo, found, budgeting)
    elif slo_indicator is not None:
        indicator = slo_indicator
    else:
        raise doc.error(at[:-2], "needs exactly one of indicator or indicatorRef", slo)
    if isinstance(indicator, UncompilableSLI):
        return target, indicator
    slice_seconds = None
    if "timeSliceWindow" in raw:
        slice_seconds = duration(doc, (*at, "timeSliceWindow"), raw["timeSliceWindow"], slo)
    threshold = None
    if isinstance(indicator, _Threshold):
        for key in ("op", "value"):
            if key not in raw:
                raise doc.error((*at, key), "is required for a thresholdMetric", slo)
        if raw["op"] not in BAD_WHEN:
            raise doc.error((*at, "op"), f"must be one of {', '.join(BAD_WHEN)}", slo)
        threshold = (BAD_WHEN[raw["op"]], d.number(doc, (*at, "value"), raw["value"], slo))
    if budgeting == "Occurrences":
        if threshold is not None:
            assert isinstance(indicator, _Threshold)
            return target, TimesliceSLI(_bad_threshold(indicator.query, threshold), OCCURRENCE_SLICE)
        assert isinstance(indicator, _Ratio)
        if indicator.error_ratio is not None:
            return target, RawSLI(indicator.error_ratio)
        assert indicator.error is not None and indicator.total is not None
        return target, EventsSLI(indicator.error, indicator.total)
    if slice_seconds is None:
        raise doc.error((*at, "timeSliceWindow"), f"is required with {budgeting}", slo)
    if isinstance(indicator, _Threshold):
        assert threshold is not None
        return target, TimesliceSLI(_bad_threshold(indicator.query, threshold), slice_seconds)
    if budgeting == "RatioTimeslices":
        return target, TimesliceSLI(indicator.error_ratio_query(), slice_seconds)
    if "timeSliceTarget" not in raw:
        raise doc.error((*at, "timeSliceTarget"), "is required with Timeslices and a ratioMetric", slo)
    slice_target = d.number(doc, (*at, "timeSliceTarget"), raw["timeSliceTarget"], slo)
    if not 0 < slice_target <= 1:
        raise doc.error((*at, "timeSliceTarget"), f"must be above 0 and at most 1, got {raw['timeSliceTarget']}", slo)
    good = f"1 - (\n{indicator.error_ratio_query()}\n)"
    return target, TimesliceSLI(f"({good}) < bool {_plain(slice_target)}", slice_seconds)


def _bad_threshold(query: str, threshold: tuple[str, Decimal]) -> str:
    comparison, value = threshold
    return f"({query}) {comparison} bool {_plain(value)}"


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


def _time_window(doc: Document, path: FieldPath, raw: Any, slo: str) -> int:
    if not isinstance(raw, list) or len(raw) != 1 or not isinstance(raw[0], dict):
        raise doc.error(path, "must be a list with one time window", slo)
    window, at = raw[0], (*path, 0)
    d.fields(doc, at, window, required={"duration"}, optional={"isRolling", "calendar"}, slo=slo)
    rolling = d.boolean(doc, (*at, "isRolling"), window.get("isRolling", False), slo)
    if "calendar" in window:
        d.fields(doc, (*at, "calendar"), window["calendar"], required={"startTime", "timeZone"}, slo=slo)
    elif not rolling:
        raise doc.error(at, "a calendar window needs calendar.startTime and calendar.timeZone", slo)
    return duration(doc, (*at, "duration"), window["duration"], slo)


def _alerting(
    doc: Document, path: FieldPath, raw: Any, service: str, slo: str, found: Catalogue, period: int
) -> tuple[Alerting, AlertWindows | None]:
    """The SLO's alert: named after its first AlertPolicy, at the severities its conditions ask for,
    each burning at the conditions' thresholds over their lookback windows."""
    default = Alerting("".join(part.capitalize() for part in re.split(r"[-_.]", f"{service}-{slo}")) + "BudgetBurn")
    if not raw:
        return default, None
    policies = _inline_or_ref(doc, path, raw, "AlertPolicy", "alertPolicyRef", found)
    pairs: dict[str, list[WindowPair]] = {"page": [], "ticket": []}
    labels: dict[str, str] = {}
    notes: list[str] = []
    first_name = ""
    for policy_doc, policy_path in policies:
        name, policy_labels = _metadata(policy_doc, policy_path)
        first_name = first_name or name
        labels.update(policy_labels)
        spec = _at(policy_doc.data, (*policy_path, "spec"))
        conditions = _inline_or_ref(policy_doc, (*policy_path, "spec", "conditions"), spec["conditions"],
                                    "AlertCondition", "conditionRef", found)  # fmt: skip
        for condition_doc, condition_path in conditions:
            body = _at(condition_doc.data, (*condition_path, "spec"))
            rule, at = body["condition"], (*condition_path, "spec", "condition")
            lookback = duration(condition_doc, (*at, "lookbackWindow"), rule["lookbackWindow"], slo)
            if lookback >= period:
                raise condition_doc.error((*at, "lookbackWindow"), "must be shorter than the SLO's time window", slo)
            threshold = Fraction(d.number(condition_doc, (*at, "threshold"), rule["threshold"], slo))
            if threshold <= 0:
                raise condition_doc.error((*at, "threshold"), "must be a burn rate above 0", slo)
            # The workbook's short window is a twelfth of the long one (5m for 1h, 2h for 1d).
            short = max(60, lookback // 12)
            pair = WindowPair(short, lookback, Decimal(0), period, burn_rate=threshold)
            pairs[SEVERITIES.get(str(body["severity"]).lower(), "ticket")].append(pair)
            notes.append(
                f"{name}: burn rate {rule['op']} {rule['threshold']} over {rule['lookbackWindow']}"
                + (f" for {rule['alertAfter']}" if "alertAfter" in rule else "")
            )
    workbook = workbook_windows(period)

    def severity(level: Severity, fallback: BurnAlertWindows) -> BurnAlertWindows:
        chosen = sorted(set(pairs[level]), key=lambda p: (p.long, p.short, p.factor))
        if not chosen:
            return fallback
        return BurnAlertWindows(level, chosen[0], chosen[-1])  # the quickest and the slowest condition

    windows = AlertWindows(period, severity("page", workbook.page), severity("ticket", workbook.ticket))
    annotations = {"openslo_alert_conditions": "; ".join(notes)} if notes else {}
    alerting = Alerting(
        d.camel(first_name),
        labels,
        annotations,
        AlertSpec(disable=not pairs["page"]),
        AlertSpec(disable=not pairs["ticket"]),
    )
    return alerting, windows


# --- v1alpha, as Sloth reads it -----------------------------------------------------------------


def read_v1alpha_slo(doc: Document) -> list[SLO]:
    """Sloth's reading: one SLO per objective, `<name>-<index>`, a raw SLI of `1 - good/total`, no alerts."""
    data = doc.data
    d.fields(doc, (), data, required=TOP)
    name, _ = _metadata(doc, ())
    spec, at = data["spec"], ("spec",)
    d.fields(
        doc, at, spec, required={"service", "objectives", "timeWindows"},
        optional={"description", "budgetingMethod", "indicator"}, slo=name,
    )  # fmt: skip
    service = d.name(doc, (*at, "service"), spec["service"], name)
    if spec.get("budgetingMethod", "Occurrences") != "Occurrences":
        raise doc.error((*at, "budgetingMethod"), "Sloth reads only Occurrences in openslo/v1alpha", name)
    description = d.string(doc, (*at, "description"), spec.get("description", ""), name, allow_empty=True)
    period = _alpha_window(doc, (*at, "timeWindows"), spec["timeWindows"], name)
    objectives = spec["objectives"]
    if not isinstance(objectives, list) or not objectives:
        raise doc.error((*at, "objectives"), "must be a non-empty list of objectives", name)
    slos = []
    off = AlertSpec(disable=True)
    for index, objective in enumerate(objectives):
        where, slo_name = (*at, "objectives", index), f"{name}-{index}"
        d.fields(
            doc, where, objective, required={"ratioMetrics", "target"},
            optional={"displayName", "op", "value", "timeSliceTarget"}, slo=slo_name,
        )  # fmt: skip
        target = d.objective(doc, (*where, "target"), objective["target"], slo_name, scale=100)
        ratio, rat = objective["ratioMetrics"], (*where, "ratioMetrics")
        d.fields(doc, rat, ratio, required={"good", "total"}, optional={"incremental"}, slo=slo_name)
        good, total = (_alpha_query(doc, (*rat, key), ratio[key], slo_name) for key in ("good", "total"))
        sli = RawSLI(f"1 - (\n  (\n    {good}\n  )\n  /\n  (\n    {total}\n  )\n)")
        slos.append(SLO(service, slo_name, target, sli, Alerting("", page=off, ticket=off), description, {}, period,
                        OPENSLO_ALPHA_VERSION, doc.where(where)))  # fmt: skip
    return slos


def _alpha_query(doc: Document, path: FieldPath, raw: Any, slo: str) -> str:
    d.fields(doc, path, raw, required={"query"}, optional={"source", "queryType", "metadata"}, slo=slo)
    if str(raw.get("source", "prometheus")).lower() != "prometheus":
        raise doc.error((*path, "source"), "Sloth reads only prometheus sources", slo)
    return d.query(doc, (*path, "query"), raw["query"], slo)


def _alpha_window(doc: Document, path: FieldPath, raw: Any, slo: str) -> int:
    if not isinstance(raw, list) or len(raw) != 1 or not isinstance(raw[0], dict):
        raise doc.error(path, "must be a list with one time window", slo)
    at = (*path, 0)
    d.fields(doc, at, raw[0], required={"count", "unit"}, optional={"isRolling", "calendar"}, slo=slo)
    count, unit = raw[0]["count"], raw[0]["unit"]
    if isinstance(count, bool) or not isinstance(count, int) or count <= 0:
        raise doc.error((*at, "count"), "must be a whole number above 0", slo)
    if unit not in ALPHA_UNITS:
        raise doc.error((*at, "unit"), f"must be one of {', '.join(ALPHA_UNITS)}", slo)
    return count * ALPHA_UNITS[unit]


__all__ = ["Catalogue", "catalogue", "format_duration", "read_v1_slo", "read_v1alpha_slo"]
