"""SLO specs to Prometheus rule groups that Sloth's dashboards and alert routes accept unchanged.

Per SLO, in this order: `sloth-slo-sli-recordings-<id>` (the error ratio over every alert
window and over the SLO period), `sloth-slo-meta-recordings-<id>` (objective, budget, burn
rates, budget remaining, and the suite's time-to-exhaustion), `sloth-slo-alerts-<id>` (one
alert name at `sloth_severity` page and ticket, plus the budget-exhaustion forecast ticket).

Additions to Sloth, each documented where it is built:
- traffic guard: a burn-rate window pair holds only when its long window also saw at least
  `min_bad_events` bad events (recorded as `slo:sli_bad_events:increase<window>`), so one
  failed request in a near-idle hour cannot page. Raw SLIs carry no counts and are unguarded.
- budget-exhaustion forecast: `slo:time_to_error_budget_exhaustion:seconds` = budget left *
  period / burn rate over the page's slow long window (6h by default); a ticket fires when it
  is shorter than the horizon (3 days by default).
- thresholds written exactly (`14.4 * 0.0001`), and a `runbook_url` on every alert.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from slo.durations import format_duration
from slo.errors import SLOError, SpecError
from slo.model import RESERVED_LABELS, SLO, WINDOW, EventsSLI, LatencySLI, TimesliceSLI, UncompilableSLI
from slo.rule_yaml import dump_rule_groups
from slo.windows import DEFAULT_PERIOD_SECONDS, AlertWindows, BurnAlertWindows, exact_number, workbook_windows

GENERATOR = "nova-slo/1"
DEFAULT_MIN_BAD_EVENTS = 5
DEFAULT_EXHAUSTION_HORIZON_SECONDS = 3 * 86400
DEFAULT_RUNBOOK_BASE = "runbooks"
SLO_LABELS = ("sloth_id", "sloth_slo", "sloth_service")
_ON = "on(sloth_id, sloth_slo, sloth_service)"
_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TIMESLICE_RECORD = "slo:sli_timeslice_error:ratio"


@dataclass(frozen=True)
class RuleOptions:
    """How rules are generated beyond what a spec says; one set per run, shared with the evaluator."""

    period: int = DEFAULT_PERIOD_SECONDS
    alert_windows: Sequence[AlertWindows] = ()  # custom windows, chosen by their SLO period
    min_bad_events: int = DEFAULT_MIN_BAD_EVENTS
    exhaustion_horizon: int = DEFAULT_EXHAUSTION_HORIZON_SECONDS
    runbook_base: str = DEFAULT_RUNBOOK_BASE
    extra_labels: Mapping[str, str] = field(default_factory=dict)  # Sloth's -l: on every SLO's recordings
    recordings: bool = True  # Sloth's --disable-recordings turns these off
    alerts: bool = True  # and --disable-alerts these

    def windows_for(self, slo: SLO) -> AlertWindows:
        """Custom windows written for the SLO's period, else the workbook's scaled to it."""
        if slo.alert_windows is not None:
            return slo.alert_windows
        period = slo.period or self.period
        for windows in self.alert_windows:
            if windows.period == period:
                return windows
        windows = workbook_windows(period)
        if windows.windows[-1] >= period:
            # The period's own SLI series would collide with an alert window's, and a burn rate
            # over a window longer than the period means nothing.
            file, _, line = slo.source.rpartition(":")
            raise SpecError(
                f"the SLO period {format_duration(period)} must be longer than the longest alert window "
                f"({format_duration(windows.windows[-1])}); give an AlertWindows file for short periods",
                file=file or slo.source, line=int(line) if line.isdigit() else None, slo=slo.name, field="period",
            )  # fmt: skip
        return windows

    def guarded(self, slo: SLO) -> bool:
        """Only SLIs that count events can be held to a number of bad events."""
        return self.min_bad_events > 0 and isinstance(slo.sli, EventsSLI | LatencySLI)


def parse_extra_labels(items: Sequence[str]) -> dict[str, str]:
    """Sloth's `-l k=v` items as labels; a later key wins."""
    labels: dict[str, str] = {}
    for item in items:
        key, separator, value = item.partition("=")
        key = key.strip()
        if not separator or not _LABEL.match(key) or key.startswith("__"):
            raise SLOError(f"--extra-labels must be name=value with a Prometheus label name, not {item!r}")
        if key in RESERVED_LABELS:
            raise SLOError(f"--extra-labels: {key} is set by the generator")
        labels[key] = value
    return labels


