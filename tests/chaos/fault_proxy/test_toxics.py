"""Each toxic on a real loopback echo server through an in-process proxy: what a client measures."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import pytest

from chaos.fault_proxy.proxy import Proxies, Proxy, ProxyError
from chaos.fault_proxy.toxics import ToxicError, new_toxic

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            if data == b"bye":
                writer.write(b"bye")
                await writer.drain()
                break
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    writer.close()


@asynccontextmanager
async def proxied() -> AsyncIterator[tuple[Proxies, Proxy]]:
    """An echo server on a free port and a proxy `echo` in front of it."""
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    proxies = Proxies()
    proxy = await proxies.create({"name": "echo", "upstream": f"127.0.0.1:{port}"})
    try:
        yield proxies, proxy
    finally:
        await proxies.close()
        server.close()


async def connect(proxy: Proxy) -> Streams:
    host, port = proxy.listen.rsplit(":", 1)
    return await asyncio.open_connection(host, int(port))


async def round_trip(streams: Streams, payload: bytes = b"ping") -> tuple[bytes, float]:
    reader, writer = streams
    began = time.monotonic()
    writer.write(payload)
    await writer.drain()
    received = b""
    while len(received) < len(payload):
        chunk = await asyncio.wait_for(reader.read(65536), 5)
        if not chunk:
            break
        received += chunk
    return received, time.monotonic() - began


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(test())


def add(
    proxies: Proxies, toxic_type: str, stream: str = "downstream", toxicity: float = 1.0, **attributes: Any
) -> None:
    proxies.add_toxic("echo", {"type": toxic_type, "stream": stream, "toxicity": toxicity, "attributes": attributes})


def test_bytes_pass_unchanged_without_toxics() -> None:
    async def test() -> None:
        async with proxied() as (_, proxy):
            received, _ = await round_trip(await connect(proxy), b"x" * 100_000)
            assert received == b"x" * 100_000

    run(test)


@pytest.mark.parametrize("stream", ["upstream", "downstream"])
def test_latency_delays_each_direction_by_its_milliseconds(stream: str) -> None:
    async def test() -> None:
        async with proxied() as (proxies, proxy):
            streams = await connect(proxy)
            _, baseline = await round_trip(streams)
            add(proxies, "latency", stream, latency=200)
            received, delayed = await round_trip(streams)
            assert received == b"ping"
            assert delayed - baseline >= 0.19

    run(test)


def test_latency_jitter_stays_within_its_bound() -> None:
    async def test() -> None:
        async with proxied() as (proxies, proxy):
            add(proxies, "latency", latency=100, jitter=50)
            streams = await connect(proxy)
            times = [(await round_trip(streams))[1] for _ in range(8)]
            assert all(0.045 <= t < 0.4 for t in times), times
            assert max(times) - min(times) > 0.005  # jitter varies the delay

    run(test)


def test_bandwidth_caps_the_rate_in_kilobytes_per_second() -> None:
    async def test() -> None:
        async with proxied() as (proxies, proxy):
            add(proxies, "bandwidth", rate=200)
            received, elapsed = await round_trip(await connect(proxy), b"y" * 100_000)
            assert received == b"y" * 100_000
            assert elapsed >= 0.45  # 100 KB at 200 KB/s is 0.5 s

    run(test)


def test_slow_close_delays_the_close_after_the_server_closed() -> None:
    async def test() -> None:
        async with proxied() as (proxies, proxy):
            add(proxies, "slow_close", delay=300)
            reader, writer = await connect(proxy)
            writer.write(b"bye")
            began = time.monotonic()
            assert await asyncio.wait_for(reader.readexactly(3), 5) == b"bye"
            assert await asyncio.wait_for(reader.read(10), 5) == b""
            assert time.monotonic() - began >= 0.28

    run(test)


def test_timeout_zero_holds_every_byte_until_the_toxic_is_removed() -> None:
    async def test() -> None:
        async with proxied() as (proxies, proxy):
            streams = await connect(proxy)
            add(proxies, "timeout", "upstream", timeout=0)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(round_trip(streams), 0.4)
            proxy.remove_toxic("timeout_upstream")
            received, _ = await round_trip(streams, b"again")
            assert received == b"again"

    run(test)


def test_timeout_closes_the_connection_after_its_milliseconds() -> None:
    async def test() -> None:
        async with proxied() as (proxies, proxy):
            add(proxies, "timeout", timeout=200)
            reader, writer = await connect(proxy)
            began = time.monotonic()
            writer.write(b"lost")
            assert await asyncio.wait_for(reader.read(10), 5) == b""
            assert 0.18 <= time.monotonic() - began < 2

    run(test)


def test_reset_peer_resets_the_connection() -> None:
    async def test() -> None:
        async with proxied() as (proxies, proxy):
            add(proxies, "reset_peer", timeout=100)
            reader, writer = await connect(proxy)
            await asyncio.sleep(0.3)
            with pytest.raises(ConnectionResetError):
                writer.write(b"x")
                await writer.drain()
                await asyncio.wait_for(reader.read(10), 5)
                writer.write(b"x")
                await writer.drain()

    run(test)


def test_slicer_delivers_everything_in_delayed_pieces() -> None:
    async def test() -> None:
        async with proxied() as (proxies, proxy):
            add(proxies, "slicer", average_size=100, size_variation=20, delay=10_000)
            reader, writer = await connect(proxy)
            writer.write(b"z" * 1000)
            began, reads, received = time.monotonic(), 0, b""
            while len(received) < 1000:
                received += await asyncio.wait_for(reader.read(65536), 5)
                reads += 1
            assert received == b"z" * 1000
            assert reads >= 3
            assert time.monotonic() - began >= 0.07  # at least 8 gaps of 10 ms

    run(test)


def test_limit_data_closes_after_its_bytes() -> None:
    async def test() -> None:
        async with proxied() as (proxies, proxy):
            add(proxies, "limit_data", bytes=10)
            reader, writer = await connect(proxy)
            writer.write(b"0123456789abcdef")
            received = await asyncio.wait_for(reader.read(65536), 5)
            received += await asyncio.wait_for(reader.read(65536), 5)
            assert received == b"0123456789"
            assert await asyncio.wait_for(reader.read(10), 5) == b""

    run(test)


def test_toxicity_zero_never_applies() -> None:
    async def test() -> None:
        async with proxied() as (proxies, proxy):
            add(proxies, "latency", toxicity=0.0, latency=500)
            _, elapsed = await round_trip(await connect(proxy))
            assert elapsed < 0.3

    run(test)


def test_disabled_proxy_refuses_connections_until_enabled() -> None:
    async def test() -> None:
        async with proxied() as (proxies, proxy):
            open_link = await connect(proxy)
            await proxies.update("echo", {"enabled": False})
            assert await asyncio.wait_for(open_link[0].read(10), 5) == b""
            with pytest.raises(ConnectionRefusedError):
                await connect(proxy)
            await proxies.update("echo", {"enabled": True})
            assert (await round_trip(await connect(proxy)))[0] == b"ping"

    run(test)


def test_reset_removes_every_toxic_and_enables_every_proxy() -> None:
    async def test() -> None:
        async with proxied() as (proxies, proxy):
            add(proxies, "latency", latency=500)
            await proxies.update("echo", {"enabled": False})
            await proxies.reset()
            assert proxy.enabled and proxy.toxics == {}
            _, elapsed = await round_trip(await connect(proxy))
            assert elapsed < 0.3

    run(test)


@pytest.mark.parametrize(
    "body",
    [
        {"type": "earthquake"},
        {"type": "latency", "stream": "sideways"},
        {"type": "latency", "toxicity": 1.5},
        {"type": "latency", "attributes": {"latency": -1}},
        {"type": "latency", "attributes": {"rate": 5}},
    ],
)
def test_invalid_toxic_is_refused(body: dict[str, Any]) -> None:
    with pytest.raises(ToxicError):
        new_toxic(body, 1)


@pytest.mark.parametrize("upstream", ["10.0.0.1:80", "example.com:80", "127.0.0.1"])
def test_upstream_off_loopback_or_without_port_is_refused(upstream: str) -> None:
    async def test() -> None:
        with pytest.raises(ProxyError):
            await Proxies().create({"name": "x", "upstream": upstream})

    run(test)
