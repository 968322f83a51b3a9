"""Multi-window multi-burn-rate alert windows (the SRE workbook's, in Sloth's `AlertWindows` form).

A burn-rate factor is derived, never typed in: burning `error_budget_percent` of the period's
budget within the long window means burning at `percent/100 * period / long_window` times the
sustainable rate. With the workbook's percentages (2% in 1h, 5% in 6h, 10% in 1d, 10% in 3d)
a 30-day period gives 14.4, 6, 3 and 1; other periods scale (28 days: 13.44, 5.6, 2.8, 14/15).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import yaml

from slo.durations import format_duration, parse_duration
from slo.errors import SpecError

Severity = Literal["page", "ticket"]
DEFAULT_PERIOD_SECONDS = 30 * 86400


@dataclass(frozen=True)
class WindowPair:
    """Both windows must burn faster than `factor` for the pair to hold."""

    short: int
    long: int
    error_budget_percent: Decimal
    period: int
    burn_rate: Fraction | None = None  # given outright (an OpenSLO AlertCondition's threshold)

    @property
    def factor(self) -> Fraction:
        if self.burn_rate is not None:
            return self.burn_rate
        return Fraction(self.error_budget_percent) / 100 * self.period / self.long


@dataclass(frozen=True)
class BurnAlertWindows:
    """One severity: fires when the quick pair or the slow pair holds."""

    severity: Severity
    quick: WindowPair
    slow: WindowPair

    @property
    def pairs(self) -> tuple[WindowPair, ...]:
        """Both pairs; one when they are the same (a severity given by a single condition)."""
        return (self.quick,) if self.quick == self.slow else (self.quick, self.slow)


@dataclass(frozen=True)
class AlertWindows:
    period: int
    page: BurnAlertWindows
    ticket: BurnAlertWindows

    @property
    def severities(self) -> tuple[BurnAlertWindows, BurnAlertWindows]:
        return (self.page, self.ticket)

    @property
    def windows(self) -> tuple[int, ...]:
        """Every window an alert reads, shortest first (the SLI is recorded for each)."""
        return tuple(sorted({w for sev in self.severities for pair in sev.pairs for w in (pair.short, pair.long)}))

    @property
    def long_windows(self) -> tuple[int, ...]:
        return tuple(sorted({pair.long for sev in self.severities for pair in sev.pairs}))


def workbook_windows(period: int = DEFAULT_PERIOD_SECONDS) -> AlertWindows:
    """The SRE workbook's windows and budget shares, scaled to `period`."""

    def pair(percent: str, short: str, long: str) -> WindowPair:
        return WindowPair(parse_duration(short), parse_duration(long), Decimal(percent), period)

    return AlertWindows(
        period=period,
        page=BurnAlertWindows("page", pair("2", "5m", "1h"), pair("5", "30m", "6h")),
        ticket=BurnAlertWindows("ticket", pair("10", "2h", "1d"), pair("10", "6h", "3d")),
    )


