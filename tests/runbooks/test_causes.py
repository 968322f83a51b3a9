"""Causes as data: what a diagnostic step declares, when its answer is a finding, what a run names."""

from __future__ import annotations

from pathlib import Path

import pytest

from runbooks.catalog import RUNBOOKS_DIR
from runbooks.causes import CAUSES, LINK_CAUSES, parse_attention, parse_causes, toxic_cause
from runbooks.document import parse_runbook, read_runbook
from runbooks.run import ATTENTION, OK, StepResult, causes_found

RUNBOOK = """---
alerts: [X]
severity: page
---
## Diagnosis

```promql title="Injected errors" causes="error_rate" attention="> 0"
sum(rate(nova_payments_total{outcome="fault_injected"}[5m]))
```

```nova-check title="Ready" causes="database_unavailable"
readyz
```
"""


def test_a_step_declares_its_causes_and_when_its_answer_is_a_finding() -> None:
    runbook = parse_runbook(Path("x.md"), RUNBOOK)

    promql, check = runbook.steps
    assert promql.causes == ("error_rate",) and str(promql.attention) == "> 0"
    assert promql.attention is not None and promql.attention.holds([0.0, 0.2])
    assert not promql.attention.holds([0.0, float("nan")])
    assert check.causes == ("database_unavailable",) and check.attention is None
    assert not runbook.problems


@pytest.mark.parametrize(
    ("attributes", "problem"),
    [
        ('causes="gremlins" attention="> 0"', "unknown cause(s) gremlins"),
        ('causes="error_rate" attention="about 3"', "is not a comparison"),
        ('causes="error_rate"', "causes without attention"),
    ],
)
def test_a_malformed_cause_declaration_is_a_problem_the_check_reports(attributes: str, problem: str) -> None:
    text = RUNBOOK.replace('causes="error_rate" attention="> 0"', attributes)

    runbook = parse_runbook(Path("x.md"), text)

    assert any(problem in found for found in runbook.problems), runbook.problems
    assert runbook.steps[0].causes == () or runbook.steps[0].attention is None


def test_attention_reads_every_comparison_and_refuses_others() -> None:
    assert parse_attention(">= 0.5").holds([0.5])
    assert parse_attention("< 1").holds([0.2]) and not parse_attention("< 1").holds([1.0])
    assert parse_attention("!= 0").holds([2.0])
    with pytest.raises(ValueError, match="not a comparison"):
        parse_attention("> inf")
    assert parse_causes("error_rate, cpu_saturation") == ("error_rate", "cpu_saturation")
    assert set(CAUSES) >= {"database_unavailable", "error_rate", "worker_restarts", "dependency_latency"}


def test_a_run_names_the_causes_of_its_findings_in_step_order() -> None:
    promql, check = parse_runbook(Path("x.md"), RUNBOOK).steps
    results = [
        StepResult(check, ATTENTION, "GET /readyz", ("payments 503",), causes=("database_unavailable",)),
        StepResult(promql, OK, "prometheus", ("0",), (0.0,)),
        StepResult(promql, ATTENTION, "prometheus", ("0.3",), (0.3,), causes=("error_rate",)),
        StepResult(check, ATTENTION, "GET /readyz", ("payments 503",), causes=("database_unavailable",)),
    ]

    assert causes_found(results) == ["database_unavailable", "error_rate"]


def test_a_toxic_points_to_the_dependency_or_the_database_by_the_link_it_is_on() -> None:
    assert toxic_cause("payments", "latency") == "dependency_latency"
    assert toxic_cause("payments", "reset_peer") == "dependency_errors"
    assert toxic_cause("payments-db", "slicer") == "database_latency"
    assert toxic_cause("portfolio-db", "disabled") == "database_unavailable"
    assert toxic_cause("payments", "unknown_kind") is None
    assert set(LINK_CAUSES.values()) <= set(CAUSES)


def test_every_portfolio_runbook_looks_for_a_cpu_burn_on_payments_its_dependency() -> None:
    # cpu-burn starves payments; portfolio pages for the orders it fails, while payments' own admin API times out.
    for path in sorted(RUNBOOKS_DIR.glob("portfolio-*.md")):
        steps = read_runbook(path).steps
        assert any(
            "cpu_saturation" in step.causes and 'service="payments", fault="cpu_burn"' in step.body for step in steps
        ), path.name


def test_every_portfolio_latency_runbook_can_name_a_slow_link_to_payments_after_the_fault_is_gone() -> None:
    # A 10 s flaky network is over before its page arrives: only the latencies it left show it.
    for path in sorted(RUNBOOKS_DIR.glob("portfolio-latency-*.md")):
        steps = read_runbook(path).steps
        assert any(
            "dependency_latency" in step.causes
            and "nova_fault_active" not in step.body
            and 'service="payments"' in step.body
            for step in steps
        ), path.name
