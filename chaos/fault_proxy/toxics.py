"""Toxiproxy's toxics, one class per type, and the table that names them.

A toxic sits on one stream of a proxy (`upstream`: client to server, `downstream`: server to
client) and acts on every connection it applies to (each connection draws once against the
toxic's `toxicity`). Toxics on a stream form a chain: each `transmit` gets a chunk with the
time it arrived at the proxy and hands what is left of it to the next stage; `on_link` runs
beside the connection (a timer that closes or resets it); `before_close` delays the close.

Attributes and their units are Toxiproxy's, so an experiment written for the real Toxiproxy
means the same here.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

STREAMS = ("upstream", "downstream")

Send = Callable[[bytes], Awaitable[None]]


class ToxicError(ValueError):
    """A toxic that cannot be created or updated as asked; the message is one line for the client."""


class LinkControl(Protocol):
    """What a toxic may do to the connection it acts on."""

    def close(self) -> None: ...

    def reset(self) -> None: ...


class CloseLink(Exception):
    """Raised by a toxic to end the connection (cleanly) after what it has sent."""


@dataclass
class Toxic:
    """A named toxic of one type; subclasses hold the behaviour and the attribute defaults."""

    name: str
    stream: str
    toxicity: float
    attributes: dict[str, int]
    uid: int = 0
    rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    type_name: ClassVar[str] = ""
    defaults: ClassVar[dict[str, int]] = {}

    async def transmit(self, data: bytes, arrived: float, send: Send, memo: dict[str, int]) -> None:
        """Pass `data` (read from the source at `arrived`, monotonic) on, changed or delayed.

        `memo` is this toxic's state on this one connection (e.g. the bytes `limit_data` let through).
        """
        await send(data)

    async def on_link(self, link: LinkControl) -> None:
        """Runs beside each connection the toxic applies to, until the toxic or the connection ends."""

    async def before_close(self) -> None:
        """Runs when the source of this stream closes, before the close is passed on."""

    def document(self) -> dict[str, Any]:
        """The toxic as Toxiproxy's API shows it."""
        return {
            "name": self.name,
            "type": self.type_name,
            "stream": self.stream,
            "toxicity": self.toxicity,
            "attributes": dict(self.attributes),
        }


async def _sleep_until(deadline: float) -> None:
    delay = deadline - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


class Latency(Toxic):
    """Delays every chunk by `latency` ms, plus or minus up to `jitter` ms, counted from its arrival."""

    type_name = "latency"
    defaults: ClassVar[dict[str, int]] = {"latency": 0, "jitter": 0}

    async def transmit(self, data: bytes, arrived: float, send: Send, memo: dict[str, int]) -> None:
        jitter = self.attributes["jitter"]
        delay_ms = self.attributes["latency"] + (self.rng.uniform(-jitter, jitter) if jitter else 0)
        await _sleep_until(arrived + max(0.0, delay_ms) / 1000)
        await send(data)


class Bandwidth(Toxic):
    """Limits the stream to `rate` KB/s (0: no limit)."""

    type_name = "bandwidth"
    defaults: ClassVar[dict[str, int]] = {"rate": 0}

    async def transmit(self, data: bytes, arrived: float, send: Send, memo: dict[str, int]) -> None:
        rate = self.attributes["rate"]
        if rate <= 0:
            await send(data)
            return
        step = max(1, rate * 100)  # what 100 ms of the rate carries
        for start in range(0, len(data), step):
            piece = data[start : start + step]
            began = time.monotonic()
            await send(piece)
            await _sleep_until(began + len(piece) / (rate * 1000))


class SlowClose(Toxic):
    """Delays the close of the connection by `delay` ms after the source closed."""

    type_name = "slow_close"
    defaults: ClassVar[dict[str, int]] = {"delay": 0}

    async def before_close(self) -> None:
        await asyncio.sleep(self.attributes["delay"] / 1000)


class Timeout(Toxic):
    """Lets no data through; closes the connection after `timeout` ms (0: holds it open for ever)."""

    type_name = "timeout"
    defaults: ClassVar[dict[str, int]] = {"timeout": 0}

    async def transmit(self, data: bytes, arrived: float, send: Send, memo: dict[str, int]) -> None:
        return  # swallowed: the black hole

    async def on_link(self, link: LinkControl) -> None:
        timeout = self.attributes["timeout"]
        if timeout > 0:
            await asyncio.sleep(timeout / 1000)
            link.close()


