"""The platform's customers as Locust users: people paying each other, traders, portfolio viewers.

Every user signs up through the API when it starts, as a new customer would: the admin creates
the customer, the customer opens a USD account, the admin funds it with a deposit. The account
then joins this process's payees, so paying customers pay each other. After that a user acts at
`--user-rate` tasks a second, one request per task, so the offered load is about users x rate
(a retried write adds its retries).

`ApiSession` sends each request the way `traffic.py` says: named by route template, traced and
marked synthetic, writes idempotent and retried. Reads are retried too, with the same policy,
but only when no answer arrived at all (a reset or refused connection, a timeout: the service
worker holding the pooled keep-alive connection was killed, say); a read answered with a 5xx is
a failure to report, not to hide. One FastHttpSession serves both services: portfolio calls go
to absolute URLs, which geventhttpclient pools per host.

Paying customers keep this process's `loadtests.audit.BOOK`: their accounts and every payment
(its body, its Idempotency-Key, the payer's token: memory only), in flight before it is sent and
settled by its final answer, for the audit at the end of the run, which reconciles the payments
whose outcome is unknown by sending them again with the same key and body.
"""

from __future__ import annotations

import logging
import os
import random
import uuid
from collections import Counter
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple
from urllib.parse import urlencode

import gevent  # type: ignore[import-untyped]
import gevent.pool  # type: ignore[import-untyped]
from locust import FastHttpUser, constant_throughput, task
from locust.contrib.fasthttp import FastHttpSession
from locust.exception import StopUser

from loadtests.arrivals import play, scheduled_at
from loadtests.audit import BOOK
from loadtests.open_model import Timetable
from loadtests.samples import CONNECTION_FAILED
from loadtests.traffic import (
    ACCOUNT,
    CREATE_CUSTOMER,
    DEPOSIT,
    ENTRIES,
    OPEN_ACCOUNT,
    PAY,
    PAYMENT,
    PLACE_ORDER,
    PORTFOLIO,
    QUOTE,
    Endpoint,
    RetryPolicy,
    admin_token,
    mix_weights,
    new_trace_id,
    request_name,
    should_retry,
    trace_headers,
)

log = logging.getLogger("nova.load")

CURRENCY = "USD"
FUNDING_MINOR = 10**11  # a billion dollars: no run is long enough to spend it
SIGN_UP_PAUSE_SECONDS = 1.0
# The symbols the market simulator quotes (GET /v1/quotes); loadtests never import the services.
SYMBOLS = ("NOVA", "ACME", "GLBX", "INIT", "ORBT", "QNTM", "VRTX", "ZEPH", "HELX", "KSTR")
DEFAULT_PAYMENTS_URL = "http://127.0.0.1:8001"
DEFAULT_PORTFOLIO_URL = "http://127.0.0.1:8002"
DEFAULT_USER_RATE = 1.0
# The open model (`Arrivals`): customers of each kind each generator signs up, the connections one of
# them may hold open per service (a slow service must never hold a send back), and how long the
# requests still in flight when the run ends get to finish.
OPEN_MODEL_CUSTOMERS_PER_KIND = 8
OPEN_MODEL_CONNECTIONS = 1000
IN_FLIGHT_GRACE_SECONDS = 2.0


class Answer(NamedTuple):
    """What a call came back with: the status (`CONNECTION_FAILED` if none), the JSON object if any,
    and how many attempts it took (the answer is the last one's)."""

    status: int
    body: dict[str, Any]
    attempts: int = 1

    @property
    def created(self) -> bool:
        return self.status == 201

    def text(self, field: str) -> str | None:
        value = self.body.get(field)
        return value if isinstance(value, str) else None


