"""Toxiproxy's HTTP API on the real fault-proxy process, driven by httpx and by chaostoolkit-toxiproxy itself."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from chaostoxi.proxy import actions as proxy_actions
from chaostoxi.proxy import probes as proxy_probes
from chaostoxi.toxic import actions as toxic_actions

from tests.nova.conftest import free_port


@pytest.fixture(scope="module")
def api() -> Iterator[httpx.Client]:
    """`python -m chaos.fault_proxy` with one proxy, `self`, in front of its own API (an HTTP upstream to time)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "chaos.fault_proxy", "--port", str(port), "--proxy", f"self=127.0.0.1:{port}"]
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5.0)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                client.get("/version")
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.1)
        yield client
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(autouse=True)
def clean(api: httpx.Client) -> Iterator[None]:
    yield
    api.post("/reset")
    for name in api.get("/proxies").json():
        if name != "self":
            api.delete(f"/proxies/{name}")


def configuration(api: httpx.Client) -> dict[str, Any]:
    return {"toxiproxy_host": api.base_url.host, "toxiproxy_port": api.base_url.port}


def timed_get_through(api: httpx.Client, proxy: str = "self") -> float:
    """The fastest of three GETs through the proxy on one reused client (the machine may be busy)."""
    listen = api.get(f"/proxies/{proxy}").json()["listen"]
    times = []
    with httpx.Client(base_url=f"http://{listen}", timeout=5.0) as client:
        for _ in range(3):
            began = time.monotonic()
            client.get("/version").raise_for_status()
            times.append(time.monotonic() - began)
    return min(times)


def test_proxies_are_listed_by_name_in_toxiproxys_shape(api: httpx.Client) -> None:
    proxy = api.get("/proxies").json()["self"]
    assert set(proxy) == {"name", "listen", "upstream", "enabled", "toxics"}
    assert proxy["listen"].startswith("127.0.0.1:") and proxy["enabled"] is True and proxy["toxics"] == []


def test_create_answers_201_and_a_duplicate_409(api: httpx.Client) -> None:
    body = {"name": "extra", "listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{api.base_url.port}"}
    created = api.post("/proxies", json=body)
    assert created.status_code == 201 and created.json()["listen"] != "127.0.0.1:0"
    duplicate = api.post("/proxies", json=body)
    assert duplicate.status_code == 409 and duplicate.json()["status"] == 409


def test_unknown_proxy_is_404_with_toxiproxys_error_body(api: httpx.Client) -> None:
    answer = api.get("/proxies/nope/toxics")
    assert answer.status_code == 404 and answer.json() == {"error": "proxy not found", "status": 404}


def test_toxic_life_cycle_create_show_update_delete(api: httpx.Client) -> None:
    created = api.post("/proxies/self/toxics", json={"type": "latency", "attributes": {"latency": 50}})
    assert created.status_code == 200
    assert created.json() == {
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1.0,
        "attributes": {"latency": 50, "jitter": 0},
    }
    updated = api.post("/proxies/self/toxics/latency_downstream", json={"attributes": {"latency": 80}})
    assert updated.json()["attributes"] == {"latency": 80, "jitter": 0}
    assert [t["name"] for t in api.get("/proxies/self/toxics").json()] == ["latency_downstream"]
    assert api.delete("/proxies/self/toxics/latency_downstream").status_code == 204
    assert api.get("/proxies/self/toxics/latency_downstream").status_code == 404


def test_invalid_toxic_is_400_and_adds_nothing(api: httpx.Client) -> None:
    answer = api.post("/proxies/self/toxics", json={"type": "earthquake"})
    assert answer.status_code == 400 and "invalid toxic type" in answer.json()["error"]
    assert api.get("/proxies/self/toxics").json() == []


def test_populate_creates_the_listed_proxies(api: httpx.Client) -> None:
    upstream = f"127.0.0.1:{api.base_url.port}"
    answer = api.post("/populate", json=[{"name": "p1", "upstream": upstream}, {"name": "p2", "upstream": upstream}])
    assert answer.status_code == 201
    assert [p["name"] for p in answer.json()["proxies"]] == ["p1", "p2"]


def test_reset_clears_toxics_and_enables_proxies(api: httpx.Client) -> None:
    api.post("/proxies/self/toxics", json={"type": "latency", "attributes": {"latency": 500}})
    api.post("/proxies/self", json={"enabled": False})
    assert api.post("/reset").status_code == 204
    proxy = api.get("/proxies/self").json()
    assert proxy["enabled"] is True and proxy["toxics"] == []


def test_chaostoolkit_toxiproxy_latency_toxic_delays_requests_and_deleting_it_restores(api: httpx.Client) -> None:
    config = configuration(api)
    baseline = timed_get_through(api)
    assert toxic_actions.create_latency_toxic("self", "slow", latency=300, configuration=config)
    assert timed_get_through(api) - baseline >= 0.28
    assert toxic_actions.delete_toxic("self", "slow", configuration=config)
    assert timed_get_through(api) < baseline + 0.2


def test_chaostoolkit_toxiproxy_disable_and_enable_take_the_link_down_and_up(api: httpx.Client) -> None:
    config = configuration(api)
    listen = api.get("/proxies/self").json()["listen"]
    assert proxy_actions.disable_proxy("self", configuration=config)
    assert proxy_probes.get_proxy_attribute("self", "enabled", configuration=config) is False
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://{listen}/version", timeout=2.0)
    assert proxy_actions.enable_proxy("self", configuration=config)
    assert httpx.get(f"http://{listen}/version", timeout=2.0).status_code == 200


def test_chaostoolkit_toxiproxy_creates_a_proxy_on_loopback_even_when_asked_for_every_interface(
    api: httpx.Client,
) -> None:
    config = configuration(api)
    assert proxy_actions.create_proxy("made", "127.0.0.1", api.base_url.port, configuration=config)
    assert proxy_probes.proxy_exist("made", configuration=config)
    assert api.get("/proxies/made").json()["listen"].startswith("127.0.0.1:")
    assert proxy_actions.reset(configuration=config)
