"""`nova serve --fault-proxy` for real: portfolio -> payments through proxy `payments`, toxics timed on real orders."""

from __future__ import annotations

import json
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from nova import cli
from nova.serve import Platform, ServeError, ServeOptions
from tests.conftest import ADMIN_TOKEN
from tests.nova.conftest import free_port, serving

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
DEPOSIT_MINOR = 100_000_000

RunProxied = Callable[..., AbstractContextManager[Platform]]


@pytest.fixture
def run_proxied(tmp_path: Path) -> RunProxied:
    def run(payments_db: str | None = None) -> AbstractContextManager[Platform]:
        return serving(tmp_path / "data", workers=1, payments_db=payments_db, fault_proxy_port=free_port())

    return run


@dataclass
class Trader:
    """One funded customer placing orders through portfolio, with every Idempotency-Key it used."""

    platform: Platform
    headers: dict[str, str]
    account_id: str
    keys: list[str] = field(default_factory=list)

    @classmethod
    def open(cls, platform: Platform) -> Trader:
        payments = platform.options.url("payments")
        with httpx.Client(base_url=payments, timeout=10.0) as http:
            customer = http.post("/v1/customers", json={"name": "Trader"}, headers=ADMIN).json()
            headers = {"Authorization": f"Bearer {customer['token']}"}
            account = http.post("/v1/accounts", json={"currency": "USD"}, headers=headers).json()
            deposit = {"account_id": account["id"], "amount_minor": DEPOSIT_MINOR}
            answer = http.post("/v1/deposits", json=deposit, headers={**ADMIN, "Idempotency-Key": str(uuid.uuid4())})
            assert answer.status_code == 201, answer.text
        return cls(platform, headers, account["id"])

    def order(self, key: str | None = None) -> tuple[httpx.Response, float]:
        key = key or str(uuid.uuid4())
        if key not in self.keys:
            self.keys.append(key)
        body = {"account_id": self.account_id, "symbol": "NOVA", "side": "buy", "quantity": 1}
        began = time.monotonic()
        answer = httpx.post(
            f"{self.platform.options.url('portfolio')}/v1/orders",
            json=body,
            headers={**self.headers, "Idempotency-Key": key},
            timeout=30.0,
        )
        return answer, time.monotonic() - began

    def median_order_seconds(self, count: int = 5) -> float:
        times = []
        for _ in range(count):
            answer, elapsed = self.order()
            assert answer.status_code == 201, answer.text
            times.append(elapsed)
        return statistics.median(times)

    def balance(self) -> int:
        answer = httpx.get(
            f"{self.platform.options.url('payments')}/v1/accounts/{self.account_id}", headers=self.headers
        )
        return int(answer.json()["balance_minor"])


def proxy_api(platform: Platform) -> httpx.Client:
    assert platform.fault_proxy is not None
    return httpx.Client(base_url=platform.fault_proxy.url, timeout=5.0)


def ledger_balanced(platform: Platform) -> bool:
    answer = httpx.get(f"{platform.options.url('payments')}/v1/ledger/verify", headers=ADMIN, timeout=30.0)
    return bool(answer.json()["balanced"])


@pytest.mark.parametrize(
    ("args", "port"), [(["--fault-proxy"], 8474), (["--fault-proxy", "--fault-proxy-port", "18474"], 18474), ([], None)]
)
def test_nova_serve_fault_proxy_flags_reach_the_platform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], port: int | None
) -> None:
    started: list[ServeOptions] = []

    class RecordingPlatform:
        fault_proxy = None

        def __init__(self, options: ServeOptions) -> None:
            started.append(options)

        def serve_forever(self, on_ready: Callable[[], None]) -> None:
            on_ready()

    monkeypatch.setattr(cli, "Platform", RecordingPlatform)
    result = CliRunner().invoke(cli.app, ["serve", "--data-dir", str(tmp_path), *args])
    assert result.exit_code == 0, result.output
    assert [options.fault_proxy_port for options in started] == [port]


def test_a_fault_proxy_port_equal_to_a_service_port_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli.app, ["serve", "--data-dir", str(tmp_path), "--fault-proxy", "--fault-proxy-port", "8001"]
    )
    assert result.exit_code != 0 and "--fault-proxy-port must differ" in result.output


def test_a_database_url_without_a_host_cannot_be_proxied(tmp_path: Path) -> None:
    options = ServeOptions(data_dir=tmp_path, payments_db="postgresql:///payments", fault_proxy_port=free_port())
    with pytest.raises(ServeError, match="name a host"):
        options.proxied_links()


@pytest.fixture(scope="module")
def shared_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """One SQLite platform behind the fault proxy for this module's tests (each leaves the proxy reset)."""
    data_dir = tmp_path_factory.mktemp("proxied") / "data"
    with serving(data_dir, workers=1, fault_proxy_port=free_port()) as platform:
        yield platform


