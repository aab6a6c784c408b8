"""The live stream: ``WS /api/v1/diag/stream`` and its SSE twin ``GET /api/v1/diag/stream``.

Protocol (docs/stream.md has the full description):

* auth: ``X-API-Key`` / ``Authorization: Bearer`` header, or ``?token=`` for browsers;
  WebSocket close codes 4401 (no/invalid key) and 4403 (scope), HTTP 401/403 for SSE;
* filters: ``kinds``, ``severity`` (minimum), ``sources``, ``subject`` as query
  parameters (and, on the WebSocket, a ``{"type": "subscribe", …}`` message);
* resume: ``resume_from=<event id>`` (WS) or ``Last-Event-ID`` (SSE): every buffered event
  after it, with a ``gap`` frame first when it has already left the buffer;
* SSE is framed by ``sse_starlette.EventSourceResponse`` (pings, disconnect detection,
  send timeout); its first event is a priming one — ``id:`` the subscription's start
  point and ``retry:`` — so a client that loses the connection before any event still
  resumes without loss;
* heartbeats: on the WebSocket after ``heartbeat_interval`` seconds of silence, on SSE
  every ``heartbeat_interval`` seconds (the response's ping); a WebSocket client that
  sends nothing (``{"type": "pong"}`` answers a heartbeat) for ``idle_timeout`` seconds
  is closed with 4408;
* a slow client's bounded queue drops its oldest events and it gets a ``gap`` frame
  (``overflow=drop_oldest``) or it is closed with 1008 (``overflow=disconnect``);
* shutdown: :meth:`StreamManager.close_all` sends close frames (1001) to everyone.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter
from prometheus_client import Gauge
from sse_starlette import EventSourceResponse, ServerSentEvent
from sse_starlette.sse import SendTimeoutError
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from guilde_core.errors import InvalidCursorError, InvalidInputError
from guilde_core.events import TimelineEvent, check_event_id

from .bus import (
    EventBus,
    Gap,
    Overflow,
    SlowConsumerError,
    Subscription,
    SubscriptionClosedError,
)
from .filters import EventFilter, parse_filter
from .page import render_timeline_page

__all__ = [
    "CLOSE_AUTH_REQUIRED",
    "CLOSE_FORBIDDEN",
    "CLOSE_GOING_AWAY",
    "CLOSE_IDLE",
    "CLOSE_INVALID",
    "CLOSE_SLOW_CONSUMER",
    "PAGE_PATH",
    "STREAM_CLIENTS",
    "STREAM_PATH",
    "Authorizer",
    "StreamAuthError",
    "StreamConfig",
    "StreamManager",
]

log = logging.getLogger(__name__)

STREAM_PATH = "/api/v1/diag/stream"
PAGE_PATH = "/timeline"

CLOSE_GOING_AWAY = 1001  # server shutting down
CLOSE_SLOW_CONSUMER = 1008  # policy violation: fell too far behind (overflow=disconnect)
CLOSE_INVALID = 4400  # bad query parameters
CLOSE_AUTH_REQUIRED = 4401  # no key / unknown key
CLOSE_FORBIDDEN = 4403  # key without the needed scope
CLOSE_DISABLED = 4404  # DIAGNOSTIC_WEBSOCKET_ENABLED=false
CLOSE_IDLE = 4408  # client silent longer than idle_timeout

STREAM_CLIENTS = Gauge(
    "dev3000_stream_clients",
    "Timeline stream clients currently connected.",
    ["transport"],
)


class StreamAuthError(Exception):
    """Raised by an :data:`Authorizer`: ``status`` is 401 or 403."""

    def __init__(self, status: Literal[401, 403], detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


#: ``await authorize(connection, token)``: raise :class:`StreamAuthError` to refuse.
#: ``token`` is the ``?token=`` query parameter (browsers cannot set headers).
Authorizer = Callable[[HTTPConnection, str | None], Awaitable[None]]


async def allow_all(connection: HTTPConnection, token: str | None) -> None:
    del connection, token


@dataclass
class StreamConfig:
    """Tunables of the stream (constructor arguments, not environment variables)."""

    websocket_enabled: bool = True
    heartbeat_interval: float = 15.0
    idle_timeout: float = 300.0  # WebSocket only; 0 disables
    queue_size: int = 256
    max_queue_size: int = 10_000
    overflow: Overflow = "drop_oldest"
    send_timeout: float = 10.0
    retry_ms: int = 2000  # SSE reconnection delay, sent with the priming event


@dataclass
class _Client:
    id: str
    transport: Literal["websocket", "sse"]
    subscription: Subscription
    connected_at: float = field(default_factory=time.monotonic)
    done: asyncio.Event = field(default_factory=asyncio.Event)


class _FrameCache:
    """Serialise each event once, however many clients receive it."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._data: OrderedDict[str, str] = OrderedDict()

    def event_json(self, event: TimelineEvent) -> str:
        text = self._data.get(event.id)
        if text is None:
            text = event.model_dump_json()
            self._data[event.id] = text
            if len(self._data) > self._size:
                self._data.popitem(last=False)
        return text


