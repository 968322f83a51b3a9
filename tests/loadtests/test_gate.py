"""The SLO gate on hand-built samples: exact figures, and a verdict that misses no breach."""

from __future__ import annotations

import math

import numpy as np
import pytest

from loadtests.gate import (
    OVERALL,
    RULE_OBJECTIVE,
    RULE_ZERO_FAILURES,
    GateError,
    Thresholds,
    availability_met,
    evaluate_gate,
    format_percent,
)
from loadtests.samples import CONNECTION_FAILED, RequestSample

T0 = 1_700_000_000.0
PAY = "POST /v1/payments"
ACCOUNT = "GET /v1/accounts/{id}"


def samples(
    endpoint: str, millis: list[float], status: int = 201, attempt: int = 1, start: float = T0, every: float = 0.01
) -> list[RequestSample]:
    return [RequestSample(start + i * every, endpoint, status, ms, attempt) for i, ms in enumerate(millis)]


def test_percentiles_are_observed_values_at_the_higher_rank() -> None:
    gate = evaluate_gate(samples(PAY, [float(ms) for ms in range(1000, 0, -1)]))  # 1..1000 ms, unsorted
    row = gate.overall
    # method="higher": sorted index ceil((n - 1) q); with n = 1000 that is 500, 950 and 990 (values 501, 951, 991).
    assert (row.p50_ms, row.p95_ms, row.p99_ms, row.max_ms) == (501.0, 951.0, 991.0, 1000.0)
    # Never below the classic nearest-rank definition (the ceil(q n)-th smallest: 990 ms for p99).
    assert row.p99_ms >= 990.0


@pytest.mark.parametrize("count", [1, 2, 37, 100])
def test_with_100_requests_or_fewer_p99_is_the_slowest_one(count: int) -> None:
    rng = np.random.default_rng(count)
    millis = [float(v) for v in rng.uniform(1, 150, count)]
    assert evaluate_gate(samples(PAY, millis)).overall.p99_ms == max(millis)


def test_p99_matches_a_hand_computed_rank_on_random_latencies() -> None:
    rng = np.random.default_rng(7)
    millis = [float(v) for v in rng.lognormal(3, 1, 12_345)]
    expected = sorted(millis)[math.ceil((len(millis) - 1) * 0.99)]
    assert evaluate_gate(samples(PAY, millis)).overall.p99_ms == expected


def test_p99_exactly_at_the_threshold_fails() -> None:
    gate = evaluate_gate(samples(PAY, [10.0] * 50 + [200.0]))
    assert gate.overall.p99_ms == 200.0
    assert not gate.passed
    assert gate.breaches[0] == "overall: p99 200.0 ms >= 200 ms"


def test_availability_is_exact_at_the_objective() -> None:
    ok = samples(PAY, [5.0] * 9_999)
    one_failure = evaluate_gate([*ok, RequestSample(T0 + 200, PAY, 503, 5.0, 1)])
    assert one_failure.overall.requests == 10_000
    assert one_failure.overall.availability_rule == RULE_OBJECTIVE
    assert one_failure.overall.availability == 0.9999
    assert one_failure.passed
    two = evaluate_gate([*ok[1:], RequestSample(T0 + 200, PAY, 503, 5.0, 1), RequestSample(T0 + 201, PAY, 500, 5, 1)])
    assert not two.passed
    assert two.breaches == [
        "overall: availability 99.980% < 99.990% (2 failed of 10000)",
        f"{PAY}: availability 99.980% < 99.990% (2 failed of 10000)",
    ]


def test_only_5xx_and_no_response_count_as_failures() -> None:
    statuses = [201, 200, 404, 409, 422, 429, 499, 500, 502, 503, CONNECTION_FAILED]
    row = evaluate_gate([RequestSample(T0 + i, PAY, s, 5.0, 1) for i, s in enumerate(statuses)]).overall
    assert row.failures == 4
    assert row.availability == 7 / 11


def test_a_breach_on_one_endpoint_fails_the_gate_though_overall_passes() -> None:
    fast = samples(ACCOUNT, [3.0] * 20_000)
    slow_tail = samples(PAY, [20.0] * 197 + [250.0, 260.0, 270.0], start=T0 + 1)
    gate = evaluate_gate(fast + slow_tail)
    assert gate.overall.passed
    by_name = {row.endpoint: row for row in gate.endpoints}
    assert by_name[ACCOUNT].passed
    assert by_name[PAY].p99_ms == 260.0 and not by_name[PAY].latency_ok
    assert not gate.passed
    assert gate.breaches == [f"{PAY}: p99 260.0 ms >= 200 ms"]
    assert [row.endpoint for row in gate.rows] == [ACCOUNT, PAY, OVERALL]


def test_retries_are_counted_apart_and_still_judged() -> None:
    first = samples(PAY, [10.0] * 30)
    retries = samples(PAY, [15.0] * 4, status=503, attempt=2) + samples(PAY, [15.0], attempt=3)
    row = evaluate_gate(first + retries).endpoints[0]
    assert (row.requests, row.first_attempts, row.retries, row.failures) == (35, 30, 5, 4)
    assert not row.availability_ok  # a failed retry is a failed request the service answered


