"""Running the dev3000 app under uvicorn with dev3000's signal handling.

* SIGTERM/SIGINT: readiness turns 503 at once and stream clients get close frames
  (:func:`dev3000.app.begin_drain`); after ``drain_seconds`` uvicorn stops accepting and
  finishes in-flight requests (``timeout_graceful_shutdown`` 5 s), so the process exits
  within 10 s. A second signal exits at once.
* SIGHUP: configuration reload (installed by the app's lifespan).
* ``--run`` commands are handed to the process supervisor (``dev3000.supervisor``).
* ``--browser URL`` (or ``DEV3000_BROWSER_URL``) starts the browser capture
  (``dev3000.browser``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any

import uvicorn
from fastapi import FastAPI

from dev3000.supervisor import supervisor_lifespan as supervise
from guilde_core.config import Settings
from guilde_core.observability import setup_observability

if TYPE_CHECKING:
    from dev3000.mcp_aggregate import ToolRegistrar

__all__ = ["DrainingServer", "run_server", "supervisor_lifespan"]

log = logging.getLogger("dev3000.serve")


class DrainingServer(uvicorn.Server):
    """uvicorn server whose first SIGTERM drains before stopping."""

    def __init__(self, config: uvicorn.Config, app: FastAPI, drain_seconds: float) -> None:
        super().__init__(config)
        self.dev3000_app = app
        self.drain_seconds = drain_seconds
        self._draining = False
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: Any = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets=sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._draining:  # a second signal: stop now
            self.force_exit = True
            super().handle_exit(sig, frame)
            return
        if self._loop is None:  # not serving yet
            super().handle_exit(sig, frame)
            return
        self._draining = True
        from dev3000.app import begin_drain

        self.dev3000_app.state.dev3000.drain()  # readiness 503 from now on
        self._loop.call_soon_threadsafe(
            lambda: self._loop.create_task(begin_drain(self.dev3000_app))  # type: ignore[union-attr]
        )
        timer = threading.Timer(self.drain_seconds, super().handle_exit, (sig, frame))
        timer.daemon = True
        timer.start()


def supervisor_lifespan(
    commands: list[str],
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    """The lifespan that runs ``--run`` commands under ``dev3000.supervisor``."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with supervise(app, commands):
            yield

    return lifespan


def _setup_observability(settings: Settings) -> None:
    try:
        setup_observability(settings)
    except Exception as exc:  # observability must never stop dev3000 from serving
        log.warning("observability setup failed: %s", type(exc).__name__)


def _instrument(app: FastAPI, settings: Settings) -> None:
    """Starlette/httpx spans through Logfire when a token is configured and
    ``LOGFIRE_DIAGNOSTIC_SPANS`` is on."""
    if settings.logfire_write_token is None or not settings.logfire_diagnostic_spans:
        return
    try:
        import logfire

        logfire.instrument_starlette(app)
        logfire.instrument_httpx()
    except Exception as exc:  # missing extras or SDK trouble: serve anyway
        log.warning("logfire instrumentation unavailable: %s", type(exc).__name__)


def run_server(
    settings: Settings,
    *,
    host: str | None = None,
    port: int | None = None,
    run: list[str] | None = None,
    drain_seconds: float = 1.0,
    log_level: str | None = None,
    extra_tools: Sequence[ToolRegistrar] = (),
    browser: str | None = None,
) -> int:
    """Serve until stopped; returns the exit code. ``extra_tools``: see
    :func:`dev3000.app.create_app`; ``browser``: a page to watch in headless Chromium
    (default ``DEV3000_BROWSER_URL``; none: no capture)."""
    from dev3000.app import create_app
    from guilde_core.safelog import install_safe_logging

    install_safe_logging()  # before anything logs: uvicorn, websockets, the app
    if host and host != settings.dev3000_host:
        # the address really bound decides the posture (anonymous control, allowed hosts)
        settings = settings.model_copy(update={"dev3000_host": host})
    _setup_observability(settings)
    lifespans = [supervisor_lifespan(list(run))] if run else []
    if browser or settings.dev3000_browser_url:
        from dev3000.browser import browser_lifespan

        lifespans.append(browser_lifespan(browser))
    app = create_app(settings, lifespans=lifespans, extra_tools=extra_tools)
    _instrument(app, settings)
    config = uvicorn.Config(
        app,
        host=settings.dev3000_host,
        port=settings.dev3000_port if port is None else port,
        log_level=log_level or settings.dev3000_log_level,
        lifespan="on",
        access_log=False,
        timeout_graceful_shutdown=5,
        ws_ping_interval=20,
    )
    server = DrainingServer(config, app, drain_seconds)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)  # replaced by the app's handler at start-up
    server.run()
    return 0 if server.started else 1