@pytest.fixture
def proxied(shared_platform: Platform) -> Iterator[Platform]:
    yield shared_platform
    with proxy_api(shared_platform) as api:
        api.post("/reset")


def test_serve_json_names_the_fault_proxy_and_portfolio_dials_payments_through_it(proxied: Platform) -> None:
    with proxy_api(proxied) as api:
        platform = proxied
        state = json.loads(platform.state_file.read_text())
        assert state["fault_proxy"] == {"url": f"http://127.0.0.1:{platform.options.fault_proxy_port}"}
        proxy = api.get("/proxies/payments").json()
        assert proxy["upstream"] == f"127.0.0.1:{platform.options.payments_port}"
        assert set(api.get("/proxies").json()) == {"payments"}  # SQLite: no database link to carry


def test_latency_toxic_on_payments_slows_orders_and_removing_it_restores_the_baseline(
    proxied: Platform,
) -> None:
    with proxy_api(proxied) as api:
        platform = proxied
        trader = Trader.open(platform)
        trader.median_order_seconds(3)  # warm the pools
        baseline = trader.median_order_seconds()
        toxic = {"name": "slow", "type": "latency", "stream": "downstream", "attributes": {"latency": 300}}
        assert api.post("/proxies/payments/toxics", json=toxic).status_code == 200
        slowed = trader.median_order_seconds()
        assert slowed - baseline >= 0.28, (baseline, slowed)
        assert api.delete("/proxies/payments/toxics/slow").status_code == 204
        restored = trader.median_order_seconds()
        assert restored < baseline + 0.1, (baseline, restored)


def test_link_down_makes_orders_a_fast_503_and_reconciliation_settles_each_once(proxied: Platform) -> None:
    with proxy_api(proxied) as api:
        platform = proxied
        trader = Trader.open(platform)
        trader.median_order_seconds(2)
        assert api.post("/proxies/payments", json={"enabled": False}).json()["enabled"] is False
        refused = [trader.order() for _ in range(4)]
        for answer, elapsed in refused:
            assert (answer.status_code, answer.json()["code"]) == (503, "payments_unavailable"), answer.text
            assert answer.headers["Retry-After"]
            assert elapsed < 1.5
        assert api.post("/proxies/payments", json={"enabled": True}).json()["enabled"] is True
        deadline = time.monotonic() + 40  # the reconciler looks at orders older than 5 s, every 5 s
        while True:
            replays = [trader.order(key)[0] for key in trader.keys]
            if all(answer.status_code == 201 for answer in replays) or time.monotonic() > deadline:
                break
            time.sleep(2)
        assert [answer.status_code for answer in replays] == [201] * len(trader.keys)
        assert all(answer.json()["status"] == "filled" for answer in replays)
        charged = sum(answer.json()["amount_minor"] for answer in replays)
        assert trader.balance() == DEPOSIT_MINOR - charged  # every order paid exactly once
        assert ledger_balanced(platform)


# Portfolio's payments client: 3 attempts, each bounded by the 2 s read timeout, 0.25 s of backoff.
BLACK_HOLE_BOUND_SECONDS = 3 * 2.0 + 0.25 + 1.5


def test_a_black_holed_payments_link_makes_orders_a_bounded_503(proxied: Platform) -> None:
    with proxy_api(proxied) as api:
        platform = proxied
        trader = Trader.open(platform)
        trader.median_order_seconds(2)
        black_hole = {"name": "black-hole", "type": "timeout", "stream": "upstream", "attributes": {"timeout": 0}}
        assert api.post("/proxies/payments/toxics", json=black_hole).status_code == 200
        answer, elapsed = trader.order()
        assert (answer.status_code, answer.json()["code"]) == (503, "payments_unavailable"), answer.text
        assert elapsed < BLACK_HOLE_BOUND_SECONDS
        assert api.delete("/proxies/payments/toxics/black-hole").status_code == 204
        assert ledger_balanced(platform)


def test_reset_clears_every_toxic_and_brings_the_link_back(proxied: Platform) -> None:
    with proxy_api(proxied) as api:
        platform = proxied
        trader = Trader.open(platform)
        api.post("/proxies/payments/toxics", json={"type": "latency", "attributes": {"latency": 1000}})
        api.post("/proxies/payments/toxics", json={"type": "timeout", "stream": "upstream"})
        api.post("/proxies/payments", json={"enabled": False})
        assert api.post("/reset").status_code == 204
        proxy = api.get("/proxies/payments").json()
        assert (proxy["enabled"], proxy["toxics"]) == (True, [])
        assert trader.median_order_seconds(3) < 0.5