def _now() -> str:
    return datetime.now(UTC).isoformat()


class StreamManager:
    """Serves the stream endpoints over one :class:`EventBus` and tracks their clients."""

    def __init__(
        self,
        bus: EventBus,
        *,
        config: StreamConfig | None = None,
        authorize: Authorizer | None = None,
    ) -> None:
        self.bus = bus
        self.config = config or StreamConfig()
        self.authorize: Authorizer = authorize or allow_all
        self._clients: dict[str, _Client] = {}
        self._frames = _FrameCache()
        self._path = STREAM_PATH

    # --- clients ---------------------------------------------------------------------
    @property
    def client_count(self) -> int:
        return len(self._clients)

    def clients(self) -> list[dict[str, Any]]:
        """A summary of connected clients (for status pages)."""
        now = time.monotonic()
        return [
            {
                "id": c.id,
                "transport": c.transport,
                "connected_seconds": round(now - c.connected_at, 1),
                "pending": c.subscription.pending,
                "delivered": c.subscription.delivered,
                "filter": c.subscription.filter.describe(),
            }
            for c in self._clients.values()
        ]

    def _add(self, transport: Literal["websocket", "sse"], sub: Subscription) -> _Client:
        client = _Client(sub.id, transport, sub)
        self._clients[client.id] = client
        STREAM_CLIENTS.labels(transport).inc()
        return client

    def _remove(self, client: _Client) -> None:
        if self._clients.pop(client.id, None) is not None:
            STREAM_CLIENTS.labels(client.transport).dec()
        client.subscription.close()
        client.done.set()

    async def close_all(
        self,
        code: int = CLOSE_GOING_AWAY,
        reason: str = "server shutting down",
        timeout: float = 5.0,  # noqa: ASYNC109 - a bound on the wait, not a cancel scope
    ) -> None:
        """Send a close frame to every client (WebSocket ``code``; SSE a ``close`` event)
        and wait, at most ``timeout`` seconds, until they are gone."""
        clients = list(self._clients.values())
        for client in clients:
            client.subscription._close(code, reason)
        if clients:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(c.done.wait() for c in clients)), timeout)

    # --- parameters --------------------------------------------------------------------
    def _options(
        self, params: dict[str, str]
    ) -> tuple[EventFilter, int, Overflow, int, tuple[int, float]]:
        flt = parse_filter(params)
        try:
            queue_size = int(params.get("queue_size", self.config.queue_size))
            replay = int(params.get("replay", 0))
            batch = int(params.get("batch", 1))
            linger_ms = int(params.get("linger_ms", 0))
        except ValueError:
            raise InvalidInputError(
                "queue_size, replay, batch and linger_ms must be integers"
            ) from None
        if not 1 <= batch <= 1000:
            raise InvalidInputError("batch must be between 1 and 1000")
        if not 0 <= linger_ms <= 1000:
            raise InvalidInputError("linger_ms must be between 0 and 1000")
        if not 1 <= queue_size <= self.config.max_queue_size:
            raise InvalidInputError(
                f"queue_size must be between 1 and {self.config.max_queue_size}"
            )
        if not 0 <= replay <= self.bus.buffer_size:
            raise InvalidInputError(f"replay must be between 0 and {self.bus.buffer_size}")
        overflow = params.get("overflow", self.config.overflow)
        if overflow not in ("drop_oldest", "disconnect"):
            raise InvalidInputError("overflow must be drop_oldest or disconnect")
        return flt, queue_size, overflow, replay, (batch, linger_ms / 1000)  # type: ignore[return-value]

    def _hello(self, sub: Subscription, resumed: str | None) -> dict[str, Any]:
        return {
            "type": "hello",
            "instance": self.bus.instance_id,
            "subscription": sub.id,
            "filters": sub.filter.describe(),
            "resume_from": resumed,
            "buffer_size": self.bus.buffer_size,
            "queue_size": sub.queue_size,
            "overflow": sub.overflow,
            "heartbeat_interval": self.config.heartbeat_interval,
            "idle_timeout": self.config.idle_timeout,
        }

    # --- WebSocket ---------------------------------------------------------------------
    async def websocket_endpoint(self, websocket: WebSocket) -> None:
        await websocket.accept()
        if not self.config.websocket_enabled:
            await websocket.close(CLOSE_DISABLED, "websocket stream disabled")
            return
        params = dict(websocket.query_params)
        try:
            await self.authorize(websocket, params.get("token"))
        except StreamAuthError as exc:
            code = CLOSE_FORBIDDEN if exc.status == 403 else CLOSE_AUTH_REQUIRED
            await websocket.close(code, exc.detail[:120])
            return
        if self.bus.closing:
            await websocket.close(CLOSE_GOING_AWAY, "server shutting down")
            return
        try:
            flt, queue_size, overflow, replay, (batch, linger) = self._options(params)
        except InvalidInputError as exc:
            await websocket.close(CLOSE_INVALID, exc.message[:120])
            return
        resume_from = params.get("resume_from") or params.get("last_event_id") or None
        try:
            check_event_id(resume_from, "resume_from")
        except InvalidCursorError as exc:
            await websocket.close(CLOSE_INVALID, exc.message[:120])
            return
        sub = self.bus.subscribe(
            flt, resume_from=resume_from, replay=replay, queue_size=queue_size, overflow=overflow
        )
        client = self._add("websocket", sub)
        last_heard = [time.monotonic()]
        try:
            await websocket.send_text(json.dumps(self._hello(sub, resume_from)))
            sender = asyncio.create_task(
                self._ws_send_loop(websocket, sub, last_heard, batch, linger)
            )
            receiver = asyncio.create_task(self._ws_receive_loop(websocket, sub, last_heard))
            done, pending = await asyncio.wait(
                {sender, receiver}, return_when=asyncio.FIRST_COMPLETED
            )
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            close: tuple[int, str] | None = None
            for task in done:
                with contextlib.suppress(asyncio.CancelledError):
                    error = task.exception()
                    if isinstance(error, _Close):
                        close = (error.code, error.reason)
                    elif error is not None and not isinstance(error, WebSocketDisconnect):
                        log.info("stream client %s ended: %r", client.id, error)
            if close is not None and websocket.application_state == WebSocketState.CONNECTED:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(websocket.close(*close), self.config.send_timeout)
        except WebSocketDisconnect:
            pass
        finally:
            self._remove(client)

    async def _ws_send_loop(
        self,
        websocket: WebSocket,
        sub: Subscription,
        last_heard: list[float],
        batch: int = 1,
        linger: float = 0.0,
    ) -> None:
        cfg = self.config
        while True:
            wait = cfg.heartbeat_interval
            if cfg.idle_timeout > 0:
                idle_left = cfg.idle_timeout - (time.monotonic() - last_heard[0])
                if idle_left <= 0:
                    raise _Close(CLOSE_IDLE, f"idle timeout: nothing heard for {cfg.idle_timeout}s")
                wait = min(wait, idle_left)
            try:
                item = await sub.get(max_wait=wait)
            except SlowConsumerError as exc:
                raise _Close(CLOSE_SLOW_CONSUMER, str(exc)[:120]) from None
            except SubscriptionClosedError as exc:
                raise _Close(exc.code, exc.reason) from None
            if item is None:
                if cfg.idle_timeout > 0 and time.monotonic() - last_heard[0] >= cfg.idle_timeout:
                    continue  # the check at the top closes it
                text = json.dumps(
                    {"type": "heartbeat", "ts": _now(), "last_event_id": sub.last_event_id}
                )
            elif isinstance(item, Gap):
                text = item.model_dump_json()
            else:
                if batch > 1 and linger > 0 and sub.pending < batch - 1:
                    await asyncio.sleep(linger)  # let a few more events join this frame
                more = sub.take_events(batch - 1) if batch > 1 else []
                if more:
                    text = (
                        '{"type":"events","events":['
                        + ",".join(self._frames.event_json(e) for e in (item, *more))
                        + "]}"
                    )
                else:
                    text = '{"type":"event","event":' + self._frames.event_json(item) + "}"
            try:
                await asyncio.wait_for(websocket.send_text(text), cfg.send_timeout)
            except TimeoutError:
                raise _Close(CLOSE_SLOW_CONSUMER, "send timed out") from None

    async def _ws_receive_loop(
        self, websocket: WebSocket, sub: Subscription, last_heard: list[float]
    ) -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            last_heard[0] = time.monotonic()
            raw = message.get("text") or (message.get("bytes") or b"").decode(errors="replace")
            reply = self._handle_client_message(raw, sub)
            if reply is not None:
                await websocket.send_text(json.dumps(reply))

    def _handle_client_message(self, raw: str, sub: Subscription) -> dict[str, Any] | None:
        try:
            message = json.loads(raw)
        except ValueError:
            return {"type": "error", "detail": "messages must be JSON objects"}
        if not isinstance(message, dict):
            return {"type": "error", "detail": "messages must be JSON objects"}
        kind = message.get("type")
        if kind == "ping":
            return {"type": "pong", "ts": _now()}
        if kind in ("pong", "ack"):
            return None
        if kind == "subscribe":
            try:
                sub.update_filter(parse_filter(message))
            except InvalidInputError as exc:
                return {"type": "error", "detail": exc.message}
            return {"type": "subscribed", "filters": sub.filter.describe()}
        return {"type": "error", "detail": f"unknown message type {kind!r}"}

    # --- SSE ---------------------------------------------------------------------------
    async def sse_endpoint(self, request: Request) -> Response:
        params = dict(request.query_params)
        try:
            await self.authorize(request, params.get("token"))
        except StreamAuthError as exc:
            return _problem(exc.status, exc.detail)
        if self.bus.closing:
            return _problem(503, "server shutting down")
        try:
            flt, queue_size, overflow, replay, _ = self._options(params)
        except InvalidInputError as exc:
            return _problem(422, exc.message)
        resume_from = (
            request.headers.get("last-event-id")
            or params.get("resume_from")
            or params.get("last_event_id")
            or None
        )
        try:
            check_event_id(resume_from, "Last-Event-ID / resume_from")
        except InvalidCursorError as exc:
            return _problem(400, exc.message)
        connection = _SseConnection(
            self,
            lambda: self.bus.subscribe(
                flt,
                resume_from=resume_from,
                replay=replay,
                queue_size=queue_size,
                overflow=overflow,
            ),
            resume_from,
        )
        return _EventSource(
            connection.events(),
            ping=self.config.heartbeat_interval,
            ping_message_factory=connection.heartbeat,
            send_timeout=self.config.send_timeout,
        )

    # --- the /timeline page ---------------------------------------------------------------
    async def page_endpoint(self, request: Request) -> Response:
        params = dict(request.query_params)
        try:
            await self.authorize(request, params.get("token"))
        except StreamAuthError as exc:
            return HTMLResponse(
                f"<!doctype html><title>{exc.status}</title><h1>{exc.status}</h1>"
                f"<p>{html.escape(exc.detail)}</p><p>Open <code>/timeline?token=&lt;API key&gt;"
                "</code>.</p>",
                status_code=exc.status,
            )
        try:
            flt = parse_filter(params)
        except InvalidInputError as exc:
            return HTMLResponse(
                f"<!doctype html><title>422</title><p>{html.escape(exc.message)}</p>",
                status_code=422,
            )
        keep = ("kinds", "severity", "sources", "subject", "token")
        stream_params = {k: params[k] for k in keep if params.get(k)}
        page = render_timeline_page(
            self.bus.recent(200, flt),
            flt,
            stream_path=request.scope.get("root_path", "") + self._path,
            params=stream_params,
        )
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    # --- routes ------------------------------------------------------------------------
    def router(self, path: str = STREAM_PATH, page_path: str = PAGE_PATH) -> APIRouter:
        """The WebSocket route, its SSE twin (at ``path`` and ``path/sse``) and the
        ``/timeline`` page.

        The SSE route is left out of the OpenAPI schema: an endless response would hang
        schema-driven fuzzers; docs/stream.md documents it.
        """
        self._path = path
        router = APIRouter()
        router.add_api_websocket_route(path, self.websocket_endpoint, name="diag_stream_ws")
        router.add_api_route(
            page_path,
            self.page_endpoint,
            methods=["GET"],
            name="timeline_page",
            include_in_schema=False,
            response_model=None,
        )
        for sse_path, name in ((path, "diag_stream_sse"), (path + "/sse", "diag_stream_sse_alias")):
            router.add_api_route(
                sse_path,
                self.sse_endpoint,
                methods=["GET"],
                name=name,
                include_in_schema=False,
                response_model=None,
            )
        return router