class ResetPeer(Toxic):
    """Resets the connection (TCP RST: connection reset by peer) after `timeout` ms (0: at once)."""

    type_name = "reset_peer"
    defaults: ClassVar[dict[str, int]] = {"timeout": 0}

    async def on_link(self, link: LinkControl) -> None:
        await asyncio.sleep(self.attributes["timeout"] / 1000)
        link.reset()


class Slicer(Toxic):
    """Cuts chunks into pieces of `average_size` +- `size_variation` bytes, `delay` µs apart."""

    type_name = "slicer"
    defaults: ClassVar[dict[str, int]] = {"average_size": 0, "size_variation": 0, "delay": 0}

    async def transmit(self, data: bytes, arrived: float, send: Send, memo: dict[str, int]) -> None:
        average, variation = self.attributes["average_size"], self.attributes["size_variation"]
        if average <= 0:
            await send(data)
            return
        start = 0
        while start < len(data):
            size = max(1, average + (self.rng.randint(-variation, variation) if variation else 0))
            await send(data[start : start + size])
            start += size
            if start < len(data) and self.attributes["delay"] > 0:
                await asyncio.sleep(self.attributes["delay"] / 1_000_000)


class LimitData(Toxic):
    """Closes the connection once `bytes` bytes have passed on this stream."""

    type_name = "limit_data"
    defaults: ClassVar[dict[str, int]] = {"bytes": 0}

    async def transmit(self, data: bytes, arrived: float, send: Send, memo: dict[str, int]) -> None:
        passed = memo.get("passed", 0)
        allowed = self.attributes["bytes"] - passed
        if allowed <= 0:
            raise CloseLink
        piece = data[:allowed]
        memo["passed"] = passed + len(piece)
        await send(piece)
        if memo["passed"] >= self.attributes["bytes"]:
            raise CloseLink


TOXIC_TYPES: dict[str, type[Toxic]] = {
    kind.type_name: kind for kind in (Latency, Bandwidth, SlowClose, Timeout, ResetPeer, Slicer, LimitData)
}


def new_toxic(body: Any, uid: int) -> Toxic:
    """A toxic from a Toxiproxy create body; ToxicError names what is wrong with it."""
    if not isinstance(body, dict):
        raise ToxicError("toxic must be a JSON object")
    kind = TOXIC_TYPES.get(str(body.get("type", "")))
    if kind is None:
        raise ToxicError(f"invalid toxic type: {body.get('type')!r}; one of {', '.join(TOXIC_TYPES)}")
    stream = body.get("stream") or "downstream"
    if stream not in STREAMS:
        raise ToxicError(f"invalid stream {stream!r}: upstream or downstream")
    name = body.get("name") or f"{kind.type_name}_{stream}"
    if not isinstance(name, str):
        raise ToxicError("toxic name must be a string")
    toxicity = _toxicity(body.get("toxicity", 1.0))
    attributes = dict(kind.defaults)
    attributes.update(_attributes(kind, body.get("attributes")))
    return kind(name=name, stream=stream, toxicity=toxicity, attributes=attributes, uid=uid)


def update_toxic(toxic: Toxic, body: Any) -> None:
    """Change a toxic's toxicity and attributes in place (live connections see it at once)."""
    if not isinstance(body, dict):
        raise ToxicError("toxic must be a JSON object")
    toxicity = _toxicity(body["toxicity"]) if "toxicity" in body else toxic.toxicity
    attributes = _attributes(type(toxic), body.get("attributes"))
    toxic.toxicity = toxicity
    toxic.attributes.update(attributes)


def _toxicity(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ToxicError(f"toxicity must be a number from 0 to 1, not {value!r}")
    return float(value)


def _attributes(kind: type[Toxic], raw: Any) -> dict[str, int]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ToxicError("attributes must be a JSON object")
    values: dict[str, int] = {}
    for key, value in raw.items():
        if key not in kind.defaults:
            raise ToxicError(f"{kind.type_name} has no attribute {key!r}; it has {', '.join(kind.defaults)}")
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ToxicError(f"{kind.type_name}.{key} must be a non-negative number, not {value!r}")
        values[key] = int(value)
    return values
