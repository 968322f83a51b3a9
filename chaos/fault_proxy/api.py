"""Toxiproxy's HTTP API over `Proxies`, so Toxiproxy's clients and chaostoolkit-toxiproxy drive it unchanged.

Routes, bodies and status codes are Toxiproxy 2.x's: `GET /proxies` (an object by name),
`POST /proxies` (201), `POST /populate` (201, `{"proxies": [...]}`), `GET|POST|DELETE
/proxies/{name}`, `GET|POST /proxies/{name}/toxics`, `GET|POST|DELETE
/proxies/{name}/toxics/{toxic}`, `POST /reset` (204), `GET /version`. Errors are Toxiproxy's
`{"error": "...", "status": N}`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from chaos.fault_proxy.proxy import Proxies, ProxyError

VERSION = "2.12.0"  # the Toxiproxy API level this one follows

Handler = Callable[[Request], Awaitable[Response]]


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status)


def _guarded(handler: Handler) -> Handler:
    """Turn ProxyError and unreadable bodies into Toxiproxy's error answer."""

    async def guarded(request: Request) -> Response:
        try:
            return await handler(request)
        except ProxyError as exc:
            return _error(str(exc), exc.status)

    return guarded


async def _body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        raise ProxyError("bad request body: not JSON") from None


def build_app(proxies: Proxies) -> Starlette:
    """The API application over `proxies`."""

    async def list_proxies(request: Request) -> Response:
        return JSONResponse({name: proxy.document() for name, proxy in proxies.proxies.items()})

    async def create_proxy(request: Request) -> Response:
        proxy = await proxies.create(await _body(request))
        return JSONResponse(proxy.document(), status_code=201)

    async def populate(request: Request) -> Response:
        body = await _body(request)
        entries = body.get("proxies") if isinstance(body, dict) else body
        if not isinstance(entries, list):
            raise ProxyError("populate takes a list of proxies")
        created = [await proxies.create(entry, replace=True) for entry in entries]
        return JSONResponse({"proxies": [proxy.document() for proxy in created]}, status_code=201)

    async def show_proxy(request: Request) -> Response:
        return JSONResponse(proxies.get(request.path_params["proxy"]).document())

    async def update_proxy(request: Request) -> Response:
        proxy = await proxies.update(request.path_params["proxy"], await _body(request))
        return JSONResponse(proxy.document())

    async def delete_proxy(request: Request) -> Response:
        await proxies.delete(request.path_params["proxy"])
        return Response(status_code=204)

    async def list_toxics(request: Request) -> Response:
        proxy = proxies.get(request.path_params["proxy"])
        return JSONResponse([toxic.document() for toxic in proxy.toxics.values()])

    async def create_toxic(request: Request) -> Response:
        toxic = proxies.add_toxic(request.path_params["proxy"], await _body(request))
        return JSONResponse(toxic.document())

    async def show_toxic(request: Request) -> Response:
        proxy = proxies.get(request.path_params["proxy"])
        return JSONResponse(proxy.toxic(request.path_params["toxic"]).document())

    async def update_toxic(request: Request) -> Response:
        proxy = proxies.get(request.path_params["proxy"])
        return JSONResponse(proxy.change_toxic(request.path_params["toxic"], await _body(request)).document())

    async def delete_toxic(request: Request) -> Response:
        proxies.get(request.path_params["proxy"]).remove_toxic(request.path_params["toxic"])
        return Response(status_code=204)

    async def reset(request: Request) -> Response:
        await proxies.reset()
        return Response(status_code=204)

    async def version(request: Request) -> Response:
        return JSONResponse({"version": VERSION})

    routes = [
        Route("/proxies", _guarded(list_proxies), methods=["GET"]),
        Route("/proxies", _guarded(create_proxy), methods=["POST"]),
        Route("/populate", _guarded(populate), methods=["POST"]),
        Route("/proxies/{proxy}", _guarded(show_proxy), methods=["GET"]),
        Route("/proxies/{proxy}", _guarded(update_proxy), methods=["POST", "PATCH"]),
        Route("/proxies/{proxy}", _guarded(delete_proxy), methods=["DELETE"]),
        Route("/proxies/{proxy}/toxics", _guarded(list_toxics), methods=["GET"]),
        Route("/proxies/{proxy}/toxics", _guarded(create_toxic), methods=["POST"]),
        Route("/proxies/{proxy}/toxics/{toxic}", _guarded(show_toxic), methods=["GET"]),
        Route("/proxies/{proxy}/toxics/{toxic}", _guarded(update_toxic), methods=["POST", "PATCH"]),
        Route("/proxies/{proxy}/toxics/{toxic}", _guarded(delete_toxic), methods=["DELETE"]),
        Route("/reset", _guarded(reset), methods=["POST"]),
        Route("/version", _guarded(version), methods=["GET"]),
    ]
    return Starlette(routes=routes)
