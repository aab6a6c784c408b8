"""The live event stream: WebSocket ``/api/v1/diag/stream`` with an SSE twin as fallback.

:meth:`EventStream.events` yields :class:`~console.models.Event` forever: it reconnects
with exponential back-off after any failure, resumes from the last event id it saw (so
nothing still in the server's buffer is lost), reports every connection change through
``on_state``, and turns the server's gap notices into ``kind="gap"`` events. No Textual.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Literal
from urllib.parse import urlencode

import httpx
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus, WebSocketException

from console.connection import Backoff, ConnectionInfo
from console.models import Event, JsonValue, parse_event
from guilde_core.redaction import redact_text

__all__ = ["SSE_PATH", "WS_PATH", "EventStream", "decode_message"]

WS_PATH = "/api/v1/diag/stream"
SSE_PATH = "/api/v1/diag/stream/sse"
Transport = Literal["ws", "sse"]


def decode_message(text: str) -> Event | None:
    """One stream message → an event (``None`` for heartbeats and control frames)."""
    try:
        body = json.loads(text)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    kind = str(body.get("type") or body.get("kind") or "")
    if kind in ("heartbeat", "ping", "pong", "hello", "welcome", "subscribed"):
        return None
    if kind == "gap" or "dropped" in body or "missed" in body:
        dropped = body.get("dropped") or body.get("missed") or body.get("count") or "?"
        return Event(
            id=str(body.get("id") or ""),
            ts=None,
            source="stream",
            kind="gap",
            severity="warning",
            subject="stream",
            summary=f"stream gap: {dropped} event(s) dropped",
            data={k: v for k, v in body.items() if k != "type"},
        )
    inner = body.get("event") if isinstance(body.get("event"), dict) else body
    if kind == "event" and "event" not in body and "data" in body and "id" not in body:
        inner = body["data"]
    event = parse_event(inner)
    if event is None or not event.id:
        return None
    return event


class EventStream:
    """Reconnecting, resuming subscriber to dev3000's event stream."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        kinds: list[str] | None = None,
        severity: str | None = None,
        sources: list[str] | None = None,
        transport: Transport = "ws",
        backoff: Backoff | None = None,
        on_state: Callable[[ConnectionInfo], None] | None = None,
        last_event_id: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.filters: dict[str, str] = {}
        if kinds:
            self.filters["kinds"] = ",".join(kinds)
        if severity:
            self.filters["severity"] = severity
        if sources:
            self.filters["sources"] = ",".join(sources)
        self.transport: Transport = transport
        self.backoff = backoff or Backoff()
        self.on_state = on_state or (lambda info: None)
        self.last_event_id = last_event_id
        self.info = ConnectionInfo()
        self.connects = 0

    def _set(self, info: ConnectionInfo) -> None:
        self.info = info
        self.on_state(info)

    def _query(self) -> str:
        params = dict(self.filters)
        if self.last_event_id:
            params["resume_from"] = self.last_event_id
        return ("?" + urlencode(params)) if params else ""

    def _headers(self) -> dict[str, str]:
        headers = {"X-API-Key": self.api_key} if self.api_key else {}
        if self.last_event_id:
            headers["Last-Event-ID"] = self.last_event_id
        return headers

    async def events(self) -> AsyncIterator[Event]:
        """Yield events forever; reconnect with back-off on any failure."""
        while True:
            try:
                source = self._ws_once() if self.transport == "ws" else self._sse_once()
                async for event in source:
                    if event.kind != "gap" and event.id:
                        self.last_event_id = event.id
                    yield event
                error = "stream closed by server"
            except InvalidStatus as exc:
                status = exc.response.status_code
                error = f"WebSocket refused ({status})"
                if status in (400, 403, 404, 405, 426, 501, 503) and self.transport == "ws":
                    self.transport = "sse"  # the server has no (enabled) WebSocket: use SSE
            except (OSError, WebSocketException, httpx.HTTPError, TimeoutError) as exc:
                error = f"{type(exc).__name__}: {redact_text(str(exc))}"[:200]
            delay = self.backoff.next_delay()
            self._set(self.info.failed(error, delay))
            await asyncio.sleep(delay)

    def _connected(self) -> None:
        self.connects += 1
        self.backoff.reset()
        self._set(ConnectionInfo.ok())

    async def _ws_once(self) -> AsyncIterator[Event]:
        url = self.base_url.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
        async with ws_connect(
            url + WS_PATH + self._query(),
            additional_headers=self._headers(),
            open_timeout=5,
            ping_interval=10,
            ping_timeout=10,
            close_timeout=2,
            proxy=None,
            max_size=2**22,
        ) as ws:
            self._connected()
            async for message in ws:
                text = message if isinstance(message, str) else message.decode("utf-8", "replace")
                event = decode_message(text)
                if event is not None:
                    yield event
                elif '"heartbeat"' in text[:40]:
                    await ws.send('{"type": "pong"}')  # keeps the idle timeout away

    async def _sse_once(self) -> AsyncIterator[Event]:
        headers = {**self._headers(), "Accept": "text/event-stream"}
        timeout = httpx.Timeout(5.0, read=45.0)
        async with (
            httpx.AsyncClient(timeout=timeout) as http,
            http.stream("GET", self.base_url + SSE_PATH + self._query(), headers=headers) as resp,
        ):
            if resp.status_code >= 400:
                raise httpx.HTTPStatusError(
                    f"SSE refused ({resp.status_code})", request=resp.request, response=resp
                )
            self._connected()
            data: list[str] = []
            event_id: str | None = None
            name = "message"
            async for line in resp.aiter_lines():
                if line == "":
                    if name == "close":
                        return  # the server ends the stream: reconnect (and resume)
                    if data:
                        text = "\n".join(data)
                        if name == "gap" and '"type"' not in text:
                            text = '{"type": "gap", ' + text.lstrip().removeprefix("{")
                        event = _sse_event(text, event_id)
                        if event is not None:
                            yield event
                    data, event_id, name = [], None, "message"
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip())
                elif line.startswith("id:"):
                    event_id = line[3:].strip()
                elif line.startswith("event:"):
                    name = line[6:].strip()


def _sse_event(data: str, event_id: str | None) -> Event | None:
    event = decode_message(data)
    if event is None and event_id:
        try:
            body: JsonValue = json.loads(data)
        except ValueError:
            return None
        if isinstance(body, dict):
            event = parse_event({"id": event_id, **body})
    return event
