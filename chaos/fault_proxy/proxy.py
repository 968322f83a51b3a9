"""Named TCP proxies on loopback and the connections (links) through them, with their toxics applied.

A proxy listens on `listen` and opens a connection to `upstream` for each client. Each
direction of a link is a reader task that stamps chunks with their arrival time and a writer
task that runs them through the stream's toxics, so a latency toxic delays each chunk from when
it arrived rather than adding up behind slow ones. Toxics are read live: adding, changing or
removing one acts on the connections already open, as in Toxiproxy. A disabled proxy closes
its listener and every link: the link is down, new connections are refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from chaos.fault_proxy.toxics import CloseLink, Send, Toxic, ToxicError, new_toxic, update_toxic

READ_SIZE = 32 * 1024
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARDS = ("", "0.0.0.0", "::", "[::]")


class ProxyError(ValueError):
    """A request the proxies cannot carry out; `status` is the HTTP status Toxiproxy answers with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def split_address(address: str, *, listen: bool) -> tuple[str, int]:
    """`host:port` as (host, port), on loopback only; a wildcard listen address binds 127.0.0.1.

    Clients written for Toxiproxy often ask for `0.0.0.0:port`; the suite never listens beyond
    loopback, so it binds 127.0.0.1 instead, and refuses any other host.
    """
    host, sep, port_text = address.rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise ProxyError(f"{address!r} is not host:port")
    host = host.strip("[]") if host not in WILDCARDS else host
    if listen and host in WILDCARDS:
        host = "127.0.0.1"
    if not _is_loopback(host):
        raise ProxyError(f"{address!r}: the fault proxy works on loopback only")
    port = int(port_text)
    if not listen and port == 0:
        raise ProxyError(f"upstream {address!r} needs a port")
    return host, port


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class Link:
    """One client connection and its connection upstream."""

    proxy: Proxy
    client: tuple[asyncio.StreamReader, asyncio.StreamWriter]
    server: tuple[asyncio.StreamReader, asyncio.StreamWriter]
    applies: dict[tuple[int, float], bool] = field(default_factory=dict)
    memos: dict[int, dict[str, int]] = field(default_factory=dict)
    timers: dict[int, asyncio.Task[None]] = field(default_factory=dict)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    def toxics(self, stream: str) -> Iterator[Toxic]:
        """The proxy's toxics on `stream` that this connection drew (once per toxic and toxicity)."""
        for toxic in list(self.proxy.toxics.values()):
            if toxic.stream != stream:
                continue
            key = (toxic.uid, toxic.toxicity)
            if key not in self.applies:
                self.applies[key] = toxic.toxicity >= 1 or toxic.rng.random() < toxic.toxicity
            if self.applies[key]:
                yield toxic

    def sync_timers(self) -> None:
        """Start each applying toxic's `on_link` timer once; cancel those of removed toxics."""
        live = {toxic.uid: toxic for stream in ("upstream", "downstream") for toxic in self.toxics(stream)}
        for uid in [uid for uid in self.timers if uid not in live]:
            self.timers.pop(uid).cancel()
        for uid, toxic in live.items():
            if uid not in self.timers:
                self.timers[uid] = asyncio.ensure_future(toxic.on_link(self))

    def close(self) -> None:
        """End both connections cleanly (FIN)."""
        for _, writer in (self.client, self.server):
            writer.close()
        self._finish()

    def reset(self) -> None:
        """End both connections with a TCP RST: the peer sees `connection reset by peer`."""
        for _, writer in (self.client, self.server):
            sock = writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        self._finish()

    def _finish(self) -> None:
        self.closed.set()
        current = asyncio.current_task()
        for task in [*self.tasks, *self.timers.values()]:
            if task is not current:
                task.cancel()
        self.proxy.links.discard(self)

    def __hash__(self) -> int:
        return id(self)

    async def run(self) -> None:
        self.sync_timers()
        self.tasks = [
            asyncio.ensure_future(self._pump(self.client[0], self.server[1], "upstream")),
            asyncio.ensure_future(self._pump(self.server[0], self.client[1], "downstream")),
        ]
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self.tasks)
        if not self.closed.is_set():
            self.close()

    async def _pump(self, source: asyncio.StreamReader, target: asyncio.StreamWriter, stream: str) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        busy = False  # the writer holds a chunk (a toxic may be sleeping on it)

        async def read() -> None:
            try:
                while data := await source.read(READ_SIZE):
                    if not busy and queue.empty() and not self.proxy.has_toxics(stream):
                        # No toxic on this stream: straight through, without the hop to the writer task.
                        target.write(data)
                        await target.drain()
                    else:
                        queue.put_nowait((time.monotonic(), data))
            except OSError:
                pass
            queue.put_nowait((time.monotonic(), b""))

        reader = asyncio.ensure_future(read())
        try:
            while True:
                arrived, data = await queue.get()
                if not data:
                    break
                busy = True
                await self._through(list(self.toxics(stream)), data, arrived, target)
                busy = not queue.empty()
            for toxic in self.toxics(stream):
                await toxic.before_close()
            if target.can_write_eof() and not target.is_closing():
                with contextlib.suppress(OSError):
                    target.write_eof()
        except CloseLink:
            self.close()
        except (OSError, ConnectionError):
            self.close()
        finally:
            reader.cancel()

    async def _through(self, chain: list[Toxic], data: bytes, arrived: float, target: asyncio.StreamWriter) -> None:
        async def write(piece: bytes) -> None:
            target.write(piece)
            await target.drain()

        send: Send = write
        for toxic in reversed(chain):
            send = _stage(toxic, send, arrived, self.memos.setdefault(toxic.uid, {}))
        await send(data)


