"""The sandbox's frontend: a small page over its orders and checkout APIs.

``GET /app`` serves the page (views ``#/orders``, ``#/checkout``, ``#/new``), ``/app/app.js``
and ``/app/style.css`` its assets, and ``GET /api/v1/promotions`` a route the orders view
calls. The browser-side chaos faults act here:

* ``frontend-js-exception`` — the page is served with ``broken_view`` set: that view throws
  an uncaught ``TypeError`` from ``app.js`` when it renders;
* ``frontend-failing-fetch`` — ``/api/v1/promotions`` fails (500 by default) with an ERROR
  log line carrying the request's id, and the page shows the error;
* ``frontend-slow-asset`` — ``/app/style.css`` or ``/app/app.js`` is served late, so the
  page loads slowly.

The page reloads itself when the frontend changes (a fault switched on or off), as an app
that picks up a new build does: ``GET /app/changes`` is an event stream that sends the
frontend's version when it connects and whenever it changes, and the page reloads when the
version differs from the one it was served with — so a browser left on the page (the
browser capture of ``dev3000 demo``) shows a fault within a second.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, Response, StreamingResponse

__all__ = ["FrontendFaults", "frontend_router"]

_ASSETS = files("tools.sandbox") / "frontend"
_TYPES = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Sandbox shop</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/app/style.css">
<script>window.SANDBOX_FRONTEND = {config};</script>
</head><body>
<nav><a href="#/orders" id="nav-orders">Orders</a> <a href="#/checkout" id="nav-checkout">Checkout</a>
<a href="#/new" id="nav-new">New order</a></nav>
<div id="error" role="alert" hidden></div>
<main id="view">Loading…</main>
<script src="/app/app.js"></script>
</body></html>
"""


#: seconds between keep-alive comments on the change stream
KEEPALIVE_S = 15.0


@dataclass
class FrontendFaults:
    """What the browser-side faults switched on (``SandboxContext.frontend``), and the
    frontend's version, which :meth:`changed` bumps."""

    broken_view: str | None = None
    failing_fetch_status: int | None = None
    slow_assets: dict[str, float] = field(default_factory=dict)
    version: int = 0
    _changed: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def changed(self) -> None:
        """A fault was switched on or off: pages on the frontend reload."""
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    async def next_change(self) -> None:
        await self._changed.wait()


def frontend_router(faults: FrontendFaults, log: Any) -> APIRouter:
    """The page, its assets and ``/api/v1/promotions`` (``log``: the sandbox's logger)."""
    router = APIRouter(include_in_schema=False)

    @router.get("/app")
    @router.get("/app/")
    async def page() -> HTMLResponse:
        config = json.dumps({"broken_view": faults.broken_view, "version": faults.version})
        config = config.replace("<", "\\u003c")
        return HTMLResponse(
            _PAGE.replace("{config}", config), headers={"Cache-Control": "no-store"}
        )

    @router.get("/app/changes")
    async def changes() -> StreamingResponse:
        async def stream() -> AsyncIterator[str]:
            yield f"retry: 1000\ndata: {faults.version}\n\n"
            while True:
                try:
                    await asyncio.wait_for(faults.next_change(), KEEPALIVE_S)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                yield f"data: {faults.version}\n\n"

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
        )

    @router.get("/app/{asset}")
    async def asset(asset: str) -> Response:
        if asset not in _TYPES:
            return Response("not found", status_code=404, media_type="text/plain")
        delay = faults.slow_assets.get(asset)
        if delay:
            await asyncio.sleep(delay)
        body = (_ASSETS / asset).read_bytes()
        return Response(body, media_type=_TYPES[asset], headers={"Cache-Control": "no-cache"})

    @router.get("/api/v1/promotions", response_model=None)
    async def promotions(request: Request) -> Any:
        status = faults.failing_fetch_status
        if status is not None:
            log.error(
                "promotions lookup failed: pricing rules unavailable",
                extra={"path": request.url.path, "status": status},
            )
            return Response(
                json.dumps(
                    {
                        "type": "about:blank",
                        "title": "Promotions unavailable",
                        "status": status,
                        "detail": "pricing rules unavailable",
                        "request_id": getattr(request.state, "request_id", None),
                    }
                ),
                status_code=status,
                media_type="application/problem+json",
            )
        return {"promotions": [{"code": "WELCOME", "percent_off": 10}]}

    return router