class _Close(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class _EventSource(EventSourceResponse):
    """sse-starlette's response; a send that times out ends the stream quietly (the
    client is too slow or gone: its subscription is closed like any other's)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except SendTimeoutError:
            log.info("SSE stream client did not read for %ss: closed", self.send_timeout)


class _SseConnection:
    """One SSE client: subscribes when the response starts streaming (so a response that
    never streams holds nothing) and leaves the bus when the stream ends — finished,
    disconnected, timed out or cancelled."""

    def __init__(
        self,
        manager: StreamManager,
        subscribe: Callable[[], Subscription],
        resume_from: str | None,
    ) -> None:
        self.manager = manager
        self.subscribe = subscribe
        self.resume_from = resume_from
        self.subscription: Subscription | None = None

    def heartbeat(self) -> ServerSentEvent:
        """The ping event: ``heartbeat`` with the last event id this client was sent."""
        sub = self.subscription
        last = sub.last_event_id if sub is not None else None
        return ServerSentEvent(json.dumps({"ts": _now(), "last_event_id": last}), event="heartbeat")

    async def events(self) -> AsyncIterator[ServerSentEvent | bytes]:
        manager = self.manager
        sub = self.subscription = self.subscribe()
        client = manager._add("sse", sub)
        try:
            # priming: the resume point and the reconnection delay before anything else
            yield ServerSentEvent(id=sub.start_id, retry=manager.config.retry_ms)
            yield ServerSentEvent(json.dumps(manager._hello(sub, self.resume_from)), event="hello")
            while True:
                try:
                    item = await sub.get()
                except SlowConsumerError as exc:
                    reason = {"code": CLOSE_SLOW_CONSUMER, "reason": str(exc)}
                    yield ServerSentEvent(json.dumps(reason), event="close")
                    return
                except SubscriptionClosedError as exc:
                    reason = {"code": exc.code, "reason": exc.reason}
                    yield ServerSentEvent(json.dumps(reason), event="close")
                    return
                if isinstance(item, Gap):
                    yield ServerSentEvent(item.model_dump_json(), event="gap")
                elif item is not None:  # several waiting events go out in one chunk
                    frames = manager._frames
                    yield b"".join(
                        ServerSentEvent(frames.event_json(e), event="timeline", id=e.id).encode()
                        for e in (item, *sub.take_events(99))
                    )
        finally:
            manager._remove(client)


def _problem(status: int, detail: str) -> Response:
    titles = {
        400: "Bad Request",
        401: "Unauthorized",
        403: "Forbidden",
        422: "Invalid parameters",
        503: "Unavailable",
    }
    headers = {"WWW-Authenticate": 'ApiKey header="X-API-Key"'} if status == 401 else None
    return JSONResponse(
        {
            "type": "about:blank",
            "title": titles.get(status, "Error"),
            "status": status,
            "detail": detail,
        },
        status_code=status,
        media_type="application/problem+json",
        headers=headers,
    )
