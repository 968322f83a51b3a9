"""The rules every load-test request follows on the wire, tested without Locust (traffic.py).

users.py applies them inside Locust; one check below runs in a subprocess because it has to
import Locust: the mixes name the user classes that exist.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from loadtests.samples import CONNECTION_FAILED
from loadtests.traffic import (
    ACCOUNT,
    ENTRIES,
    MIXES,
    PAY,
    PLACE_ORDER,
    PORTFOLIO,
    QUOTE,
    SYNTHETIC_BAGGAGE,
    Endpoint,
    RetryPolicy,
    admin_token,
    endpoint_of,
    mix_weights,
    new_trace_id,
    new_traceparent,
    request_name,
    retry_after_seconds,
    should_retry,
    trace_headers,
)

TRACEPARENT = re.compile(r"^00-(?P<trace>[0-9a-f]{32})-(?P<parent>[0-9a-f]{16})-01$")


def test_every_request_gets_a_fresh_sampled_w3c_traceparent_and_the_synthetic_baggage() -> None:
    first, second = trace_headers(), trace_headers()

    assert TRACEPARENT.match(first["traceparent"])
    assert TRACEPARENT.match(second["traceparent"])
    assert first["traceparent"][3:35] != second["traceparent"][3:35]
    assert first["baggage"] == SYNTHETIC_BAGGAGE == "synthetic_request=true"


def test_attempts_of_one_write_share_the_trace_with_a_new_parent_span_each() -> None:
    trace_id = new_trace_id()
    attempts = [TRACEPARENT.match(trace_headers(trace_id)["traceparent"]) for _ in range(3)]

    assert all(match and match["trace"] == trace_id for match in attempts)
    assert len({match["parent"] for match in attempts if match}) == 3


def test_all_zero_ids_which_w3c_calls_invalid_are_never_sent() -> None:
    draws = iter([bytes(16), bytes(8), b"\x01" * 8])

    def random_bytes(size: int) -> bytes:
        drawn = next(draws, b"\x02" * size)
        return drawn if len(drawn) == size else b"\x03" * size

    header = new_traceparent(random_bytes=random_bytes)

    assert TRACEPARENT.match(header)
    assert "0" * 32 not in header and "-" + "0" * 16 + "-" not in header


@pytest.mark.parametrize(("status", "retry"), [(CONNECTION_FAILED, True), (500, True), (502, True), (503, True)])
def test_writes_are_retried_after_a_5xx_or_no_answer(status: int, retry: bool) -> None:
    assert should_retry(status) is retry


@pytest.mark.parametrize("status", [200, 201, 400, 401, 404, 409, 422, 429])
def test_other_answers_are_outcomes_not_reasons_to_retry(status: int) -> None:
    assert should_retry(status) is False


def test_endpoints_are_named_by_method_and_route_template() -> None:
    assert PAY.name == "POST /v1/payments"
    assert ACCOUNT.name == "GET /v1/accounts/{id}"
    assert ENTRIES.name == "GET /v1/accounts/{id}/entries"
    assert QUOTE.name == "GET /v1/quotes/{symbol}"
    assert PLACE_ORDER.name == "POST /v1/orders"
    assert PORTFOLIO.name == "GET /v1/portfolios/{account_id}"
    assert (PAY.is_write, PLACE_ORDER.is_write, ACCOUNT.is_write) == (True, True, False)
    assert (QUOTE.service, PAY.service) == ("portfolio", "payments")


def test_a_route_is_filled_with_each_parameter_as_one_path_segment() -> None:
    assert ACCOUNT.path(id="acc_42") == "/v1/accounts/acc_42"
    assert Endpoint("payments", "GET", "/v1/payments/{id}").path(id="a/b?c") == "/v1/payments/a%2Fb%3Fc"


def test_retries_are_reported_apart_and_map_back_to_their_endpoint() -> None:
    assert request_name(PAY.name, 1) == "POST /v1/payments"
    assert request_name(PAY.name, 2) == request_name(PAY.name, 4) == "POST /v1/payments [retry]"
    assert endpoint_of("POST /v1/payments [retry]") == endpoint_of("POST /v1/payments") == "POST /v1/payments"
    with pytest.raises(ValueError):
        request_name(PAY.name, 0)


class _Fixed(random.Random):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def random(self) -> float:
        return self.value


def test_backoff_doubles_per_retry_with_jitter_between_half_and_full() -> None:
    policy = RetryPolicy()

    assert list(policy.attempts()) == [1, 2, 3, 4]  # the first attempt and 3 retries
    assert [policy.pause(n, rng=_Fixed(1.0)) for n in (1, 2, 3)] == pytest.approx([0.1, 0.2, 0.4])
    assert [policy.pause(n, rng=_Fixed(0.0)) for n in (1, 2, 3)] == pytest.approx([0.05, 0.1, 0.2])
    with pytest.raises(ValueError):
        policy.pause(4)


def test_retry_after_is_honoured_up_to_two_seconds() -> None:
    policy = RetryPolicy()

    assert policy.pause(1, "1", rng=_Fixed(1.0)) == 1.0
    assert policy.pause(1, "30", rng=_Fixed(1.0)) == 2.0
    assert policy.pause(3, "0", rng=_Fixed(1.0)) == pytest.approx(0.4)  # never shorter than the backoff
    assert policy.pause(1, "soon", rng=_Fixed(1.0)) == pytest.approx(0.1)


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)

    assert retry_after_seconds(None) is None
    assert retry_after_seconds("  ") is None
    assert retry_after_seconds("garbage") is None
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("-2") == 0.0
    assert retry_after_seconds(format_datetime(now + timedelta(seconds=5), usegmt=True), now) == 5.0
    assert retry_after_seconds(format_datetime(now - timedelta(seconds=5), usegmt=True), now) == 0.0


def test_the_admin_token_comes_from_the_environment_only() -> None:
    assert admin_token({"NOVA_ADMIN_TOKEN": "s3cret"}) == "s3cret"
    with pytest.raises(ValueError, match="NOVA_ADMIN_TOKEN is not set"):
        admin_token({})
    with pytest.raises(ValueError, match="NOVA_ADMIN_TOKEN"):
        admin_token({"NOVA_ADMIN_TOKEN": " "})


def test_mixes_weigh_the_three_kinds_of_user() -> None:
    assert mix_weights("trading") == {"PayingCustomer": 3, "Trader": 2, "PortfolioViewer": 5}
    assert mix_weights("payments") == {"PayingCustomer": 1}
    assert mix_weights("read_heavy") == {"PortfolioViewer": 8, "Trader": 1, "PayingCustomer": 1}
    with pytest.raises(ValueError, match="unknown mix 'chaos'"):
        mix_weights("chaos")


def test_the_mixes_name_the_user_classes_of_the_locustfile() -> None:
    # In a subprocess: importing Locust would patch this test process with gevent.
    check = (
        "import json; from loadtests.users import USER_CLASSES; "
        "print(json.dumps({c.__name__: len(c.tasks) for c in USER_CLASSES}))"
    )
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=60, check=True)
    tasks_per_class = json.loads(result.stdout)

    assert set(tasks_per_class) == {name for weights in MIXES.values() for name in weights}
    assert all(count > 0 for count in tasks_per_class.values())


_READ_SCRIPT = """
import json, sys
from loadtests.traffic import ACCOUNT, RetryPolicy
from loadtests.users import ApiSession