def _refuse_uncompilable(slo: SLO) -> None:
    if isinstance(slo.sli, UncompilableSLI):
        file, _, line = slo.source.rpartition(":")
        raise SpecError(
            f"cannot generate Prometheus rules: {slo.sli.reason}",
            file=file or slo.source, line=int(line) if line.isdigit() else None, slo=slo.name, field="indicator",
        )  # fmt: skip


def _check_slices(slo: SLO, windows: AlertWindows) -> None:
    """Every window must hold whole slices, or a slice would be counted in part."""
    if not isinstance(slo.sli, TimesliceSLI):
        return
    size = slo.sli.slice_seconds
    uneven = [w for w in (*windows.windows, windows.period) if w % size]
    if uneven:
        file, _, line = slo.source.rpartition(":")
        raise SpecError(
            f"time slice {format_duration(size)} does not divide the window {format_duration(uneven[0])}",
            file=file or slo.source, line=int(line) if line.isdigit() else None, slo=slo.name, field="timeSliceWindow",
        )  # fmt: skip


def runbook_url(base: str, slo: SLO, kind: str) -> str:
    """Where the runbook of one alert of `slo` lives: `<base>/<service>-<slo>-<kind>.md`."""
    return f"{base.rstrip('/')}/{slo.sloth_id}-{kind}.md"


def selector(slo: SLO) -> str:
    return f'{{sloth_id="{slo.sloth_id}", sloth_service="{slo.service}", sloth_slo="{slo.name}"}}'


def generate(slos: Sequence[SLO], options: RuleOptions = RuleOptions()) -> list[dict[str, Any]]:
    """Rule groups for `slos`, in input order."""
    groups: list[dict[str, Any]] = []
    for slo in slos:
        _refuse_uncompilable(slo)
        windows = options.windows_for(slo)
        _check_slices(slo, windows)
        if options.recordings:
            sli: dict[str, Any] = {"name": f"sloth-slo-sli-recordings-{slo.sloth_id}"}
            if isinstance(slo.sli, TimesliceSLI):  # one evaluation per slice: each sample is one slice
                sli["interval"] = format_duration(slo.sli.slice_seconds)
            sli["rules"] = _sli_rules(slo, windows, options)
            groups.append(sli)
            groups.append(
                {"name": f"sloth-slo-meta-recordings-{slo.sloth_id}", "rules": _meta_rules(slo, windows, options)}
            )
        alerts = _alert_rules(slo, windows, options) if options.alerts else []
        if alerts:
            groups.append({"name": f"sloth-slo-alerts-{slo.sloth_id}", "rules": alerts})
    return groups


def render(slos: Sequence[SLO], options: RuleOptions = RuleOptions(), sources: Sequence[str] = ()) -> str:
    return render_groups(generate(slos, options), sources)


def render_groups(groups: Sequence[dict[str, Any]], sources: Sequence[str] = ()) -> str:
    """The rule file for groups already generated, with a header naming the specs they came from."""
    header = (
        f"# Code generated by `nova slo rules` ({GENERATOR}) from {', '.join(sources) or 'specs'}.\n# DO NOT EDIT.\n\n"
    )
    return dump_rule_groups(groups, header)


def _slo_labels(slo: SLO, options: RuleOptions) -> dict[str, str]:
    labels = {
        **slo.labels,
        **options.extra_labels,
        "sloth_id": slo.sloth_id,
        "sloth_service": slo.service,
        "sloth_slo": slo.name,
    }
    return dict(sorted(labels.items()))


