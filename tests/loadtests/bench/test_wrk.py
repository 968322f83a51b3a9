"""Reading wrk's report: the benchmark's figures are only as right as this parser."""

import pytest

from loadtests.bench.errors import BenchError
from loadtests.bench.wrk import duration_ms, parse_wrk

REPORT = """Running 10s test @ http://127.0.0.1:8101
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     5.47ms    3.10ms  61.02ms   86.18%
    Req/Sec     1.18k   104.27     1.42k    70.00%
  Latency Distribution
     50%  612.00us
     75%    6.29ms
     90%    8.40ms
     99%    1.20s
  23748 requests in 10.01s, 8.35MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:   2373.91
Transfer/sec:    854.09KB
nova-statuses 201:23741,409:4,503:3
nova-non201 7
"""


def test_the_report_yields_rate_percentiles_in_milliseconds_and_errors() -> None:
    run = parse_wrk(REPORT)

    assert run.requests == 23748
    assert run.requests_per_second == 2373.91
    assert run.p50_ms == pytest.approx(0.612)
    assert run.p99_ms == pytest.approx(1200.0)
    assert run.socket_errors == 3
    assert run.statuses == {201: 23741, 409: 4, 503: 3}
    assert run.created == 23741
    assert run.errors == 7 + 3


@pytest.mark.parametrize(
    ("text", "millis"), [("612.00us", 0.612), ("1.02ms", 1.02), ("1.20s", 1200.0), ("2.00m", 120_000.0)]
)
def test_durations_are_read_in_their_own_unit(text: str, millis: float) -> None:
    assert duration_ms(text) == pytest.approx(millis)


def test_a_report_without_a_latency_distribution_is_refused() -> None:
    with pytest.raises(BenchError, match="Latency Distribution"):
        parse_wrk(REPORT.replace("Latency Distribution", "Latency"))