class Response:
    def __init__(self, status):
        self.status_code, self.headers = status, {}
        self.content = b'{"id": "acc_1"}' if status else b""
        self.error = None if status else ConnectionResetError()
    def json(self):
        return json.loads(self.content)
    def failure(self, _message): pass
    def success(self): pass
    def __enter__(self): return self
    def __exit__(self, *_exc): return False

class Client:
    def __init__(self, statuses):
        self.statuses, self.calls = iter(statuses), []
    def request(self, method, url, name, headers, json, catch_response, context):
        self.calls.append([method, url, name, context["attempt"], headers["traceparent"][3:35]])
        return Response(next(self.statuses))

found = {}
for label, statuses in json.loads(sys.argv[1]).items():
    client = Client(statuses)
    answer = ApiSession(client, "http://portfolio", RetryPolicy(first_backoff=0.001)).read(ACCOUNT, "t", id="acc_1")
    found[label] = {"status": answer.status, "attempts": answer.attempts, "calls": client.calls}
print(json.dumps(found))
"""

_READ_CASES = {"recovers": [0, 0, 200], "answered_5xx": [503, 200], "never_answers": [0, 0, 0, 0, 200]}


@pytest.fixture(scope="module")
def reads() -> dict[str, dict[str, object]]:
    """ApiSession.read against a fake Locust client, in a subprocess (importing Locust patches the process)."""
    result = subprocess.run(
        [sys.executable, "-c", _READ_SCRIPT, json.dumps(_READ_CASES)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    found: dict[str, dict[str, object]] = json.loads(result.stdout)
    return found


def test_a_read_without_an_answer_is_sent_again_as_a_retry_of_the_same_trace(reads: dict[str, Any]) -> None:
    read = reads["recovers"]
    assert (read["status"], read["attempts"]) == (200, 3)
    assert [call[2:4] for call in read["calls"]] == [
        ["GET /v1/accounts/{id}", 1],
        ["GET /v1/accounts/{id} [retry]", 2],
        ["GET /v1/accounts/{id} [retry]", 3],
    ]
    assert {call[1] for call in read["calls"]} == {"/v1/accounts/acc_1"}
    assert len({call[4] for call in read["calls"]}) == 1


def test_a_read_answered_with_a_5xx_is_not_retried(reads: dict[str, Any]) -> None:
    read = reads["answered_5xx"]
    assert (read["status"], read["attempts"], len(read["calls"])) == (503, 1, 1)


def test_a_read_gives_up_after_the_policys_retries(reads: dict[str, Any]) -> None:
    read = reads["never_answers"]
    assert (read["status"], read["attempts"]) == (CONNECTION_FAILED, 4)
    assert [call[3] for call in read["calls"]] == [1, 2, 3, 4]


_PAY_SCRIPT = """
import json
from types import SimpleNamespace
from loadtests.audit import BOOK
from loadtests.traffic import RetryPolicy
from loadtests.users import PAYEES, ApiSession, Customer, PayingCustomer