def test_too_few_requests_are_judged_on_zero_failures() -> None:
    rare = [
        *samples("GET /v1/ledger/verify", [30.0] * 49, start=T0 + 5),
        RequestSample(T0 + 6, "GET /v1/ledger/verify", 500, 30.0, 1),
    ]
    busy = samples(ACCOUNT, [3.0] * 10_000)
    gate = evaluate_gate(busy + rare, Thresholds())
    rows = {row.endpoint: row for row in gate.endpoints}
    assert rows[ACCOUNT].availability_rule == RULE_OBJECTIVE
    assert rows["GET /v1/ledger/verify"].availability_rule == RULE_ZERO_FAILURES
    assert gate.overall.availability_rule == RULE_OBJECTIVE
    assert gate.overall.availability_ok  # 1 failure in 10,050
    assert not gate.passed
    assert gate.breaches == [
        "GET /v1/ledger/verify: 1 failed of 50 (fewer than 10000 requests: judged on zero failures; "
        "1 bad of 50 events (error ratio 2.00e-02), 95% upper bound 9.14e-02: "
        "not enough events to show 99.99% (zero failures need 29,956))"
    ]
    clean = evaluate_gate(busy + rare[:-1])
    assert clean.passed
    assert {row.endpoint: row.availability_rule for row in clean.endpoints}["GET /v1/ledger/verify"] == (
        RULE_ZERO_FAILURES
    )


def test_requests_per_second_is_over_the_runs_span_for_every_row() -> None:
    # 100 requests from T0 to T0 + 9.9, the last taking 100 ms: a 10 s span.
    pay = samples(PAY, [100.0] * 100, every=0.1)
    account = samples(ACCOUNT, [5.0] * 10, start=T0 + 2)
    gate = evaluate_gate(pay + account)
    assert gate.started == T0 and gate.ended == pytest.approx(T0 + 10.0)
    assert gate.overall.requests_per_second == pytest.approx(11.0)
    rates = {row.endpoint: row.requests_per_second for row in gate.endpoints}
    assert rates == {ACCOUNT: pytest.approx(1.0), PAY: pytest.approx(10.0)}


def test_thresholds_are_parameters() -> None:
    run = [*samples(PAY, [150.0] * 900 + [5.0] * 99), RequestSample(T0 + 20, PAY, 503, 5.0, 1)]
    assert not evaluate_gate(run).passed
    assert evaluate_gate(run, Thresholds(p99_ms=151, availability=0.999)).passed
    assert not evaluate_gate(run, Thresholds(p99_ms=150, availability=0.999)).passed


def test_thresholds_are_exact_decimals() -> None:
    assert Thresholds.from_percent(200, 99.99) == Thresholds(200, 0.9999)
    assert Thresholds().min_requests_to_judge == 10_000
    assert Thresholds(availability=0.999).min_requests_to_judge == 1_000
    assert Thresholds(availability=0.95).min_requests_to_judge == 20
    assert availability_met(10_000, 1, 0.9999) and not availability_met(9_999, 1, 0.9999)
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(GateError):
            Thresholds(availability=bad)
    with pytest.raises(GateError):
        Thresholds(p99_ms=0)


def test_no_samples_is_not_a_pass() -> None:
    with pytest.raises(GateError, match="no requests"):
        evaluate_gate([])


def test_percentages_round_down_so_a_miss_never_reads_as_the_objective() -> None:
    assert format_percent(0.9999) == "99.990%"
    assert format_percent(0.99989999) == "99.989%"
    assert format_percent(1.0) == "100%"
    assert format_percent(0.5) == "50.000%"


def test_availability_after_retries_counts_operations_that_ended_failed() -> None:
    # 10 payments: 2 failed once and succeeded on the retry, 1 failed all 4 attempts.
    first = samples(PAY, [10.0] * 7) + samples(PAY, [10.0] * 3, status=503, start=T0 + 1)
    retries = [
        *samples(PAY, [10.0] * 2, attempt=2, start=T0 + 2),
        *[RequestSample(T0 + 3 + i, PAY, 503, 10.0, attempt) for i, attempt in enumerate((2, 3, 4))],
    ]
    row = evaluate_gate(first + retries).endpoints[0]
    assert (row.first_attempts, row.retries, row.failures) == (10, 5, 6)
    assert row.availability_after_retries == 9 / 10  # failures - retries = 1 failed operation of 10
    assert row.availability == 9 / 15


def test_availability_after_retries_does_not_change_the_verdict() -> None:
    recovered = [*samples(PAY, [10.0] * 99), RequestSample(T0 + 5, PAY, CONNECTION_FAILED, 10.0, 1)]
    gate = evaluate_gate([*recovered, RequestSample(T0 + 6, PAY, 201, 10.0, 2)])
    assert gate.overall.availability_after_retries == 1.0
    assert not gate.passed  # the failed attempt still counts: judged on every attempt
    assert [breach.split(";")[0] for breach in gate.breaches] == [
        "overall: 1 failed of 101 (fewer than 10000 requests: judged on zero failures",
        f"{PAY}: 1 failed of 101 (fewer than 10000 requests: judged on zero failures",
    ]


def test_overall_availability_after_retries_adds_up_each_endpoints_failed_operations() -> None:
    # Reads: one failed without a retry (a 5xx). Payments: a retry whose failed attempt fell outside
    # the samples (more retries than failures) must not offset the read's failure overall.
    reads = [*samples(ACCOUNT, [5.0] * 3), RequestSample(T0 + 1, ACCOUNT, 500, 5.0, 1)]
    pays = [*samples(PAY, [5.0] * 4, start=T0 + 2), RequestSample(T0 + 3, PAY, 201, 5.0, 2)]
    gate = evaluate_gate(reads + pays)
    rows = {row.endpoint: row.availability_after_retries for row in gate.endpoints}
    assert rows == {ACCOUNT: 3 / 4, PAY: 1.0}
    assert gate.overall.availability_after_retries == 7 / 8


def test_a_row_of_retries_only_is_fully_available_after_retries() -> None:
    row = evaluate_gate(samples(PAY, [5.0] * 3, status=503, attempt=2)).overall
    assert (row.first_attempts, row.availability_after_retries) == (0, 1.0)