class ApiSession:
    """One user's connection to both services: every request named and traced; writes retried
    after a 5xx or no answer, reads after no answer only."""

    def __init__(self, client: FastHttpSession, portfolio_url: str, retry: RetryPolicy | None = None) -> None:
        self.client = client
        self.portfolio_url = portfolio_url.rstrip("/")
        self.retry = retry or RetryPolicy()

    def read(self, endpoint: Endpoint, token: str, query: dict[str, str] | None = None, **params: str) -> Answer:
        """A GET, sent again (same `RetryPolicy` as writes) only when no answer arrived at all.

        No answer (`CONNECTION_FAILED`: reset, refused, timed out) says nothing about the service's
        answer: typically the worker holding the pooled keep-alive connection was killed, and a
        client would simply ask again. A 5xx is an answer, and a failure to report, not to hide: it
        is not retried. Retries are reported as `<endpoint> [retry]` with their attempt number,
        and all attempts belong to one trace, as a write's do.
        """
        url = self._url(endpoint, params, query)
        headers = _bearer(token)
        trace_id = new_trace_id()
        for attempt in self.retry.attempts():
            answer, retry_after = self._attempt(endpoint, url, {**headers, **trace_headers(trace_id)}, None, attempt)
            if answer.status != CONNECTION_FAILED or attempt > self.retry.retries:
                return answer._replace(attempts=attempt)
            gevent.sleep(self.retry.pause(attempt, retry_after))
        raise AssertionError("unreachable: the last attempt returns")

    def write(self, endpoint: Endpoint, token: str, body: dict[str, Any], key: str | None = None) -> Answer:
        """A write with an Idempotency-Key, sent again with the same key and body after a 5xx or no answer.

        All attempts belong to one trace, each with its own parent span id.
        """
        headers = {**_bearer(token), "Idempotency-Key": key or str(uuid.uuid4())}
        trace_id = new_trace_id()
        url = self._url(endpoint, {}, None)
        for attempt in self.retry.attempts():
            answer, retry_after = self._attempt(endpoint, url, {**headers, **trace_headers(trace_id)}, body, attempt)
            if not should_retry(answer.status) or attempt > self.retry.retries:
                return answer._replace(attempts=attempt)
            gevent.sleep(self.retry.pause(attempt, retry_after))
        raise AssertionError("unreachable: the last attempt returns")

    def _url(self, endpoint: Endpoint, params: dict[str, str], query: dict[str, str] | None) -> str:
        path = endpoint.path(**params) + (f"?{urlencode(query)}" if query else "")
        return f"{self.portfolio_url}{path}" if endpoint.service == "portfolio" else path

    def _attempt(
        self, endpoint: Endpoint, url: str, headers: dict[str, str], body: dict[str, Any] | None, attempt: int
    ) -> tuple[Answer, str | None]:
        """One HTTP request; Locust counts it failed only for what the SLO counts: a 5xx or no answer."""
        with self.client.request(
            endpoint.method,
            url,
            name=request_name(endpoint.name, attempt),
            headers=headers,
            json=body,
            catch_response=True,
            context={"attempt": attempt, "scheduled": scheduled_at()},
        ) as response:
            status = response.status_code or CONNECTION_FAILED
            if status == CONNECTION_FAILED:
                response.failure(f"no answer: {type(getattr(response, 'error', None)).__name__}")
            elif should_retry(status):
                code = _json_object(response).get("code")  # the problem's code groups Locust's error table
                response.failure(f"HTTP {status} {code}" if isinstance(code, str) else f"HTTP {status}")
            else:
                response.success()
        retry_after = response.headers.get("Retry-After") if response.headers else None
        return Answer(status, _json_object(response) if status != CONNECTION_FAILED else {}), retry_after


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _json_object(response: Any) -> dict[str, Any]:
    try:
        body = response.json() if response.content else {}
    except (ValueError, TypeError):  # not JSON, or a body in no encoding it could tell
        return {}
    return body if isinstance(body, dict) else {}