def _with_window(labels: dict[str, str], window: int) -> dict[str, str]:
    return dict(sorted({**labels, "sloth_window": format_duration(window)}.items()))


def _windowed(query: str, window: int) -> str:
    return WINDOW.sub(format_duration(window), query)


def _slices(slo: SLO, window: int) -> str:
    """The mean of the slices in `window`. The range ends 1 s short of it: Prometheus 2 reads
    ranges closed at both ends and would count the slice at the window's start twice over."""
    return f"avg_over_time({TIMESLICE_RECORD}{selector(slo)}[{format_duration(window - 1)}])\n"


def ratio_expr(slo: SLO, window: int) -> str:
    sli = slo.sli
    if isinstance(sli, TimesliceSLI):
        return _slices(slo, window)
    if isinstance(sli, UncompilableSLI):
        raise ValueError(sli.reason)
    if not isinstance(sli, EventsSLI | LatencySLI):
        return f"({_windowed(sli.error_ratio_query, window)})\n"
    return f"({_windowed(sli.error_query, window)})\n/\n(({_windowed(sli.total_query, window)}) > 0)\n"


def _sli_rules(slo: SLO, windows: AlertWindows, options: RuleOptions) -> list[dict[str, Any]]:
    labels = _slo_labels(slo, options)
    rules: list[dict[str, Any]] = []
    if isinstance(slo.sli, TimesliceSLI):
        size = slo.sli.slice_seconds
        rules.append(
            {
                "record": TIMESLICE_RECORD,
                "expr": f"{_windowed(slo.sli.slice_error_query, size)}\n",
                "labels": _with_window(labels, size),
            }
        )
    rules += [
        {
            "record": f"slo:sli_error:ratio_rate{format_duration(w)}",
            "expr": ratio_expr(slo, w),
            "labels": _with_window(labels, w),
        }
        for w in windows.windows
    ]
    period, shortest = format_duration(windows.period), format_duration(windows.windows[0])
    over_period = (
        _slices(slo, windows.period)
        if isinstance(slo.sli, TimesliceSLI)
        else (
            f"sum_over_time(slo:sli_error:ratio_rate{shortest}{selector(slo)}[{period}])\n"
            f"/ ignoring (sloth_window)\n"
            f"count_over_time(slo:sli_error:ratio_rate{shortest}{selector(slo)}[{period}])\n"
        )
    )
    rules.append(
        {
            "record": f"slo:sli_error:ratio_rate{period}",
            "expr": over_period,
            "labels": _with_window(labels, windows.period),
        }
    )
    if options.guarded(slo):
        assert isinstance(slo.sli, EventsSLI | LatencySLI)
        for w in windows.long_windows:
            rules.append(
                {
                    "record": f"slo:sli_bad_events:increase{format_duration(w)}",
                    "expr": f"({_windowed(slo.sli.error_query, w)}) * {w}",
                    "labels": _with_window(labels, w),
                }
            )
    return rules