def exact_number(value: Fraction | Decimal) -> str:
    """A number as PromQL text without binary rounding: a decimal when one exists, else `(n / d)`."""
    fraction = Fraction(value)
    denominator = fraction.denominator
    for prime in (2, 5):
        while denominator % prime == 0:
            denominator //= prime
    if denominator != 1:
        return f"({fraction.numerator} / {fraction.denominator})"
    text = format(Decimal(fraction.numerator) / Decimal(fraction.denominator), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def exact_float(value: Fraction | Decimal) -> float:
    """The float Prometheus computes from `exact_number`'s text (one division at most)."""
    fraction = Fraction(value)
    text = exact_number(fraction)
    if text.startswith("("):
        return float(fraction.numerator) / float(fraction.denominator)
    return float(text)


def load_alert_windows(path: Path) -> AlertWindows:
    """Sloth's AlertWindows file: `apiVersion: sloth.slok.dev/v1, kind: AlertWindows, spec: ...`
    or the flat `version: alertWindows/v1` form."""
    file = str(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError(f"cannot read: {exc.strerror}", file=file) from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        document = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise SpecError(
            f"not YAML: {getattr(exc, 'problem', exc)}", file=file, line=mark.line + 1 if mark else None
        ) from None
    finally:
        loader.dispose()
    lines: dict[str, int] = {}
    if node is not None:
        lines[""] = node.start_mark.line + 1
        _index_lines(node, "", lines)
    if not isinstance(document, dict):
        raise SpecError("expected a mapping", file=file, line=lines.get(""))
    where = _Where(file, lines)
    if document.get("kind") == "AlertWindows":
        if document.get("apiVersion") != "sloth.slok.dev/v1":
            raise where.error("apiVersion", "unknown apiVersion (expected sloth.slok.dev/v1)")
        for key in document:
            if key not in ("apiVersion", "kind", "spec"):
                raise where.error(str(key), "unknown field")
        return _parse_windows(document.get("spec"), _Where(file, lines, "spec"))
    if document.get("version") == "alertWindows/v1":
        return _parse_windows({k: v for k, v in document.items() if k != "version"}, where)
    raise where.error("", "not an AlertWindows document (kind: AlertWindows or version: alertWindows/v1)")


def _index_lines(node: yaml.Node, path: str, lines: dict[str, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = f"{path}.{key.value}" if path else str(key.value)
            lines[child] = key.start_mark.line + 1
            _index_lines(value, child, lines)


@dataclass(frozen=True)
class _Where:
    """Errors located in the file: `field` is dotted from the windows body (`page.quick.longWindow`)."""

    file: str
    lines: dict[str, int]
    prefix: str = ""

    def error(self, field: str, message: str) -> SpecError:
        path = ".".join(part for part in (self.prefix, field) if part)
        probe = path
        while probe and probe not in self.lines:
            probe = probe.rpartition(".")[0]
        return SpecError(message, file=self.file, line=self.lines.get(probe), field=path)


def _parse_windows(body: Any, where: _Where) -> AlertWindows:
    if not isinstance(body, dict) or set(body) - {"sloPeriod", "page", "ticket"}:
        raise where.error("", "expected exactly sloPeriod, page and ticket")
    period = _duration(body.get("sloPeriod"), where, "sloPeriod")

    def pair(path: str, raw: Any) -> WindowPair:
        if not isinstance(raw, dict) or set(raw) != {"errorBudgetPercent", "shortWindow", "longWindow"}:
            raise where.error(path, "expected errorBudgetPercent, shortWindow and longWindow")
        percent = raw["errorBudgetPercent"]
        if isinstance(percent, bool) or not isinstance(percent, int | float) or not 0 < percent <= 100:
            raise where.error(f"{path}.errorBudgetPercent", "must be a number in (0, 100]")
        short = _duration(raw["shortWindow"], where, f"{path}.shortWindow")
        long = _duration(raw["longWindow"], where, f"{path}.longWindow")
        if short >= long:
            raise where.error(path, "shortWindow must be shorter than longWindow")
        if long >= period:
            raise where.error(f"{path}.longWindow", f"must be shorter than sloPeriod ({format_duration(period)})")
        return WindowPair(short, long, Decimal(repr(percent)), period)

    def severity(name: Severity) -> BurnAlertWindows:
        raw = body.get(name)
        if not isinstance(raw, dict) or set(raw) != {"quick", "slow"}:
            raise where.error(name, "expected quick and slow")
        return BurnAlertWindows(name, pair(f"{name}.quick", raw["quick"]), pair(f"{name}.slow", raw["slow"]))

    return AlertWindows(period, severity("page"), severity("ticket"))


def _duration(raw: Any, where: _Where, field: str) -> int:
    if raw is None:
        raise where.error(field, "is required")
    try:
        return parse_duration(raw)
    except ValueError as exc:
        raise where.error(field, str(exc)) from None


__all__ = ["AlertWindows", "BurnAlertWindows", "WindowPair", "format_duration", "load_alert_windows"]