class Admin:
    """The operator's side of sign-up: creating customers and funding their accounts."""

    def __init__(self, api: ApiSession, token: str) -> None:
        self.api = api
        self.token = token

    def create_customer(self, name: str) -> Answer:
        # Customers and accounts take no Idempotency-Key at the API; a retry after a lost answer
        # may leave an unused customer behind, which costs nothing.
        return self.api.write(CREATE_CUSTOMER, self.token, {"name": name})

    def deposit(self, account_id: str, amount_minor: int, key: str) -> Answer:
        return self.api.write(DEPOSIT, self.token, {"account_id": account_id, "amount_minor": amount_minor}, key)


class Customer:
    """A signed-up customer with one USD account, and what it does through the two APIs."""

    def __init__(self, api: ApiSession, token: str, account_id: str) -> None:
        self.api = api
        self.token = token
        self.account_id = account_id

    def payment_request(self, to_account: str, amount_minor: int, reference: str) -> dict[str, Any]:
        """The body of a payment from this customer's account."""
        return {
            "from_account": self.account_id,
            "to_account": to_account,
            "amount_minor": amount_minor,
            "currency": CURRENCY,
            "reference": reference,
        }

    def pay(self, body: dict[str, Any], key: str) -> Answer:
        """`POST /v1/payments` with `body` (`payment_request`), every attempt with Idempotency-Key `key`."""
        return self.api.write(PAY, self.token, body, key)

    def balance(self) -> Answer:
        return self.api.read(ACCOUNT, self.token, id=self.account_id)

    def payment(self, payment_id: str) -> Answer:
        return self.api.read(PAYMENT, self.token, id=payment_id)

    def statement(self, entries: int = 20) -> Answer:
        return self.api.read(ENTRIES, self.token, {"limit": str(entries)}, id=self.account_id)

    def quote(self, symbol: str) -> Answer:
        return self.api.read(QUOTE, self.token, symbol=symbol)

    def place_order(self, symbol: str, side: str, quantity: int) -> Answer:
        body = {"account_id": self.account_id, "symbol": symbol, "side": side, "quantity": quantity}
        return self.api.write(PLACE_ORDER, self.token, body)

    def portfolio(self) -> Answer:
        return self.api.read(PORTFOLIO, self.token, account_id=self.account_id)


class Payees:
    """The accounts this process's users opened: whom paying customers pay."""

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self._accounts: list[str] = []

    def add(self, account_id: str) -> None:
        if len(self._accounts) < self.limit:
            self._accounts.append(account_id)
        else:  # a long spiky run keeps signing users up: keep a random sample of them
            self._accounts[random.randrange(self.limit)] = account_id

    def other_than(self, account_id: str) -> str | None:
        for _ in range(3):
            if not self._accounts:
                return None
            chosen = random.choice(self._accounts)
            if chosen != account_id:
                return chosen
        return None


PAYEES = Payees()


def sign_up(api: ApiSession, admin: Admin, name: str) -> Customer:
    """Customer, account, funds: each step done once, tried again after a pause until it succeeds.

    The deposit's Idempotency-Key is fixed for the whole sign-up, so funds whose answer was lost
    are never deposited twice. A refusal that no retry can change (a bad admin token, a request
    the API rejects) stops the user with an error instead of hammering the API.
    """
    token: str | None = None
    account_id: str | None = None
    deposit_key = str(uuid.uuid4())
    while True:
        if token is None:
            answer = admin.create_customer(name)
            token = answer.text("token") if answer.created else None
        elif account_id is None:
            answer = api.write(OPEN_ACCOUNT, token, {"currency": CURRENCY})
            account_id = answer.text("id") if answer.created else None
        else:
            answer = admin.deposit(account_id, FUNDING_MINOR, deposit_key)
            if answer.created:
                return Customer(api, token, account_id)
        if 400 <= answer.status < 500 and answer.status not in (409, 429):
            log.error("sign-up refused: HTTP %s %s", answer.status, answer.text("code") or "")
            raise StopUser()
        if not answer.created:
            gevent.sleep(SIGN_UP_PAUSE_SECONDS)


