"""ASGI middleware that records every HTTP request in the service's Prometheus metrics.

Pure ASGI (no request objects, no per-request allocations beyond one closure), because
it runs on every request. It must sit inside the tracing middleware, so the server
span is current when a request's duration is observed and its trace becomes the
exemplar of the latency bucket. The route label is the template the router matched
(`/v1/accounts/{account_id}`), read from `scope["route"]` after the app ran; a request
answered before routing (a 413 from the body limit) is matched against the routes here;
a request no route matches is `unmatched`.

Paths in `exclude_paths` (by default `/metrics`) are passed through unrecorded: a
scrape's own cost, which grows with the number of series and workers, would otherwise
land in the latency histograms that the SLOs are computed from.
"""

from __future__ import annotations

from collections.abc import Iterable
from time import perf_counter

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from instrumentation.metrics import UNMATCHED_ROUTE, HttpServerMetrics


class RequestMetrics:
    def __init__(self, app: ASGIApp, service: str, exclude_paths: Iterable[str] = ("/metrics",)) -> None:
        self.app = app
        self.metrics = HttpServerMetrics(service)
        self.exclude_paths = frozenset(exclude_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exclude_paths:
            await self.app(scope, receive, send)
            return
        # What the client is told if the app raises before answering: the outermost error
        # handler turns the exception into a 500.
        status = 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        active = self.metrics.active
        active.inc()
        started = perf_counter()
        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            seconds = perf_counter() - started
            active.dec()
            route = scope.get("route")
            template = route.path if route is not None else _template_of_unrouted(scope)
            self.metrics.observe(template, scope["method"], status, seconds)


def _template_of_unrouted(scope: Scope) -> str:
    """The template of a request answered before routing (a 413 from the body limit), or `unmatched`.

    Only requests without a route (those refused before routing, and 404s) pay for this walk.
    """
    router = getattr(scope.get("app"), "router", None)
    for route in getattr(router, "routes", ()):
        match, _child_scope = route.matches(scope)
        if match is not Match.NONE:
            return str(getattr(route, "path", UNMATCHED_ROUTE))
    return UNMATCHED_ROUTE