def _stage(toxic: Toxic, send: Send, arrived: float, memo: dict[str, int]) -> Send:
    async def stage(piece: bytes) -> None:
        await toxic.transmit(piece, arrived, send, memo)

    return stage


@dataclass
class Proxy:
    """A named proxy: where it listens, where it forwards, whether it is up, and its toxics."""

    name: str
    listen: str
    upstream: str
    enabled: bool = True
    toxics: dict[str, Toxic] = field(default_factory=dict)
    links: set[Link] = field(default_factory=set)
    accepting: set[asyncio.StreamWriter] = field(default_factory=set)
    server: asyncio.Server | None = None

    def document(self) -> dict[str, Any]:
        """The proxy as Toxiproxy's API shows it."""
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": [toxic.document() for toxic in self.toxics.values()],
        }

    async def start(self) -> None:
        """Listen (if enabled); a listen port 0 becomes the port the system gave."""
        if not self.enabled or self.server is not None:
            return
        host, port = split_address(self.listen, listen=True)
        try:
            self.server = await asyncio.start_server(self._accept, host, port, reuse_address=True)
        except OSError as exc:
            raise ProxyError(f"proxy {self.name} cannot listen on {host}:{port}: {exc.strerror}", 500) from None
        bound = self.server.sockets[0].getsockname()
        self.listen = f"{host}:{bound[1]}"

    async def stop(self) -> None:
        """Stop listening and end every link: the link is down."""
        server, self.server = self.server, None
        if server is not None:
            server.close()
        for writer in list(self.accepting):
            writer.close()
        for link in list(self.links):
            link.close()
        if server is not None:
            await server.wait_closed()

    def has_toxics(self, stream: str) -> bool:
        return any(toxic.stream == stream for toxic in self.toxics.values())

    def add_toxic(self, body: Any, uid: int) -> Toxic:
        toxic = new_toxic(body, uid)
        if toxic.name in self.toxics:
            raise ProxyError(f"toxic already exists: {toxic.name}", 409)
        self.toxics[toxic.name] = toxic
        self._resync()
        return toxic

    def change_toxic(self, name: str, body: Any) -> Toxic:
        toxic = self.toxic(name)
        try:
            update_toxic(toxic, body)
        except ToxicError as exc:
            raise ProxyError(str(exc)) from None
        self._resync()
        return toxic

    def remove_toxic(self, name: str) -> None:
        self.toxic(name)
        del self.toxics[name]
        self._resync()

    def toxic(self, name: str) -> Toxic:
        try:
            return self.toxics[name]
        except KeyError:
            raise ProxyError("toxic not found", 404) from None

    def _resync(self) -> None:
        for link in list(self.links):
            link.sync_timers()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, port = split_address(self.upstream, listen=False)
        listener = self.server
        self.accepting.add(writer)
        try:
            server = await asyncio.open_connection(host, port)
        except OSError:
            writer.close()
            return
        finally:
            self.accepting.discard(writer)
        if listener is None or self.server is not listener or writer.is_closing():
            # The proxy went down (or was moved) while the upstream connection was being opened.
            writer.close()
            server[1].close()
            return
        for _, w in ((reader, writer), server):
            sock = w.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        link = Link(self, (reader, writer), server)
        self.links.add(link)
        await link.run()