class NovaUser(FastHttpUser):
    """A customer of the platform: signs up when it starts, then acts at `--user-rate` tasks a second."""

    abstract = True
    host = DEFAULT_PAYMENTS_URL
    # A request slower than this is a failure for the SLO long before; don't wait a minute for it.
    network_timeout = 10.0
    connection_timeout = 5.0
    customer: Customer

    def on_start(self) -> None:
        options = self.environment.parsed_options
        self._pace = constant_throughput(float(getattr(options, "user_rate", DEFAULT_USER_RATE)))
        api = ApiSession(self.client, str(getattr(options, "portfolio_url", DEFAULT_PORTFOLIO_URL)))
        admin = Admin(api, admin_token(os.environ))
        self.customer = sign_up(api, admin, f"load {type(self).__name__} {uuid.uuid4().hex[:8]}")
        PAYEES.add(self.customer.account_id)

    def wait_time(self) -> float:
        return float(self._pace(self))


class PayingCustomer(NovaUser):
    """Pays other customers small amounts, keeps an eye on the balance, now and then looks a payment up."""

    weight = 3

    def on_start(self) -> None:
        super().on_start()
        # Every movement of this account is recorded from here on: the audit can check its balance.
        BOOK.open_account(self.customer.account_id, self.customer.token, FUNDING_MINOR)
        self.last_payment: str | None = None

    @task(6)
    def pay_someone(self) -> None:
        payee = PAYEES.other_than(self.customer.account_id)
        if payee is None:  # the first customer of this process has nobody to pay yet
            self.check_balance()
            return
        body = self.customer.payment_request(payee, random.randint(100, 5_000), random.choice(REFERENCES))
        # The key is made here, not by `write`, so that the book holds the very key sent: the audit
        # sends an unknown outcome again with it. In flight until the final answer: a user stopped
        # mid-request leaves it so (an unknown outcome).
        key = str(uuid.uuid4())
        record = BOOK.sending(self.customer.token, key, body)
        answer = self.customer.pay(body, key)
        BOOK.settle(record, answer.status, answer.attempts, answer.text("id"))
        self.last_payment = answer.text("id") if answer.created else self.last_payment

    @task(2)
    def check_balance(self) -> None:
        self.customer.balance()

    @task(1)
    def look_up_a_payment(self) -> None:
        if self.last_payment is None:
            self.check_balance()
        else:
            self.customer.payment(self.last_payment)


REFERENCES = ("dinner", "rent share", "tickets", "groceries", "birthday gift", "taxi")


class Trader(NovaUser):
    """Watches a few symbols, buys what it likes, takes profit on some of what it holds, checks the portfolio."""

    weight = 2

    def on_start(self) -> None:
        super().on_start()
        self.watchlist = random.sample(SYMBOLS, 3)
        self.holdings: dict[str, int] = {}

    @task(4)
    def watch_the_market(self) -> None:
        self.customer.quote(random.choice(self.watchlist))

    @task(3)
    def buy(self) -> None:
        symbol, quantity = random.choice(self.watchlist), random.randint(1, 5)
        if self.customer.place_order(symbol, "buy", quantity).created:
            self.holdings[symbol] = self.holdings.get(symbol, 0) + quantity

    @task(1)
    def take_profit(self) -> None:
        held = [symbol for symbol, quantity in self.holdings.items() if quantity > 0]
        if not held:
            self.watch_the_market()
            return
        symbol = random.choice(held)
        quantity = random.randint(1, self.holdings[symbol])
        if self.customer.place_order(symbol, "sell", quantity).created:
            self.holdings[symbol] -= quantity

    @task(2)
    def check_portfolio(self) -> None:
        self.customer.portfolio()


class PortfolioViewer(NovaUser):
    """Mostly looks: the portfolio, quotes, the balance, the statement."""

    weight = 5

    @task(4)
    def view_portfolio(self) -> None:
        self.customer.portfolio()

    @task(3)
    def check_a_quote(self) -> None:
        self.customer.quote(random.choice(SYMBOLS))

    @task(2)
    def check_balance(self) -> None:
        self.customer.balance()

    @task(1)
    def read_statement(self) -> None:
        self.customer.statement()


