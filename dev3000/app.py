"""The dev3000 HTTP application: ``create_app(settings) -> FastAPI``.

Assembles the REST API (:mod:`dev3000.api`), the timeline stream (:mod:`dev3000.timeline`),
``/metrics``, and the aggregate MCP server at ``/mcp`` (streamable HTTP) and ``/sse``
(legacy SSE, messages at ``/messages/``). The MCP apps' lifespans run inside this app's.

Operations:

* :func:`begin_drain` (SIGTERM): readiness turns 503 at once, stream clients get close
  frames, background work stops (``dev3000 serve`` then lets uvicorn finish).
* :func:`reload_config` (SIGHUP): settings are read again, keys / rate limits / health
  settings swapped without dropping connections, and a ``config_reload`` event emitted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from fastapi import FastAPI
from fastmcp import FastMCP
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from dev3000.alerts import AlertIntake, Diagnoser
from dev3000.api import alerts, diag, health, targets, timeline
from dev3000.api.probes import targets_provider
from dev3000.api.state import AppState
from dev3000.mcp_aggregate import ToolRegistrar, build_aggregate_server
from dev3000.process_tools import Processes
from dev3000.redis_keys import dev3000_prefix
from dev3000.switches import disabled_by, switches_off
from dev3000.targets_store import open_targets_store
from dev3000.timeline.bus import EventBus
from dev3000.timeline.stream import PAGE_PATH, StreamAuthError, StreamConfig, StreamManager
from guilde_core import __version__
from guilde_core.config import ConfigurationInvalid, Settings, get_settings, load_settings
from guilde_core.errors import NotFoundError
from guilde_core.http.auth import (
    AuthFailure,
    AuthGuard,
    Keyring,
    authenticate,
    control_posture_issue,
    extract_token,
)
from guilde_core.http.authz import Surface
from guilde_core.http.hosts import HostPolicy
from guilde_core.http.middleware import ApiMiddleware
from guilde_core.http.problems import install_problem_handlers, problem_response
from guilde_core.http.ratelimit import new_limiter
from guilde_core.redaction import redact_text
from guilde_core.resilience.metrics import install as install_resilience_metrics
from servers.context import ServerContext
from servers.health.logic import HealthService

__all__ = ["begin_drain", "build_mcp_server", "create_app", "reload_config"]

log = logging.getLogger("dev3000.app")

DESCRIPTION = """\
dev3000: the diagnostics API of guilde-diag.

* **Auth**: `X-API-Key: <key>` or `Authorization: Bearer <key>`; keys and scopes from
  `DIAGNOSTIC_API_KEYS` (`read`, `read+control`). With `DIAGNOSTIC_AUTH_REQUIRED=true`,
  `/api/v1/diag/*`, the timeline, logs, targets, deep-health details, `/mcp` and the
  stream need a key: 401 without, 403 with the wrong scope. Control (POST/PUT/PATCH/DELETE
  that change something) needs the `control` scope; without a key it is refused (403
  `control_needs_key`) outside development or on a non-loopback bind address.
* **Host and Origin**: a `Host` that is not one of dev3000's names is 421, a browser
  `Origin` not on them (nor in `DEV3000_CORS_ORIGINS`) is 403 (`DEV3000_ALLOWED_HOSTS`);
  probes and `/metrics` are not checked.
* **Rate limit**: `DIAGNOSTIC_RATE_LIMIT` requests/minute per key (per address when
  anonymous); 429 with `Retry-After` and `RateLimit-*` headers. Probes and MCP from a
  loopback address are exempt.
