"""The fault model and its shared state, without a web framework: what every worker of a service agrees on."""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from core_services.faults import (
    CpuBurn,
    CpuBurner,
    DbUnavailable,
    ErrorRate,
    FaultBoard,
    Latency,
    PaymentsErrors,
    fault_file,
    fault_kinds,
    forget_faults,
)


class Clock:
    """Wall-clock seconds that move only when a test says so."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def board(data_dir: Path, clock: Clock, service: str = "payments", check_every_seconds: float = 0.0) -> FaultBoard:
    return FaultBoard(data_dir, service, clock=clock, check_every_seconds=check_every_seconds)


def test_no_fault_file_means_no_faults_and_a_false_set(tmp_path: Path, clock: Clock) -> None:
    faults = board(tmp_path, clock).current()

    assert not faults
    assert list(faults) == []
    assert faults.latency is None and not faults.db_unavailable


def test_a_fault_put_is_on_with_its_settings_until_its_ttl(tmp_path: Path, clock: Clock) -> None:
    payments = board(tmp_path, clock)

    fault = payments.put("latency", Latency(ms=100, jitter_ms=20, ttl_seconds=60))

    assert fault.expires_at == clock.now + 60
    assert payments.current().latency == Latency(ms=100, jitter_ms=20, ttl_seconds=60)
    assert fault.as_json(clock.now + 15)["seconds_left"] == 45


def test_a_fault_ends_by_itself_at_its_deadline(tmp_path: Path, clock: Clock) -> None:
    payments = board(tmp_path, clock)
    payments.put("db_unavailable", DbUnavailable(ttl_seconds=2))

    clock.now += 1.999
    still_on = payments.current().db_unavailable
    clock.now += 0.002

    assert still_on
    assert not payments.current()


def test_another_worker_sees_a_change_through_the_shared_file(tmp_path: Path, clock: Clock) -> None:
    receiving, other = board(tmp_path, clock), board(tmp_path, clock)
    assert not other.current()

    receiving.put("error_rate", ErrorRate(rate=0.5, ttl_seconds=30))
    seen_on = other.current().error_rate
    receiving.remove("error_rate")

    assert seen_on == ErrorRate(rate=0.5, ttl_seconds=30)
    assert not other.current()


def test_quick_successive_changes_of_the_same_size_are_all_noticed(tmp_path: Path, clock: Clock) -> None:
    receiving, other = board(tmp_path, clock), board(tmp_path, clock)
    seen = []
    for rate in (0.1, 0.2, 0.3, 0.4):
        receiving.put("error_rate", ErrorRate(rate=rate, ttl_seconds=30))
        error_rate = other.current().error_rate
        seen.append(error_rate.rate if error_rate else None)

    assert seen == [0.1, 0.2, 0.3, 0.4]


def test_the_file_is_read_again_at_most_once_per_check_interval(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = board(tmp_path, clock, check_every_seconds=60.0)
    worker.current()
    stats: list[object] = []
    real_stat = os.stat

    def counting_stat(path: Path) -> os.stat_result:
        stats.append(path)
        return real_stat(path)

    monkeypatch.setattr("core_services.faults.os.stat", counting_stat)

    for _ in range(1000):
        worker.current()

    assert stats == []


def test_clear_turns_every_fault_off(tmp_path: Path, clock: Clock) -> None:
    portfolio = board(tmp_path, clock, service="portfolio")
    portfolio.put("payments_errors", PaymentsErrors(rate=1.0, ttl_seconds=30))
    portfolio.put("cpu_burn", CpuBurn(share=0.5, ttl_seconds=30))

    portfolio.clear()

    assert not portfolio.current()


def test_expired_faults_are_dropped_from_the_file_at_the_next_change(tmp_path: Path, clock: Clock) -> None:
    payments = board(tmp_path, clock)
    payments.put("db_unavailable", DbUnavailable(ttl_seconds=1))
    clock.now += 5

    payments.put("latency", Latency(ms=1, ttl_seconds=60))

    assert set(json.loads(fault_file(tmp_path, "payments").read_text())["faults"]) == {"latency"}


def test_an_entry_that_does_not_validate_is_skipped_and_the_others_still_apply(tmp_path: Path, clock: Clock) -> None:
    path = fault_file(tmp_path, "payments")
    path.parent.mkdir(parents=True)
    deadline = clock.now + 60
    path.write_text(
        json.dumps(
            {
                "faults": {
                    "latency": {"expires_at": deadline, "settings": {"ms": "lots", "ttl_seconds": 60}},
                    "payments_errors": {"expires_at": deadline, "settings": {"rate": 1.0, "ttl_seconds": 60}},
                    "db_unavailable": {"expires_at": deadline, "settings": {"ttl_seconds": 60}},
                }
            }
        )
    )

    assert [fault.name for fault in board(tmp_path, clock).current()] == ["db_unavailable"]


def test_a_torn_file_means_no_faults_rather_than_a_crash(tmp_path: Path, clock: Clock) -> None:
    path = fault_file(tmp_path, "payments")
    path.parent.mkdir(parents=True)
    path.write_text('{"faults": {"latency": ')

    assert not board(tmp_path, clock).current()


def test_a_service_start_forgets_the_faults_a_previous_run_left(tmp_path: Path, clock: Clock) -> None:
    board(tmp_path, clock).put("db_unavailable", DbUnavailable(ttl_seconds=3600))

    forget_faults(tmp_path, "payments")

    assert not board(tmp_path, clock).current()


def test_only_portfolio_has_the_payments_faults() -> None:
    shared = {"latency", "error_rate", "db_latency", "db_unavailable", "cpu_burn"}

    assert set(fault_kinds("payments")) == shared
    assert set(fault_kinds("portfolio")) == shared | {"payments_latency", "payments_errors"}


@pytest.mark.parametrize(
    "settings",
    [
        {"ms": 100},  # no ttl
        {"ms": 100, "ttl_seconds": 0},
        {"ms": 100, "ttl_seconds": 3601},
        {"ms": 100.0, "ttl_seconds": 60},
        {"ms": -1, "ttl_seconds": 60},
        {"ms": 100, "ttl_seconds": 60, "probability": 1.5},
        {"ms": 100, "ttl_seconds": 60, "colour": "red"},
        {"ms": "100", "ttl_seconds": 60},
    ],
)
def test_settings_are_validated_strictly(settings: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Latency.model_validate(settings)


def test_an_error_rate_fails_with_a_server_error_status_only() -> None:
    with pytest.raises(ValidationError):
        ErrorRate(rate=1.0, status=404, ttl_seconds=60)


def test_a_route_fault_targets_the_paths_its_template_matches_and_no_others() -> None:
    fault = Latency(ms=1, route="/v1/accounts/{account_id}", ttl_seconds=60)

    assert fault.applies_to("/v1/accounts/acc_123")
    assert not fault.applies_to("/v1/accounts/acc_123/entries")
    assert not fault.applies_to("/v1/accounts")
    assert Latency(ms=1, ttl_seconds=60).applies_to("/v1/payments")


def test_jittered_delays_stay_within_ms_plus_or_minus_jitter() -> None:
    fault = Latency(ms=100, jitter_ms=20, ttl_seconds=60)
    rng = random.Random(7)

    delays = [fault.delay_seconds(rng) for _ in range(1000)]

    assert 0.080 <= min(delays) < 0.085
    assert 0.115 < max(delays) <= 0.120


def test_the_active_gauge_reports_every_fault_of_the_service(tmp_path: Path, clock: Clock) -> None:
    payments = board(tmp_path, clock)
    payments.put("cpu_burn", CpuBurn(share=0.1, ttl_seconds=60))

    samples = dict(payments.gauge_samples())

    assert samples[("payments", "cpu_burn")] == 1.0
    assert samples[("payments", "latency")] == 0.0
    assert len(samples) == len(fault_kinds("payments"))


def cpu_seconds_over(seconds: float) -> float:
    started = time.process_time()
    time.sleep(seconds)
    return time.process_time() - started


def test_the_cpu_burner_burns_only_while_cpu_burn_is_on(tmp_path: Path) -> None:
    payments = FaultBoard(tmp_path, "payments", check_every_seconds=0.05)
    burner = CpuBurner(payments, slice_seconds=0.05)
    burner.start()
    try:
        idle = cpu_seconds_over(0.4)
        payments.put("cpu_burn", CpuBurn(share=0.8, ttl_seconds=60))
        burning = cpu_seconds_over(0.6)
    finally:
        burner.stop()

    assert idle < 0.1
    assert burning > 0.25