USER_CLASSES: tuple[type[NovaUser], ...] = (PayingCustomer, Trader, PortfolioViewer)


Step = Callable[..., Any]


def open_model_steps(mix: dict[str, int]) -> list[tuple[type[NovaUser], Step, float]]:
    """Each task of each user class in `mix`, weighted so the open model sends the closed model's mix.

    In the closed model every user does one task at a time at the same pace, so a class sends in
    proportion to its weight, and shares it among its tasks by their `@task` weights.
    """
    steps = []
    for user_class in USER_CLASSES:
        weight = mix.get(user_class.__name__, 0)
        tasks = Counter(user_class.tasks)
        total = sum(tasks.values())
        for step, count in tasks.items():
            if weight and total and callable(step):
                steps.append((user_class, step, weight * count / total))
    return steps


class Arrivals(FastHttpUser):
    """One generator of the open model (`--rate`; one per Locust process): signs up a few customers
    of each kind in the mix, then sends on its `Timetable`, each send a greenlet of its own running
    one task of one of those customers, whether or not earlier sends have been answered."""

    weight = 1  # the locustfile turns it off without --rate (Locust drops classes of weight 0 at start)
    host = DEFAULT_PAYMENTS_URL

    def on_start(self) -> None:
        options = self.environment.parsed_options
        self.timetable = Timetable(
            float(options.rate), str(options.shape), float(options.duration), generators(options)
        )
        self.in_flight = gevent.pool.Group()
        self.steps = open_model_steps(mix_weights(str(options.mix)))
        self.customers = self._sign_up({cls for cls, _step, _weight in self.steps})
        self.steps = [row for row in self.steps if self.customers.get(row[0])]
        if not self.steps:
            log.error("no customer could be signed up: nothing to send")
            raise StopUser()

    def _sign_up(self, kinds: set[type[NovaUser]]) -> dict[type[NovaUser], list[NovaUser]]:
        """OPEN_MODEL_CUSTOMERS_PER_KIND customers of each kind, signed up at once (each as a user would)."""
        signing: list[tuple[type[NovaUser], NovaUser, Any]] = []
        for kind in kinds:
            # A subclass only for the open model: many requests at once share one customer's connections.
            # Its host is this generator's: Locust sets --host only on the classes it runs.
            attributes = {"concurrency": OPEN_MODEL_CONNECTIONS, "abstract": True, "host": self.host}
            pooled = type(kind.__name__, (kind,), attributes)
            for _ in range(OPEN_MODEL_CUSTOMERS_PER_KIND):
                customer = pooled(self.environment)
                signing.append((kind, customer, self.in_flight.spawn(customer.on_start)))
        self.in_flight.join()
        ready: dict[type[NovaUser], list[NovaUser]] = {}
        for kind, customer, greenlet in signing:
            if greenlet.successful():
                ready.setdefault(kind, []).append(customer)
        return ready

    @task
    def offer(self) -> None:
        """Play the timetable to its end, then wait to be stopped (the shape ends the run)."""
        kinds = [row[0] for row in self.steps]
        steps = [row[1] for row in self.steps]
        weights = [row[2] for row in self.steps]

        def choose() -> Callable[[], None]:
            index = random.choices(range(len(steps)), weights)[0]
            customer = random.choice(self.customers[kinds[index]])
            return partial(steps[index], customer)

        play(self.timetable, choose, self.in_flight)
        while True:
            gevent.sleep(60.0)

    def on_stop(self) -> None:
        in_flight = getattr(self, "in_flight", None)
        if in_flight is not None:
            in_flight.join(timeout=IN_FLIGHT_GRACE_SECONDS)
            in_flight.kill(block=False)


def generators(options: Any) -> int:
    """How many generators share the rate: one per Locust process (`--processes`), at least one."""
    return max(1, int(getattr(options, "processes", 0) or 0))
