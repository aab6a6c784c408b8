"""The console's client of agent-web (``dev3000 agent web``, the agent as a service).

One :class:`AgentWebAgent` is one conversation: the first question creates a session
(``POST /api/v1/sessions``); every question is sent as a message of that session
(``POST …/messages``, answered 202) while the session's WebSocket
(``WS …/sessions/{id}/stream``) streams the progress events of the run to ``on_event``.
The diagnosis comes with the stream's ``diagnosis`` event, or — if the stream dropped —
from ``GET …/diagnosis`` once the session is idle again. A control action the agent
proposes (``awaiting_approval``) is put to ``approver`` and answered through
``POST …/approval`` (the key needs the control scope).

It has the same face as :class:`console.agent_bridge.InProcessAgent` (``session_id``,
``new_session``, ``ask``, ``describe``), so the Agent screen uses either. Nothing here
knows about Textual; httpx and websockets are imported when the first call is made.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from console.agent_models import (
    ApprovalRequest,
    Approver,
    Diagnosis,
    ProgressSink,
    parse_diagnosis,
)
from console.errors import ApiError, ConnectionLost
from console.models import JsonObject, JsonValue, redact_text

if TYPE_CHECKING:
    import httpx

__all__ = ["AgentRunFailed", "AgentWebAgent", "resolve_agent_url"]

API = "/api/v1/sessions"
#: ``--agent-url`` values that mean "do not use agent-web"
OFF = ("", "off", "none", "in-process", "inprocess")
#: ``--agent-url`` value that means "the settings' agent URL (DEV3000_AGENT_URL)"
AUTO = "auto"


class AgentRunFailed(RuntimeError):
    """agent-web reported the run as failed (its message, redacted)."""


def resolve_agent_url(value: str | None) -> str | None:
    """The agent-web base URL for an ``--agent-url`` value: ``auto`` → the settings'
    ``DEV3000_AGENT_URL``; ``off`` (or empty) → ``None`` (in-process agent only)."""
    if value is None or value.strip().lower() in OFF:
        return None
    if value.strip().lower() == AUTO:
        from guilde_core.config import get_settings

        value = get_settings().dev3000_agent_url
    return value.strip().rstrip("/") or None


class AgentWebAgent:
    """One conversation with agent-web at ``url`` (see the module doc)."""

    kind = "agent-web"

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        timeout: float = 10.0,
        run_timeout: float = 600.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.run_timeout = run_timeout
        self.session_id: str | None = None
        self._http: httpx.AsyncClient | None = None

    def describe(self) -> str:
        return f"agent-web at {self.url}"

    def new_session(self) -> str | None:
        """Forget the session: the next question starts a new one on agent-web."""
        self.session_id = None
        return None

    # ------------------------------------------------------------------- HTTP

    def _headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key} if self.api_key else {}

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            import httpx

            self._http = httpx.AsyncClient(
                base_url=self.url, headers=self._headers(), timeout=self.timeout
            )
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            http, self._http = self._http, None
            await http.aclose()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: JsonValue = None,
    ) -> JsonValue:
        import httpx

        try:
            try:
                response = await self._client().request(method, path, params=params, json=json)
            except httpx.RemoteProtocolError:
                if method != "GET":
                    raise
                # the server closed a kept-alive connection as it was reused: the request
                # never reached it; a read is sent again once, on a new connection
                response = await self._client().request(method, path, params=params, json=json)
        except (httpx.TransportError, OSError) as exc:
            raise ConnectionLost(f"{type(exc).__name__}: {redact_text(str(exc))}") from exc
        if response.status_code >= 400:
            raise ApiError.from_response(response)
        body: JsonValue = response.json() if response.content else None
        return body

    async def probe(self) -> str | None:
        """``None`` when agent-web answers and can run sessions (its session list answers
        with our key); otherwise why it cannot be used."""
        try:
            await self._request("GET", "/health")
            body = await self._request("GET", API, params={"limit": 1})
        except (ConnectionLost, ApiError) as exc:
            return str(exc)
        if not isinstance(body, dict) or "items" not in body:
            return f"{self.url} does not look like agent-web (no session list)"
        return None

    async def session(self) -> JsonObject:
        """The session's record (status, turns, last root cause, pending approval)."""
        assert self.session_id is not None
        body = await self._request("GET", f"{API}/{self.session_id}")
        return body if isinstance(body, dict) else {}

    async def diagnosis(self) -> JsonObject | None:
        """The session's latest diagnosis as agent-web sends it (``None`` before the
        first one)."""
        assert self.session_id is not None
        try:
            body = await self._request("GET", f"{API}/{self.session_id}/diagnosis")
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        return body if isinstance(body, dict) else None

    # -------------------------------------------------------------------- ask

    async def ask(
        self,
        question: str,
        on_event: ProgressSink,
        approver: Approver | None = None,
    ) -> Diagnosis | None:
        """Investigate ``question`` in the session (created on the first question); return
        the diagnosis, or ``None`` when the run waits on an approval."""
        if self.session_id is None:
            record = await self._request("POST", API, json={"title": question[:80]})
            session = record.get("id") if isinstance(record, dict) else None
            if not session:
                raise AgentRunFailed("agent-web created no session (no id in its answer)")
            self.session_id = str(session)
        async with asyncio.timeout(self.run_timeout):
            try:
                body = await self._ask_streaming(question, on_event, approver)
            except _StreamLost as lost:
                on_event({"type": "stream_lost", "error": str(lost)})
                body = await self._finish_polling(lost.asked, question, on_event)
        if body is None:
            return None
        diagnosis = parse_diagnosis(body)
        if diagnosis.session_id is None:
            diagnosis = replace(diagnosis, session_id=self.session_id)
        return diagnosis

    def _ws_url(self) -> str:
        base = "ws" + self.url[4:] if self.url.startswith("http") else self.url
        return f"{base}{API}/{self.session_id}/stream"

    async def _ask_streaming(
        self,
        question: str,
        on_event: ProgressSink,
        approver: Approver | None,
    ) -> JsonObject | None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidStatus, WebSocketException

        asked = False
        diagnosis: JsonObject | None = None
        try:
            async with connect(
                self._ws_url(), additional_headers=self._headers(), open_timeout=self.timeout
            ) as ws:
                first: JsonValue = json.loads(await ws.recv())  # {"type": "status"}: subscribed
                status = first.get("status") if isinstance(first, dict) else None
                if status in ("running", "awaiting_approval"):
                    raise ApiError(409, "Conflict", f"session is {status}")
                await self._request(
                    "POST", f"{API}/{self.session_id}/messages", json={"content": question}
                )
                asked = True
                async for raw in ws:
                    event: JsonValue = json.loads(raw)
                    if not isinstance(event, dict):
                        continue
                    kind = event.get("type")
                    if kind == "awaiting_approval":
                        on_event(event)
                        if approver is None:
                            return None
                        await self._approve(event, approver)
                        continue
                    if kind == "done":
                        break
                    if kind == "failed":
                        raise AgentRunFailed(str(event.get("error") or "the run failed"))
                    found = event.get("diagnosis")
                    if kind == "diagnosis" and isinstance(found, dict):
                        diagnosis = found
                    if kind not in ("status", "run_started"):
                        on_event(event)
                else:
                    raise _StreamLost("the stream closed before the run ended", asked)
        except InvalidStatus as exc:
            status = exc.response.status_code
            raise ApiError(status, "WebSocket refused", f"agent-web answered {status}") from exc
        except (WebSocketException, OSError, TimeoutError) as exc:
            if not asked:
                raise ConnectionLost(f"{type(exc).__name__}: {redact_text(str(exc))}") from exc
            raise _StreamLost(f"{type(exc).__name__}: {redact_text(str(exc))}", asked) from exc
        if diagnosis is None:
            diagnosis = await self.diagnosis()
        return diagnosis

    async def _approve(self, event: JsonObject, approver: Approver) -> None:
        pending = event.get("pending")
        request = pending[0] if isinstance(pending, list) and pending else {}
        decision = await approver(ApprovalRequest.parse(request))
        body: JsonObject = {"approved": decision.approved, "reason": decision.reason}
        # answered when the resumed run is done; its events arrive on the stream meanwhile
        await self._request("POST", f"{API}/{self.session_id}/approval", json=body)

    async def _finish_polling(
        self, asked: bool, question: str, on_event: ProgressSink
    ) -> JsonObject | None:
        """The stream dropped: send the question if it was not sent, wait until the session
        is no longer running, and read its diagnosis."""
        if not asked:
            await self._request(
                "POST", f"{API}/{self.session_id}/messages", json={"content": question}
            )
        delay = 0.2
        while True:
            record = await self.session()
            status = record.get("status")
            if status == "failed":
                raise AgentRunFailed(str(record.get("last_error") or "the run failed"))
            if status == "awaiting_approval":
                on_event({"type": "awaiting_approval", "pending": record.get("pending")})
                return None
            if status == "idle":
                return await self.diagnosis()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


class _StreamLost(Exception):
    def __init__(self, message: str, asked: bool) -> None:
        super().__init__(message)
        self.asked = asked