class Response:
    def __init__(self, status):
        self.status_code, self.headers, self.content = status, {}, b""
        self.error = None if status else ConnectionResetError()
    def json(self): return {}
    def failure(self, _message): pass
    def success(self): pass
    def __enter__(self): return self
    def __exit__(self, *_exc): return False

class Client:
    def __init__(self, statuses):
        self.statuses, self.calls = iter(statuses), []
    def request(self, method, url, name, headers, json, catch_response, context):
        self.calls.append({"url": url, "key": headers["Idempotency-Key"], "body": json})
        return Response(next(self.statuses))

client = Client([503, 0, 0, 0])  # no definite answer: an unknown outcome
api = ApiSession(client, "http://portfolio", RetryPolicy(first_backoff=0.001))
PAYEES.add("acc_payee")
user = SimpleNamespace(customer=Customer(api, "tok-payer", "acc_payer"), last_payment=None)
PayingCustomer.pay_someone(user)
(record,) = BOOK.unresolved
print(json.dumps({"calls": client.calls, "key": record.key, "body": record.body, "unknown": BOOK.unknown}))
"""


def test_a_payment_is_recorded_with_the_idempotency_key_and_body_every_attempt_was_sent_with() -> None:
    # In a subprocess: importing Locust would patch this test process with gevent.
    result = subprocess.run([sys.executable, "-c", _PAY_SCRIPT], capture_output=True, text=True, timeout=60, check=True)
    found = json.loads(result.stdout)

    assert found["unknown"] == 1 and len(found["calls"]) == 4
    assert {call["url"] for call in found["calls"]} == {"/v1/payments"}
    assert all(call["key"] == found["key"] and call["body"] == found["body"] for call in found["calls"])
    assert found["body"]["from_account"] == "acc_payer" and found["body"]["to_account"] == "acc_payee"
