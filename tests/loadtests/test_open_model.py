"""The open model's timetable and figures, as plain code (no Locust)."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtests.open_model import LATE_SEND_SECONDS, OpenLoad, Timetable, open_load
from loadtests.samples import RequestSample, read_samples, write_samples


def test_a_steady_timetable_offers_its_rate_once_ramped() -> None:
    timetable = Timetable(rate=100.0, shape="steady", duration=20.0)
    sends = list(timetable.sends())
    late_in_the_run = [t for t in sends if 10.0 <= t < 20.0]
    assert len(late_in_the_run) == pytest.approx(1000, abs=2)
    assert timetable.offered_rps() == pytest.approx(95.0, abs=2.0)  # the 2 s ramp of steady costs a second


def test_generators_share_the_rate() -> None:
    alone = Timetable(rate=90.0, shape="steady", duration=10.0)
    shared = Timetable(rate=90.0, shape="steady", duration=10.0, generators=3)
    assert len(list(shared.sends())) == pytest.approx(len(list(alone.sends())) / 3, rel=0.02)
    assert shared.offered_rps() == pytest.approx(alone.offered_rps(), rel=0.03)


def test_the_shape_scales_the_rate() -> None:
    spike = Timetable(rate=200.0, shape="spike_10x", duration=60.0)
    assert spike.rate_at(10.0) == pytest.approx(20.0)  # the base: a tenth of the peak
    assert spike.rate_at(30.0) == pytest.approx(200.0)  # the burst in the middle sixth


@pytest.mark.parametrize("rate", [0.0, -5.0])
def test_a_rate_that_is_not_positive_is_refused(rate: float) -> None:
    with pytest.raises(ValueError, match="above 0"):
        Timetable(rate=rate, shape="steady", duration=10.0)


def _sends(count: int, every: float, late_by: float = 0.0, late_every: int = 0) -> list[RequestSample]:
    samples = []
    for index in range(count):
        due = 1000.0 + index * every
        delay = late_by if late_every and index % late_every == 0 else 0.001
        samples.append(RequestSample(due + delay, "GET /v1/quotes/{symbol}", 200, 5.0, 1, due))
    return samples


def test_a_generator_on_time_keeps_up() -> None:
    timetable = Timetable(rate=10.0, shape="steady", duration=10.0)
    figures = open_load(_sends(100, 0.1), timetable)
    assert figures.sends == 100 and figures.late_sends == 0
    assert figures.achieved_rps == pytest.approx(10.0, rel=0.01)
    assert figures.kept_up and figures.breach() is None


def test_a_generator_that_falls_behind_says_so() -> None:
    timetable = Timetable(rate=10.0, shape="steady", duration=10.0)
    figures = open_load(_sends(100, 0.1, late_by=LATE_SEND_SECONDS * 3, late_every=10), timetable)
    assert figures.late_sends == 10
    assert not figures.kept_up
    assert "could not keep up" in (figures.breach() or "")


def test_a_generator_that_sent_too_few_fails_even_on_time() -> None:
    timetable = Timetable(rate=100.0, shape="steady", duration=10.0)
    figures = open_load(_sends(100, 0.1), timetable)  # 10/s sent of ~95/s offered
    assert not figures.kept_up


def test_open_load_round_trips_through_json() -> None:
    figures = OpenLoad(rate=250.0, offered_rps=240.0, achieved_rps=238.5, sends=9000, late_sends=3)
    document = figures.to_json()
    assert document["kept_up"] is True
    assert OpenLoad.from_json(document) == figures


def test_corrected_latency_counts_the_wait_from_the_scheduled_send() -> None:
    late = RequestSample(100.5, "POST /v1/payments", 201, 20.0, 1, 100.0)
    closed = RequestSample(100.5, "POST /v1/payments", 201, 20.0, 1)
    assert late.corrected_millis == pytest.approx(520.0)
    assert closed.corrected_millis == 20.0


def test_samples_files_keep_the_scheduled_time_and_old_files_still_read(tmp_path: Path) -> None:
    path = tmp_path / "samples.csv"
    sample = RequestSample(100.5, "POST /v1/payments", 201, 20.0, 2, 100.25)
    write_samples(path, [sample])
    assert list(read_samples(path)) == [sample]
    old = tmp_path / "old.csv"
    old.write_text("timestamp,endpoint,status,millis,attempt\n100.5,GET /v1/quotes/{symbol},200,3.5,1\n")
    assert list(read_samples(old)) == [RequestSample(100.5, "GET /v1/quotes/{symbol}", 200, 3.5, 1, 0.0)]
