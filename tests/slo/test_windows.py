"""Alert windows: burn-rate factors derived from budget shares, Sloth's AlertWindows files, exact numbers."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from slo.durations import parse_duration
from slo.errors import SpecError
from slo.rules import RuleOptions, generate
from slo.spec import SLO, Alerting, EventsSLI
from slo.windows import AlertWindows, exact_float, exact_number, load_alert_windows, workbook_windows

GOLDEN = Path(__file__).parent / "golden"
SLOTH_FORM = GOLDEN / "alert-windows-7d.windows.yaml"
FLAT_FORM = GOLDEN / "alert-windows-7d-flat.windows.yaml"
DAY = 86400


def factors(windows: AlertWindows) -> list[str]:
    """Page quick, page slow, ticket quick, ticket slow, as written into the rules."""
    return [exact_number(pair.factor) for severity in windows.severities for pair in severity.pairs]


def an_slo(period: int | None = None) -> SLO:
    sli = EventsSLI("sum(rate(bad[{{.window}}]))", "sum(rate(all[{{.window}}]))")
    return SLO("svc", "avail", Decimal("99.9"), sli, Alerting("SvcBurn"), period=period, source="spec.yaml:3")


def test_workbook_windows_over_30_days_give_factors_14_4_6_3_1() -> None:
    assert factors(workbook_windows(30 * DAY)) == ["14.4", "6", "3", "1"]


def test_workbook_windows_over_28_days_give_factors_13_44_5_6_2_8_and_14_15() -> None:
    assert factors(workbook_windows(28 * DAY)) == ["13.44", "5.6", "2.8", "(14 / 15)"]


def test_the_28_day_slow_ticket_factor_is_exactly_14_15() -> None:
    assert workbook_windows(28 * DAY).ticket.slow.factor == Fraction(14, 15)


def test_workbook_windows_are_the_sre_workbook_pairs() -> None:
    windows = workbook_windows()
    pairs = [(p.short, p.long) for severity in windows.severities for p in severity.pairs]
    assert pairs == [(300, 3600), (1800, 21600), (7200, DAY), (21600, 3 * DAY)]
    assert windows.windows == (300, 1800, 3600, 7200, 21600, DAY, 3 * DAY)
    assert windows.long_windows == (3600, 21600, DAY, 3 * DAY)


@pytest.mark.parametrize("path", [SLOTH_FORM, FLAT_FORM], ids=["sloth-form", "flat-form"])
def test_a_7_day_alert_windows_file_gives_factors_13_44_3_5_1_4_0_98(path: Path) -> None:
    assert factors(load_alert_windows(path)) == ["13.44", "3.5", "1.4", "0.98"]


def test_both_alert_windows_file_forms_load_the_same_windows() -> None:
    assert load_alert_windows(SLOTH_FORM) == load_alert_windows(FLAT_FORM)


def test_an_alert_windows_file_keeps_its_period_and_windows() -> None:
    windows = load_alert_windows(SLOTH_FORM)
    assert windows.period == 7 * DAY
    assert (windows.page.quick.short, windows.page.quick.long) == (300, 3600)
    assert (windows.ticket.slow.short, windows.ticket.slow.long) == (21600, 3 * DAY)
    assert windows.page.slow.error_budget_percent == Decimal("12.5")


def test_custom_windows_record_the_sli_over_1w_as_the_period_window() -> None:
    options = RuleOptions(period=7 * DAY, alert_windows=(load_alert_windows(SLOTH_FORM),))
    sli_group = generate([an_slo()], options)[0]
    records = [rule["record"] for rule in sli_group["rules"] if rule["record"].startswith("slo:sli_error:")]
    assert records == [f"slo:sli_error:ratio_rate{w}" for w in ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "1w")]
    assert sli_group["rules"][len(records) - 1]["labels"]["sloth_window"] == "1w"


def test_custom_windows_are_used_for_slos_of_their_period() -> None:
    custom = load_alert_windows(SLOTH_FORM)
    options = RuleOptions(period=7 * DAY, alert_windows=(custom,))
    assert options.windows_for(an_slo()) is custom


def test_custom_windows_of_another_period_leave_the_workbook_windows_in_place() -> None:
    options = RuleOptions(period=30 * DAY, alert_windows=(load_alert_windows(SLOTH_FORM),))
    assert options.windows_for(an_slo()) == workbook_windows(30 * DAY)


def test_an_slo_period_from_its_spec_wins_over_the_default_period() -> None:
    options = RuleOptions(period=30 * DAY)
    assert options.windows_for(an_slo(period=28 * DAY)) == workbook_windows(28 * DAY)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Fraction(1, 10000), "0.0001"),
        (Decimal("0.0001"), "0.0001"),
        (Fraction(1, 1000), "0.001"),
        (Decimal("99.99") / 100, "0.9999"),
        (1 - Decimal("99.9") / 100, "0.001"),
        (Fraction(72, 5), "14.4"),
        (Fraction(6), "6"),
        (Fraction(1), "1"),
        (Fraction(100), "100"),
        (Fraction(49, 50), "0.98"),
        (Fraction(1, 3), "(1 / 3)"),
        (Fraction(14, 15), "(14 / 15)"),
        (Decimal("12.5"), "12.5"),
        (Fraction(0), "0"),
    ],
)
def test_exact_number_writes_a_decimal_when_one_exists_else_a_division(value: Fraction | Decimal, text: str) -> None:
    assert exact_number(value) == text


def test_exact_number_never_writes_binary_rounding() -> None:
    budget = 1 - Decimal(repr(99.9)) / 100
    assert exact_number(budget) == "0.001"
    assert "0.0009999999999999432" not in exact_number(budget)


@pytest.mark.parametrize(("value", "expected"), [(Fraction(14, 15), 14 / 15), (Fraction(1, 10000), 0.0001)])
def test_exact_float_is_what_prometheus_computes_from_the_text(value: Fraction, expected: float) -> None:
    assert exact_float(value) == expected


# -- bad AlertWindows files -------------------------------------------------------------------------


def _mutated(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


PERCENT = "spec.page.quick.errorBudgetPercent"

# fmt: off
BAD_WINDOWS = [
    # (id, old, new, field, reason)
    ("unknown-api-version", '"sloth.slok.dev/v1"', '"sloth.slok.dev/v2"', "apiVersion", "unknown apiVersion"),
    ("not-alert-windows", 'kind: "AlertWindows"', 'kind: "SLO"', "", "not an AlertWindows document"),
    ("unknown-top-field", 'kind: "AlertWindows"', 'kind: "AlertWindows"\nmetadata: {name: x}', "metadata", "unknown"),
    ("no-period", "  sloPeriod: 7d\n", "", "spec.sloPeriod", "is required"),
    ("bad-period", "sloPeriod: 7d", "sloPeriod: 7x", "spec.sloPeriod", "not a duration"),
    ("unknown-spec-field", "  page:", "  extra: 1\n  page:", "spec", "expected exactly sloPeriod, page and ticket"),
    ("no-ticket", "  ticket:", "  tickets:", "spec", "expected exactly"),
    ("no-slow", "    slow:", "    slower:", "spec.page", "expected quick and slow"),
    ("percent-zero", "errorBudgetPercent: 8", "errorBudgetPercent: 0", PERCENT, "(0, 100]"),
    ("percent-over", "errorBudgetPercent: 8", "errorBudgetPercent: 101", PERCENT, "(0, 100]"),
    ("percent-text", "errorBudgetPercent: 8", 'errorBudgetPercent: "8"', PERCENT, "must be a number"),
    ("missing-percent", "      errorBudgetPercent: 8\n", "", "spec.page.quick", "errorBudgetPercent"),
    ("bad-window", "shortWindow: 5m", "shortWindow: 5 minutes", "spec.page.quick.shortWindow", "not a duration"),
    ("short-not-shorter", "longWindow: 1h", "longWindow: 5m", "spec.page.quick", "shortWindow must be shorter"),
    ("window-over-period", "longWindow: 3d", "longWindow: 8d", "spec.ticket.slow.longWindow", "shorter than sloPeriod"),
    ("yaml-syntax", "  page:\n", "  page: [\n", "", "not YAML"),
]
# fmt: on


@pytest.mark.parametrize(
    ("old", "new", "field", "reason"), [c[1:] for c in BAD_WINDOWS], ids=[c[0] for c in BAD_WINDOWS]
)
def test_a_bad_alert_windows_file_is_a_spec_error_naming_the_field(
    tmp_path: Path, old: str, new: str, field: str, reason: str
) -> None:
    path = tmp_path / "windows.yaml"
    path.write_text(_mutated(SLOTH_FORM.read_text(), old, new))
    with pytest.raises(SpecError) as caught:
        load_alert_windows(path)
    error = caught.value
    assert error.file == str(path)
    assert error.field == field
    assert reason in str(error)
    assert "\n" not in str(error)


@pytest.mark.parametrize(
    ("old", "new", "line"),
    [
        ("errorBudgetPercent: 12.5", "errorBudgetPercent: -1", 12),
        ("longWindow: 3d", "longWindow: 8d", 23),
        ("sloPeriod: 7d", "sloPeriod: 7x", 5),
    ],
)
def test_a_bad_alert_windows_file_error_gives_the_line(tmp_path: Path, old: str, new: str, line: int) -> None:
    path = tmp_path / "windows.yaml"
    path.write_text(_mutated(SLOTH_FORM.read_text(), old, new))
    with pytest.raises(SpecError, match=rf"^{path}:{line}: ") as caught:
        load_alert_windows(path)
    assert caught.value.line == line


def test_a_bad_flat_alert_windows_file_is_a_spec_error(tmp_path: Path) -> None:
    path = tmp_path / "flat.yaml"
    path.write_text(_mutated(FLAT_FORM.read_text(), "longWindow: 1h", "longWindow: 1m"))
    with pytest.raises(SpecError, match=r"flat.yaml:\d+: page.quick: shortWindow must be shorter than longWindow"):
        load_alert_windows(path)


@pytest.mark.parametrize("text", ["", "- 1\n", "just text\n", "a: 1\n---\nb: 2\n"])
def test_an_alert_windows_file_that_is_no_mapping_is_a_spec_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "windows.yaml"
    path.write_text(text)
    with pytest.raises(SpecError, match=r"expected a mapping|not an AlertWindows document|not YAML"):
        load_alert_windows(path)


def test_a_missing_alert_windows_file_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read: No such file or directory"):
        load_alert_windows(tmp_path / "missing.yaml")


def test_workbook_windows_for_a_period_no_longer_than_its_windows_are_refused() -> None:
    with pytest.raises(SpecError, match=r"spec.yaml:3: SLO 'avail': period: the SLO period 3d must be longer"):
        RuleOptions(period=parse_duration("3d")).windows_for(an_slo())