def _meta_rules(slo: SLO, windows: AlertWindows, options: RuleOptions) -> list[dict[str, Any]]:
    labels, sel = _slo_labels(slo, options), selector(slo)
    period, days = (
        format_duration(windows.period),
        exact_number(Fraction(windows.period, 86400)),
    )
    forecast = format_duration(windows.page.slow.long)
    return [
        {"record": "slo:objective:ratio", "expr": f"vector({exact_number(slo.objective_ratio)})", "labels": labels},
        {"record": "slo:error_budget:ratio", "expr": f"vector({exact_number(slo.error_budget)})", "labels": labels},
        {"record": "slo:time_period:days", "expr": f"vector({days})", "labels": labels},
        {
            "record": "slo:current_burn_rate:ratio",
            "expr": (
                f"slo:sli_error:ratio_rate{format_duration(windows.windows[0])}{sel}\n"
                f"/ {_ON} group_left\nslo:error_budget:ratio{sel}\n"
            ),
            "labels": labels,
        },
        {
            "record": "slo:period_burn_rate:ratio",
            "expr": f"slo:sli_error:ratio_rate{period}{sel}\n/ {_ON} group_left\nslo:error_budget:ratio{sel}\n",
            "labels": labels,
        },
        {
            "record": "slo:period_error_budget_remaining:ratio",
            "expr": f"1 - slo:period_burn_rate:ratio{sel}",
            "labels": labels,
        },
        {
            "record": "slo:time_to_error_budget_exhaustion:seconds",
            "expr": (
                f"slo:period_error_budget_remaining:ratio{sel} * {windows.period}\n"
                f"/ {_ON}\n"
                f"(slo:sli_error:ratio_rate{forecast}{sel} / {_ON} group_left slo:error_budget:ratio{sel} > 0)\n"
            ),
            "labels": labels,
        },
        {
            "record": "sloth_slo_info",
            "expr": "vector(1)",
            "labels": dict(
                sorted(
                    {
                        **labels,
                        "sloth_mode": slo.mode,
                        "sloth_objective": exact_number(slo.objective),
                        "sloth_spec": slo.spec_version,
                        "sloth_version": GENERATOR,
                    }.items()
                )
            ),
        },
    ]


def _burn_condition(slo: SLO, severity: BurnAlertWindows, options: RuleOptions, budget: str) -> str:
    sel, blocks = selector(slo), []
    for pair in severity.pairs:
        threshold = f"({exact_number(pair.factor)} * {budget})"
        terms = [
            f"max(slo:sli_error:ratio_rate{format_duration(w)}{sel} > {threshold}) without (sloth_window)"
            for w in (pair.short, pair.long)
        ]
        if options.guarded(slo):
            long = format_duration(pair.long)
            terms.append(
                f"max(slo:sli_bad_events:increase{long}{sel} >= {options.min_bad_events}) without (sloth_window)"
            )
        blocks.append("(\n    " + "\n    and\n    ".join(terms) + "\n)")
    return "\nor\n".join(blocks) + "\n"


def _alert_rules(slo: SLO, windows: AlertWindows, options: RuleOptions) -> list[dict[str, Any]]:
    alerting, budget = slo.alerting, exact_number(slo.error_budget)
    who = "{{$labels.sloth_service}} {{$labels.sloth_slo}}"
    rules: list[dict[str, Any]] = []
    for severity, spec in ((windows.page, alerting.page), (windows.ticket, alerting.ticket)):
        if spec.disable:
            continue
        annotations = {
            "summary": f"{who} SLO error budget burn rate is over expected.",
            "title": f"({severity.severity}) {who} SLO error budget burn rate is too fast.",
            "runbook_url": runbook_url(options.runbook_base, slo, severity.severity),
            **alerting.annotations,
            **spec.annotations,
        }
        rules.append(
            {
                "alert": alerting.name,
                "expr": _burn_condition(slo, severity, options, budget),
                "labels": dict(sorted({**alerting.labels, **spec.labels, "sloth_severity": severity.severity}.items())),
                "annotations": dict(sorted(annotations.items())),
            }
        )
    if not alerting.ticket.disable and options.exhaustion_horizon > 0:
        horizon = format_duration(options.exhaustion_horizon)
        annotations = {
            "summary": f"{who} SLO error budget runs out within {horizon} at the current burn rate.",
            "title": f"(ticket) {who} SLO error budget exhausted in {{{{ $value | humanizeDuration }}}}.",
            "runbook_url": runbook_url(options.runbook_base, slo, "budget-exhaustion"),
            **alerting.annotations,
            **alerting.ticket.annotations,
        }
        labels = {**alerting.labels, **alerting.ticket.labels, "sloth_severity": "ticket"}
        rules.append(
            {
                "alert": f"{alerting.name}BudgetExhaustion",
                "expr": f"slo:time_to_error_budget_exhaustion:seconds{selector(slo)} < {options.exhaustion_horizon}",
                "labels": dict(sorted(labels.items())),
                "annotations": dict(sorted(annotations.items())),
            }
        )
    return rules