* **Errors**: RFC 9457 problem details (`application/problem+json`).
* **Request ids**: every response carries `X-Request-ID` (yours, or a new one).
"""


# --- MCP ---------------------------------------------------------------------------------
def build_mcp_server(
    settings: Settings,
    bus: EventBus | None = None,
    extra_tools: Sequence[ToolRegistrar] = (),
    context: ServerContext | None = None,
    processes: Processes = tuple,
) -> FastMCP:
    """The aggregate FastMCP server dev3000 serves at ``/mcp`` and ``/sse``."""
    return build_aggregate_server(
        settings, bus=bus, extra_tools=extra_tools, context=context, processes=processes
    )


#: the tool of the aggregate the alert intake diagnoses with (the agent's, when registered)
DIAGNOSE_TOOL = "diagnose"


def mcp_diagnoser(server: FastMCP) -> Diagnoser:
    """A :data:`~dev3000.alerts.Diagnoser` that calls the ``diagnose`` tool of ``server`` in
    process (an in-memory MCP client: the local operator's read-only call)."""

    async def diagnose(question: str, focus: str | None) -> dict[str, Any]:
        from fastmcp import Client

        # looked up when needed, not at start: a lookup may reach DEV3000_MCP_REMOTES
        if await server.get_tool(DIAGNOSE_TOOL) is None:
            raise NotFoundError(
                "no diagnose tool on this dev3000's MCP server (the `dev3000` command "
                "registers the agent's)"
            )
        arguments: dict[str, Any] = {"question": question}
        if focus:
            arguments["focus"] = focus
        async with Client(server) as client:
            result = await client.call_tool(DIAGNOSE_TOOL, arguments, raise_on_error=True)
        data = result.structured_content
        if isinstance(data, dict) and set(data) == {"result"} and isinstance(data["result"], dict):
            data = data["result"]
        if not isinstance(data, dict):
            raise ValueError("the diagnose tool answered without a diagnosis")
        return data

    return diagnose


# --- timeline ----------------------------------------------------------------------------
def _stream_surface(connection: HTTPConnection) -> Surface:
    if connection.scope["type"] == "websocket":
        return "websocket"
    return "page" if connection.url.path == PAGE_PATH else "sse"


def _stream_authorizer(app: FastAPI) -> Callable[..., Any]:
    """The stream's and the page's guard: ``read`` through ``websocket``, ``sse`` or ``page``."""

    async def authorize(connection: HTTPConnection, token: str | None) -> None:
        keyring: Keyring = app.state.keyring
        try:
            authenticate(
                token or extract_token(connection.headers),
                keyring,
                action="read",
                surface=_stream_surface(connection),
            )
        except AuthFailure as failure:
            if failure.status == 403:
                raise StreamAuthError(403, failure.message) from None
            raise StreamAuthError(401, failure.message) from None

    return authorize


# --- operations --------------------------------------------------------------------------
async def begin_drain(app: FastAPI, *, close_timeout: float = 3.0) -> None:
    """SIGTERM: readiness 503 now; stream clients get close frames; background work stops."""
    state: AppState = app.state.dev3000
    state.drain()
    if state.stream is not None:
        with contextlib.suppress(Exception):
            await state.stream.close_all(timeout=close_timeout)
    with contextlib.suppress(Exception):
        await state.bus.shutdown(timeout=close_timeout)


def _changed(old: Settings, new: Settings) -> list[str]:
    return sorted(
        name.upper() for name in Settings.model_fields if getattr(old, name) != getattr(new, name)
    )


#: old health services' clients being closed after a reload (held until done)
_closing: set[asyncio.Task[None]] = set()


def reload_config(app: FastAPI) -> list[str]:
    """SIGHUP: read the configuration again and apply it without dropping connections.

    Returns the names of the variables that changed. An invalid configuration is refused
    (the running one stays) and reported as an error event.
    """
    from guilde_core.config import reset_settings_cache

    state: AppState = app.state.dev3000
    reset_settings_cache()
    try:
        # the bind address and the deployment name (every shared key's start, fixed in the
        # running stores, limiter and fan-out) need a restart: the running ones stay
        new = load_settings().model_copy(
            update={
                "dev3000_host": state.settings.dev3000_host,
                "dev3000_deployment": state.settings.dev3000_deployment,
            }
        )
        keyring = Keyring.from_settings(new)
    except (ConfigurationInvalid, ValueError) as exc:
        state.emit(
            kind="config_reload",
            source="config",
            subject="dev3000",
            severity="error",
            summary="configuration reload refused: " + redact_text(str(exc)).splitlines()[0],
            data={"error": redact_text(str(exc))},
        )
        return []
    changed = _changed(state.settings, new)
    state.settings = new
    old = state.health
    state.health = HealthService(
        new,
        extra_targets=old.extra_targets,
        self_checks=old.self_checks,
        ever_up=old.ever_up,  # what was up before the reload still counts as seen
    )
    with contextlib.suppress(RuntimeError):  # no running loop: nothing to close on
        closing = asyncio.get_running_loop().create_task(old.aclose())
        _closing.add(closing)
        closing.add_done_callback(_closing.discard)
    state.keyring = keyring
    app.state.keyring = keyring
    app.state.hosts = HostPolicy.from_settings(new)
    if state.limiter is not None:
        state.limiter.limit = new.diagnostic_rate_limit
    state.reloads += 1
    state.emit(
        kind="config_reload",
        source="config",
        subject="dev3000",
        summary=f"configuration reloaded ({len(changed)} change(s))",
        data={"changed": changed, "reloads": state.reloads},
    )
    return changed


# --- the app -----------------------------------------------------------------------------
def create_app(
    settings: Settings | None = None,
    *,
    redis_prefix: str | None = None,
    mcp: bool = True,
    bus: EventBus | None = None,
    lifespans: Sequence[Callable[[FastAPI], contextlib.AbstractAsyncContextManager[Any]]] = (),
    timeline_sources: bool = True,
    extra_tools: Sequence[ToolRegistrar] = (),
) -> FastAPI:
    """Build the dev3000 app.

    ``redis_prefix`` starts every shared Redis key (default: this deployment's,
    :func:`~dev3000.api.state.dev3000_prefix`; tests give their own); ``lifespans`` are entered (in
    order) inside the app's own lifespan, after the MCP apps (e.g. the ``--run``
    supervisor). ``timeline_sources`` runs the timeline's files, Redis fan-out, health
    poller (fed by this app's deep report), breaker watcher and log follower.
    ``extra_tools`` add tools to the aggregate MCP server (``registrar(server, settings)``).
    """
    settings = settings or get_settings()
    keyring = Keyring.from_settings(settings)
    hosts = HostPolicy.from_settings(settings)
    redis_url = settings.shared_redis_url
    if redis_prefix is None:
        redis_prefix = dev3000_prefix(settings)
    limiter = new_limiter(settings.diagnostic_rate_limit, redis_url=redis_url, prefix=redis_prefix)
    bus = bus or EventBus(settings.diagnostic_stream_buffer_size)
    # the runtime targets, read from whichever store the state holds at check time
    provider = targets_provider(lambda: state.targets)
    state = AppState(
        settings=settings,
        keyring=keyring,
        limiter=limiter,
        bus=bus,
        targets=open_targets_store(settings, prefix=redis_prefix),
        health=HealthService(
            settings, extra_targets=provider, self_checks=lambda: health.self_checks(state)
        ),
        redis_prefix=redis_prefix,
    )

    mcp_server = (
        build_mcp_server(
            settings,
            bus,
            extra_tools,
            ServerContext(
                targets=provider, browser=lambda: state.browser, health=lambda: state.health
            ),
            processes=lambda: state.supervisors,
        )
        if mcp
        else None
    )
    mcp_http: Any = mcp_server.http_app(path="/mcp", transport="http") if mcp_server else None
    mcp_sse: Any = mcp_server.http_app(path="/sse", transport="sse") if mcp_server else None

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # the app may be started again after a stop (tests, ASGI hosts): start fresh
        state.draining = False
        state.ready = False
        state.health.forget()  # a round of an earlier run belongs to its event loop
        if state.targets.closed:
            state.targets = open_targets_store(state.settings, prefix=redis_prefix)
        bus.reopen()
        bus.bind_loop()
        state.alerts = AlertIntake(lambda: state.settings, state.emit)
        async with contextlib.AsyncExitStack() as stack:
            if timeline_sources:
                await stack.enter_async_context(_timeline_sources(app))
            if mcp_http is not None:
                await stack.enter_async_context(mcp_http.lifespan(mcp_http))
                await stack.enter_async_context(mcp_sse.lifespan(mcp_sse))
            for extra in lifespans:
                await stack.enter_async_context(extra(app))
            if mcp_server is not None:
                state.alerts.diagnoser = mcp_diagnoser(mcp_server)
            _install_sighup(app)
            state.ready = True
            state.emit(
                kind="notice",
                source="dev3000",
                subject="dev3000",
                summary=f"dev3000 {__version__} started",
                data={
                    "mode": settings.dev3000_mode,
                    "diagnostic_mode": state.settings.diagnostic_mode,
                    "dev3000_enabled": state.settings.dev3000_enabled,
                },
            )
            for switch in switches_off(state.settings):
                log.warning("%s: its paths answer 404 (probes stay up)", switch.off_text)
            issue = control_posture_issue(state.settings)
            if issue is not None:
                log.warning("%s: %s", *issue)
            try:
                yield
            finally:
                await begin_drain(app)
                with contextlib.suppress(Exception):
                    await state.alerts.drain()
                _remove_sighup(app)
        with contextlib.suppress(Exception):
            await limiter.aclose()
        with contextlib.suppress(Exception):
            await state.targets.aclose()
        with contextlib.suppress(Exception):
            await state.health.aclose()

    install_resilience_metrics()  # breaker and retry series on /metrics
    app = FastAPI(
        title="dev3000",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
        # no FastAPI-native OpenTelemetry: request spans come from logfire.instrument_starlette
        # when a token is set (dev3000.serve); the native layer would add a second set and a
        # provider lookup to every request, probes included
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.dev3000 = state
    app.state.keyring = keyring
    app.state.hosts = hosts
    install_problem_handlers(app, verbose=lambda: state.settings.diagnostic_verbose)

    app.include_router(health.router)
    app.include_router(diag.router)
    app.include_router(timeline.router)
    app.include_router(targets.router)
    app.include_router(alerts.router)
    from dev3000.api import logs
    from dev3000.browser import router as browser_router

    app.include_router(logs.router)
    app.include_router(browser_router)

    manager = StreamManager(
        bus,
        config=StreamConfig(websocket_enabled=settings.diagnostic_websocket_enabled),
        authorize=_stream_authorizer(app),
    )
    state.stream = manager
    app.include_router(manager.router())

    @app.get(
        "/metrics",
        tags=["metrics"],
        summary="Prometheus metrics (default registry)",
        response_class=PlainTextResponse,
        responses={
            200: {
                "content": {
                    "text/plain": {
                        "example": 'dev3000_http_requests_total{method="GET",'
                        'route="/api/v1/health",status="200"} 42.0\n'
                    }
                }
            }
        },
    )
    async def metrics() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    if mcp_http is not None:
        # each MCP request is a ``read`` through its transport; the control tools decide
        # their own action per call with the caller the guard leaves on the request
        guard = AuthGuard(mcp_http, lambda: app.state.keyring, surface="mcp")
        sse_guard = AuthGuard(mcp_sse, lambda: app.state.keyring, surface="mcp-sse")
        app.router.routes.append(Route("/mcp", endpoint=guard, include_in_schema=False))
        app.router.routes.append(Route("/sse", endpoint=sse_guard, include_in_schema=False))
        app.router.routes.append(
            Route("/messages/", endpoint=sse_guard, methods=["POST"], include_in_schema=False)
        )

    @app.exception_handler(StreamAuthError)
    async def _stream_auth(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StreamAuthError)
        return problem_response(exc.status, exc.detail, instance=request.url.path)

    app.add_middleware(
        ApiMiddleware,
        limiter=lambda: app.state.dev3000.limiter,
        keyring=lambda: app.state.keyring,
        fast_probe=health.fast_probe,
        disabled=lambda path: disabled_by(path, app.state.dev3000.settings),
        hosts=lambda: app.state.hosts,
        verbose=lambda: app.state.dev3000.settings.diagnostic_verbose,
    )
    if settings.dev3000_cors_origins:  # the explicit allow-list: none unless configured
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.dev3000_cors_origins),
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After", "Mcp-Session-Id"],
        )
    return app


@contextlib.asynccontextmanager
async def _timeline_sources(app: FastAPI) -> AsyncIterator[None]:
    """The timeline service, fed by this app's deep report, as ``state.timeline``."""
    from dev3000.api.health import deep_body
    from dev3000.timeline.service import timeline_lifespan

    state: AppState = app.state.dev3000

    async def deep_check() -> dict[str, Any]:
        return await deep_body(state, include_details=True)

    async with timeline_lifespan(app, deep_check=deep_check) as service:
        state.timeline = service
        try:
            yield
        finally:
            state.timeline = None


def _install_sighup(app: FastAPI) -> None:
    try:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, lambda: reload_config(app))
        app.state.sighup_installed = True
    except (RuntimeError, ValueError, NotImplementedError):  # not the main thread (tests)
        app.state.sighup_installed = False


def _remove_sighup(app: FastAPI) -> None:
    if getattr(app.state, "sighup_installed", False):
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
