"""`nova runbooks check`: the repository's alerts and runbooks match, and each way of breaking that is caught."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from alerts.watch import PredictiveAlert
from runbooks.catalog import PLATFORM_RULES, RUNBOOKS_DIR, predictive_alerts, suite_alerts, suite_slos
from runbooks.check import check_runbooks, find_promtool
from runbooks.document import REQUIRED_SECTIONS, read_runbook
from tests.runbooks.conftest import runbooks
from tests.slo.promtool import promtool


@pytest.fixture
def copied(tmp_path: Path) -> Path:
    """The repository's runbooks, copied to break."""
    folder = tmp_path / "runbooks"
    shutil.copytree(RUNBOOKS_DIR, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return folder


def test_check_passes_on_the_repository() -> None:
    result = runbooks("check")
    assert result.exit_code == 0, result.output
    assert "runbooks OK: 19 alerts" in result.stdout


def test_every_alert_the_suite_fires_has_its_own_runbook() -> None:
    alerts = suite_alerts()
    names = {alert.name for alert in alerts}
    assert {"PaymentsAvailabilityBurn", "PortfolioLatencyBurnBudgetExhaustion", "NovaServiceDown"} <= names
    assert {"PaymentsAvailabilityPredictedBurn", "NovaServiceNotReady", "NovaDatabaseSaturation"} <= names
    assert len({alert.runbook_name for alert in alerts}) == len(alerts) == 19
    assert check_runbooks(alerts, RUNBOOKS_DIR) == []


def test_a_missing_runbook_fails_check(copied: Path) -> None:
    (copied / "payments-latency-ticket.md").unlink()
    result = runbooks("check", "--runbooks", str(copied))
    assert result.exit_code == 1
    assert "alert PaymentsLatencyBurn (ticket)" in result.stdout
    assert "no runbook" in result.stdout and "payments-latency-ticket.md" in result.stdout


@pytest.mark.parametrize("section", REQUIRED_SECTIONS)
def test_a_missing_section_fails_check(copied: Path, section: str) -> None:
    path = copied / "nova-service-down.md"
    path.write_text(path.read_text().replace(f"## {section}\n", f"## {section} (draft)\n"))
    problems = [str(p) for p in check_runbooks(suite_alerts(), copied)]
    assert f"nova-service-down.md: no '## {section}' section" in problems
    # Steps under a renamed Diagnosis or Verify recovery are out of place too; nothing else is wrong.
    assert all(p.startswith("nova-service-down.md: ") for p in problems)


def test_an_empty_section_fails_check(copied: Path) -> None:
    path = copied / "nova-database-saturation.md"
    text = path.read_text()
    start, end = text.index("## Escalation\n"), text.index("## Verify recovery")
    path.write_text(text[:start] + "## Escalation\n\n" + text[end:])
    problems = check_runbooks(suite_alerts(), copied)
    assert [str(p) for p in problems] == ["nova-database-saturation.md: section '## Escalation' is empty"]


def test_a_runbook_that_belongs_to_no_alert_fails_check(copied: Path) -> None:
    shutil.copy(copied / "nova-service-down.md", copied / "nova-service-gone.md")
    result = runbooks("check", "--runbooks", str(copied))
    assert result.exit_code == 1
    assert "nova-service-gone.md" in result.stdout and "belongs to no alert" in result.stdout


def test_a_runbook_not_listing_its_alert_fails_check(copied: Path) -> None:
    path = copied / "payments-availability-page.md"
    path.write_text(path.read_text().replace("alerts: [PaymentsAvailabilityBurn]", "alerts: [PaymentsAvailability]"))
    problems = [str(p) for p in check_runbooks(suite_alerts(), copied)]
    assert any("does not list PaymentsAvailabilityBurn" in p for p in problems)
    assert any("lists alert PaymentsAvailability, which the suite does not fire" in p for p in problems)


def test_an_alert_without_runbook_url_fails_check(tmp_path: Path) -> None:
    rules = tmp_path / "platform.yml"
    text = PLATFORM_RULES.read_text().replace("runbook_url: runbooks/nova-database-saturation.md", "team: platform")
    rules.write_text(text)
    problems = [str(p) for p in check_runbooks(suite_alerts(platform_rules=rules), RUNBOOKS_DIR)]
    assert "alert NovaDatabaseSaturation (ticket): no runbook_url annotation" in problems[0]
    assert "nova-database-saturation.md: belongs to no alert (no alert's runbook_url points at it)" in problems


def test_a_diagnosis_without_steps_fails_check(copied: Path) -> None:
    path = copied / "portfolio-latency-predictive.md"
    text = path.read_text()
    start, end = text.index("## Diagnosis\n"), text.index("## Mitigation")
    path.write_text(text[:start] + "## Diagnosis\n\nLook at the dashboard.\n\n" + text[end:])
    problems = [str(p) for p in check_runbooks(suite_alerts(), copied)]
    assert problems == [
        "portfolio-latency-predictive.md: '## Diagnosis' has no step `nova runbooks run` can execute "
        "(a promql or nova-check block)"
    ]


def test_a_malformed_step_fails_check(copied: Path) -> None:
    path = copied / "nova-service-not-ready.md"
    text = path.read_text().replace(
        '```nova-check title="Both services ready again"\nreadyz', "```nova-check\nreadiness"
    )
    path.write_text(text)
    problems = [str(p) for p in check_runbooks(suite_alerts(), copied)]
    assert len(problems) == 2
    assert all(p.startswith("nova-service-not-ready.md: line ") for p in problems)
    assert any('has no title="..."' in p for p in problems)
    assert any("'readiness' is not one of readyz, ledger, faults" in p for p in problems)


def test_promql_that_prometheus_cannot_parse_fails_check(copied: Path) -> None:
    binary = promtool()
    path = copied / "payments-latency-page.md"
    path.write_text(
        path.read_text().replace("sum(http_server_active_requests{", "sum by (route (http_server_active_requests{")
    )
    problems = [str(p) for p in check_runbooks(suite_alerts(), copied, binary)]
    assert len(problems) == 1
    assert problems[0].startswith("payments-latency-page.md: line ")
    assert "Requests in flight on payments" in problems[0] and "parse error" in problems[0]


def test_check_parses_promql_with_promtool_when_installed() -> None:
    assert find_promtool() == shutil.which("promtool")
    result = runbooks("check")
    expected = "PromQL parsed by promtool" if find_promtool() else "PromQL not parsed"
    assert expected in result.stdout


def test_platform_rules_pass_promtool() -> None:
    result = subprocess.run(
        [promtool(), "check", "rules", str(PLATFORM_RULES)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 3 rules found" in result.stdout + result.stderr


def test_predictive_catalog_follows_the_predictive_alerts_own_names() -> None:
    for alert in predictive_alerts(suite_slos()):
        service, slo = alert.labels["service"], alert.labels["slo"]
        fired = PredictiveAlert(service, slo, "firing", 0.9, 10.0, 0.0, 0.0)
        assert alert.name == fired.name
        assert alert.runbook_url == fired.annotations["runbook_url"]
        assert {k: fired.labels[k] for k in ("severity", "slo", "service", "kind")} == alert.labels


def test_every_runbooks_first_five_minutes_fit_on_a_page() -> None:
    from alerts.pager.runbook import first_five_minutes

    for path in sorted(RUNBOOKS_DIR.glob("*-*.md")):
        steps = first_five_minutes(path.read_text())
        assert 3 <= len(steps) <= 5, path.name
        assert read_runbook(path).steps, path.name


def test_an_slo_runbook_naming_another_dashboard_fails_check(copied: Path) -> None:
    path = copied / "portfolio-latency-ticket.md"
    path.write_text(path.read_text().replace("uid: slo-portfolio-latency", "uid: slo-payments-latency"))
    problems = [str(p) for p in check_runbooks(suite_alerts(), copied)]
    assert problems == [
        "alert PortfolioLatencyBurn (ticket): portfolio-latency-ticket.md does not name the SLO's dashboard "
        "(uid slo-portfolio-latency)"
    ]
