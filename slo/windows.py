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

    @property
    def factor(self) -> Fraction:
        return Fraction(self.error_budget_percent) / 100 * self.period / self.long


@dataclass(frozen=True)
class BurnAlertWindows:
    """One severity: fires when the quick pair or the slow pair holds."""

    severity: Severity
    quick: WindowPair
    slow: WindowPair

    @property
    def pairs(self) -> tuple[WindowPair, WindowPair]:
        return (self.quick, self.slow)


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
        document = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise SpecError(f"cannot read: {exc.strerror}", file=file) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise SpecError(
            f"not YAML: {getattr(exc, 'problem', exc)}", file=file, line=mark.line + 1 if mark else None
        ) from None
    if not isinstance(document, dict):
        raise SpecError("expected a mapping", file=file)
    if document.get("kind") == "AlertWindows":
        if document.get("apiVersion") != "sloth.slok.dev/v1":
            raise SpecError("unknown apiVersion (expected sloth.slok.dev/v1)", file=file, field="apiVersion")
        body = document.get("spec")
    elif document.get("version") == "alertWindows/v1":
        body = {k: v for k, v in document.items() if k != "version"}
    else:
        raise SpecError("not an AlertWindows document (kind: AlertWindows or version: alertWindows/v1)", file=file)
    return _parse_windows(body, file)


def _parse_windows(body: Any, file: str) -> AlertWindows:
    if not isinstance(body, dict) or set(body) - {"sloPeriod", "page", "ticket"}:
        raise SpecError("expected exactly sloPeriod, page and ticket", file=file, field="spec")
    period = _duration(body.get("sloPeriod"), file, "sloPeriod")

    def pair(path: str, raw: Any) -> WindowPair:
        if not isinstance(raw, dict) or set(raw) != {"errorBudgetPercent", "shortWindow", "longWindow"}:
            raise SpecError("expected errorBudgetPercent, shortWindow and longWindow", file=file, field=path)
        percent = raw["errorBudgetPercent"]
        if isinstance(percent, bool) or not isinstance(percent, int | float) or not 0 < percent <= 100:
            raise SpecError("must be a number in (0, 100]", file=file, field=f"{path}.errorBudgetPercent")
        short = _duration(raw["shortWindow"], file, f"{path}.shortWindow")
        long = _duration(raw["longWindow"], file, f"{path}.longWindow")
        if short >= long:
            raise SpecError("shortWindow must be shorter than longWindow", file=file, field=path)
        return WindowPair(short, long, Decimal(repr(percent)), period)

    def severity(name: Severity) -> BurnAlertWindows:
        raw = body.get(name)
        if not isinstance(raw, dict) or set(raw) != {"quick", "slow"}:
            raise SpecError("expected quick and slow", file=file, field=name)
        return BurnAlertWindows(name, pair(f"{name}.quick", raw["quick"]), pair(f"{name}.slow", raw["slow"]))

    return AlertWindows(period, severity("page"), severity("ticket"))


def _duration(raw: Any, file: str, field: str) -> int:
    try:
        return parse_duration(raw)
    except ValueError as exc:
        raise SpecError(str(exc), file=file, field=field) from None


__all__ = ["AlertWindows", "BurnAlertWindows", "WindowPair", "format_duration", "load_alert_windows"]