class Proxies:
    """Every proxy of one fault-proxy process, by name: what the HTTP API acts on."""

    def __init__(self) -> None:
        self.proxies: dict[str, Proxy] = {}
        self._uids = 0

    def get(self, name: str) -> Proxy:
        try:
            return self.proxies[name]
        except KeyError:
            raise ProxyError("proxy not found", 404) from None

    async def create(self, body: Any, *, replace: bool = False) -> Proxy:
        """A proxy from a Toxiproxy create body (`name`, `upstream`, optional `listen`, `enabled`)."""
        if not isinstance(body, dict):
            raise ProxyError("proxy must be a JSON object")
        name, upstream = body.get("name"), body.get("upstream")
        if not isinstance(name, str) or not name:
            raise ProxyError("missing required field: name")
        if not isinstance(upstream, str) or not upstream:
            raise ProxyError("missing required field: upstream")
        listen = body.get("listen") or "127.0.0.1:0"
        enabled = body.get("enabled", True)
        if not isinstance(listen, str) or not isinstance(enabled, bool):
            raise ProxyError("listen must be a string and enabled a boolean")
        split_address(listen, listen=True)
        split_address(upstream, listen=False)
        existing = self.proxies.get(name)
        if existing is not None:
            if not replace:
                raise ProxyError("proxy already exists", 409)
            if (existing.listen, existing.upstream, existing.enabled) == (listen, upstream, enabled):
                return existing
            await self.delete(name)
        proxy = Proxy(name, listen, upstream, enabled)
        await proxy.start()
        self.proxies[name] = proxy
        return proxy

    async def update(self, name: str, body: Any) -> Proxy:
        """Change `listen`, `upstream` or `enabled` of a proxy; fields not given stay."""
        proxy = self.get(name)
        if not isinstance(body, dict):
            raise ProxyError("proxy must be a JSON object")
        enabled = body.get("enabled", proxy.enabled)
        listen = body.get("listen", proxy.listen)
        upstream = body.get("upstream", proxy.upstream)
        if not isinstance(enabled, bool) or not isinstance(listen, str) or not isinstance(upstream, str):
            raise ProxyError("listen and upstream must be strings and enabled a boolean")
        split_address(listen, listen=True)
        split_address(upstream, listen=False)
        if (listen, upstream) != (proxy.listen, proxy.upstream) or not enabled:
            await proxy.stop()
        proxy.listen, proxy.upstream, proxy.enabled = listen, upstream, enabled
        await proxy.start()
        return proxy

    async def delete(self, name: str) -> None:
        proxy = self.get(name)
        await proxy.stop()
        del self.proxies[name]

    def add_toxic(self, name: str, body: Any) -> Toxic:
        self._uids += 1
        try:
            return self.get(name).add_toxic(body, self._uids)
        except ToxicError as exc:
            raise ProxyError(str(exc)) from None

    async def reset(self) -> None:
        """Every proxy enabled and every toxic removed: Toxiproxy's `POST /reset`."""
        for proxy in self.proxies.values():
            for toxic in list(proxy.toxics):
                proxy.remove_toxic(toxic)
            proxy.enabled = True
            await proxy.start()

    async def close(self) -> None:
        for proxy in self.proxies.values():
            await proxy.stop()
