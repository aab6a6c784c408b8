"""agent-web (``dev3000 agent web --port 8001``): sessions over REST, progress over WebSocket.

* ``GET /health`` — liveness for the container healthcheck.
* ``POST /api/v1/sessions`` — create (optionally with a first question);
  ``GET /api/v1/sessions`` — list with ``limit``/``offset`` and ``status``/``q`` filters;
  ``GET|DELETE /api/v1/sessions/{id}``; ``POST /api/v1/sessions/bulk-delete``.
* ``GET /api/v1/sessions/{id}/messages`` — the conversation; ``POST`` — ask a follow-up
  (``?wait=true`` answers with the diagnosis, otherwise 202 and the run streams).
* ``GET /api/v1/sessions/{id}/diagnosis`` — the session's latest diagnosis.
* ``POST /api/v1/sessions/{id}/approval`` — approve or deny the control action a session
  waits on (LangGraph interrupt → resume).
* ``WS /api/v1/sessions/{id}/stream`` — progress events of the session's runs.

Auth, rate limiting, request ids and RFC 9457 problem details are the ones dev3000's API uses
(:mod:`guilde_core.http`): the same ``DIAGNOSTIC_API_KEYS`` scopes and ``DIAGNOSTIC_RATE_LIMIT``.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import TypedDict

from fastapi import Depends, FastAPI, Query, Response, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, Field

from agent.checkpoint import open_checkpointer
from agent.mcp_client import DEFAULT_URL, DiagTools, MCPTarget
from agent.models import Diagnosis
from agent.providers import ChatMessage, build_chain
from agent.runner import DiagnosisAgent, RunResult
from agent.sessions import SessionFields, SessionIndex, SessionRecord
from guilde_core.config import Settings, get_settings
from guilde_core.errors import GuildeError, NotFoundError, PermanentError, ServiceUnavailableError
from guilde_core.http.auth import AuthFailure, Keyring, authenticate, extract_token, require_scope
from guilde_core.http.hosts import HostPolicy
from guilde_core.http.middleware import ApiMiddleware
from guilde_core.http.problems import install_problem_handlers
from guilde_core.http.ratelimit import RateLimiter
from guilde_core.redaction import redact, redact_text

__all__ = ["create_app"]

_current_session: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "agent_web_session", default=None
)
#: the frames of a run held back until the session index records the run's end
_held_frames: contextvars.ContextVar[list[dict[str, object]] | None] = contextvars.ContextVar(
    "agent_web_held_frames", default=None
)
#: frame types a client may act on at once (ask a follow-up): sent only once the session is
#: idle (or awaiting approval) in the index, so that follow-up is never refused as busy
_FINAL_FRAMES = frozenset({"diagnosis"})


class SessionBusy(PermanentError):
    """The session is running or waits on an approval (409)."""

    code = "conflict"
    http_status = 409


class CreateSession(BaseModel):
    title: str | None = Field(None, max_length=200, examples=["checkout outage"])
    question: str | None = Field(
        None, min_length=1, max_length=4000, examples=["why is checkout failing?"]
    )
    provider: str | None = Field(None, examples=["openai:gpt-4o-mini,offline"])


class AskBody(BaseModel):
    content: str = Field(min_length=1, max_length=4000, examples=["and what about redis?"])


class ApprovalBody(BaseModel):
    approved: bool
    reason: str | None = Field(None, max_length=500)


class BulkDelete(BaseModel):
    ids: list[str] = Field(min_length=1, max_length=500)


class SessionPage(BaseModel):
    items: list[SessionRecord]
    total: int
    limit: int
    offset: int


class BulkDeleteResult(BaseModel):
    deleted: list[str]
    missing: list[str]


class Accepted(BaseModel):
    session_id: str
    status: str


class MessageView(TypedDict, total=False):
    """One message of a session's conversation, as the messages endpoint lists it."""

    id: str
    role: str
    content: str
    name: str
    turn: int


#: a progress event on its way to a session's WebSocket subscribers
Event = dict[str, object]


class _Hub:
    """Progress events fanned out to the WebSocket subscribers of each session."""

    def __init__(self) -> None:
        self.subscribers: dict[str, set[asyncio.Queue[Event]]] = {}

    def publish(self, session_id: str, event: Event) -> None:
        for queue in list(self.subscribers.get(session_id, ())):
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait({**event, "session_id": session_id})

    def on_event(self, event: Event) -> None:
        session_id = _current_session.get()
        if session_id:
            held = _held_frames.get()
            if held is not None and event.get("type") in _FINAL_FRAMES:
                held.append(event)
                return
            self.publish(session_id, event)

    def release(self, session_id: str) -> None:
        """Publish the frames the current run held back (the index is up to date now)."""
        held = _held_frames.get()
        while held:
            self.publish(session_id, held.pop(0))

    def subscribe(self, session_id: str) -> asyncio.Queue[Event]:
        queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=500)
        self.subscribers.setdefault(session_id, set()).add(queue)
        return queue

    def unsubscribe(self, session_id: str, queue: asyncio.Queue[Event]) -> None:
        self.subscribers.get(session_id, set()).discard(queue)


class _Service:
    def __init__(self, agent: DiagnosisAgent, index: SessionIndex, hub: _Hub) -> None:
        self.agent = agent
        self.index = index
        self.hub = hub
        self.tasks: dict[str, asyncio.Task[None]] = {}

    async def _record(self, session_id: str, result: RunResult) -> None:
        if result.pending:
            await self.index.update(
                session_id, status="awaiting_approval", pending=redact(result.pending)
            )
            self.hub.release(session_id)
            self.hub.publish(session_id, {"type": "awaiting_approval", "pending": result.pending})
            return
        fields: SessionFields = {"status": "idle", "pending": [], "last_error": None}
        if result.diagnosis is not None:
            fields["last_root_cause"] = result.diagnosis.root_cause
        state = await self.agent.state(session_id)
        fields["turns"] = int(state.get("turn", 0)) + 1
        await self.index.update(session_id, **fields)
        self.hub.release(session_id)
        self.hub.publish(session_id, {"type": "done", "status": "idle"})

    async def run(
        self, session_id: str, question: str | None, decision: Mapping[str, object] | None
    ) -> RunResult:
        token = _current_session.set(session_id)
        held_token = _held_frames.set([])
        try:
            await self.index.update(session_id, status="running")
            self.hub.publish(session_id, {"type": "run_started"})
            if decision is not None:
                result = await self.agent.resume(session_id, decision)
            else:
                assert question is not None
                result = await self.agent.ask(question, session_id=session_id)
            await self._record(session_id, result)
            return result
        except Exception as exc:
            message = redact_text(f"{type(exc).__name__}: {exc}")[:500]
            await self.index.update(session_id, status="failed", last_error=message)
            self.hub.release(session_id)
            self.hub.publish(session_id, {"type": "failed", "error": message})
            raise
        finally:
            _held_frames.reset(held_token)
            _current_session.reset(token)

    def start(
        self, session_id: str, question: str | None, decision: Mapping[str, object] | None
    ) -> None:
        async def runner() -> None:
            with contextlib.suppress(Exception):
                await self.run(session_id, question, decision)

        self.tasks[session_id] = asyncio.create_task(runner())


def _view(message: ChatMessage) -> MessageView:
    view = MessageView(role=message["role"], content=message["content"])
    if "id" in message:
        view["id"] = message["id"]
    if message["role"] == "tool":
        view["name"] = message["name"]
    if "turn" in message:
        view["turn"] = message["turn"]
    return view


def create_app(
    settings: Settings | None = None,
    *,
    mcp_url: str | None = None,
    mcp_target: MCPTarget | None = None,
    checkpointer: str | None = None,
    index_path: str | None = None,
    bind_host: str = "127.0.0.1",
    mcp_api_key: str | None = None,
) -> ApiMiddleware:
    """The agent-web ASGI app. ``mcp_target`` (a FastMCP server) replaces the URL in tests.
    ``bind_host``: the address it is served on — with the mode it decides whether anonymous
    approvals are refused, and it is one of the Host names accepted. ``mcp_api_key``: the
    key sent to dev3000's MCP endpoint (its control tools need one with ``read+control``
    wherever dev3000 refuses anonymous control)."""
    settings = settings or get_settings()
    hub = _Hub()
    keyring = Keyring.from_settings(settings, bind_host=bind_host)
    hosts = HostPolicy.from_settings(settings, bind_host=bind_host)
    limiter = RateLimiter(
        settings.diagnostic_rate_limit,
        redis_url=settings.redis_url,
        prefix=f"{settings.redis_namespace}agent-web:",
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.service = None
        app.state.mcp_error = "connecting to dev3000's MCP endpoint"
        async with contextlib.AsyncExitStack() as stack:
            saver = await stack.enter_async_context(open_checkpointer(settings, checkpointer))
            chain = build_chain(settings)
            stack.push_async_callback(chain.aclose)
            path = index_path or (
                ":memory:"
                if (checkpointer or settings.agent_checkpointer) == "memory"
                else str(settings.data_dir / "agent-web-sessions.sqlite")
            )
            index = await SessionIndex.open(path)
            stack.push_async_callback(index.close)
            ready, stop = asyncio.Event(), asyncio.Event()

            async def hold_mcp() -> None:
                # agent-web stays up (and /health answers) while dev3000 is not reachable yet:
                # the MCP session is opened, and reopened, in this one task with back-off
                delay = 0.5
                target = mcp_target if mcp_target is not None else (mcp_url or DEFAULT_URL)
                while not stop.is_set():
                    try:
                        async with DiagTools(target, api_key=mcp_api_key) as tools:
                            agent = DiagnosisAgent(
                                tools, chain, settings=settings, checkpointer=saver,
                                on_event=hub.on_event,
                            )  # fmt: skip
                            app.state.service = _Service(agent, index, hub)
                            ready.set()
                            await stop.wait()
                            return
                    except GuildeError as exc:
                        app.state.mcp_error = exc.message
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), delay)
                    delay = min(delay * 2, 10.0)

            holder = asyncio.create_task(hold_mcp(), name="agent-web-mcp")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ready.wait(), 5.0)
            try:
                yield
            finally:
                if app.state.service is not None:
                    for task in app.state.service.tasks.values():
                        task.cancel()
                stop.set()
                await holder

    app = FastAPI(
        title="guilde-diag agent-web",
        version="0.1.0",
        description="Sessions with the diagnosis agent: REST + a WebSocket per session.",
        lifespan=lifespan,
        telemetry={"tracing": False, "metrics": False, "logs": False},  # as dev3000's app
    )
    app.state.keyring = keyring
    install_problem_handlers(app, verbose=lambda: settings.diagnostic_verbose)
    read = Depends(require_scope("read"))

    def service() -> _Service:
        svc: _Service | None = app.state.service
        if svc is None:
            raise ServiceUnavailableError(
                f"dev3000's MCP endpoint is not reachable yet: {app.state.mcp_error}"
            )
        return svc

    async def existing(session_id: str) -> SessionRecord:
        record = await service().index.get(session_id)
        if record is None:
            raise NotFoundError(f"no session {session_id!r}")
        return record

    @app.get("/health", tags=["health"])
    async def health() -> dict[str, str]:
        """Liveness of agent-web (the container healthcheck)."""
        return {"status": "healthy", "service": "agent-web"}

    @app.post("/api/v1/sessions", status_code=201, dependencies=[read], tags=["sessions"])
    async def create_session(body: CreateSession, response: Response) -> SessionRecord:
        """Create a session; with ``question`` its first run starts at once (streamed). The
        ``Location`` header names the new session."""
        svc = service()
        session_id = uuid.uuid4().hex
        title = body.title or (body.question or "new session")[:80]
        await svc.index.create(session_id, redact_text(title), body.provider)
        if body.question:
            svc.start(session_id, body.question, None)
        response.headers["Location"] = f"/api/v1/sessions/{session_id}"
        return await existing(session_id)

    @app.get("/api/v1/sessions", dependencies=[read], tags=["sessions"])
    async def list_sessions(
        limit: int = Query(20, ge=1, le=200),
        offset: int = Query(0, ge=0),
        status: str | None = Query(None, pattern="^(idle|running|awaiting_approval|failed)$"),
        q: str | None = Query(None, max_length=200, description="Title contains."),
    ) -> SessionPage:
        """Sessions, most recently active first."""
        items, total = await service().index.list_page(
            limit=limit, offset=offset, status=status, q=q
        )
        return SessionPage(items=items, total=total, limit=limit, offset=offset)

    @app.get("/api/v1/sessions/{session_id}", dependencies=[read], tags=["sessions"])
    async def get_session(session_id: str) -> SessionRecord:
        return await existing(session_id)

    @app.delete(
        "/api/v1/sessions/{session_id}", status_code=204, dependencies=[read], tags=["sessions"]
    )
    async def delete_session(session_id: str) -> Response:
        await existing(session_id)
        await _delete([session_id])
        return Response(status_code=204)

    async def _delete(ids: list[str]) -> list[str]:
        svc = service()
        deleted = await svc.index.delete(ids)
        for sid in deleted:
            task = svc.tasks.pop(sid, None)
            if task is not None:
                task.cancel()
            with contextlib.suppress(Exception):
                await svc.agent.checkpointer.adelete_thread(sid)
        return deleted

    @app.post("/api/v1/sessions/bulk-delete", dependencies=[read], tags=["sessions"])
    async def bulk_delete(body: BulkDelete) -> BulkDeleteResult:
        """Delete many sessions at once; unknown ids are reported, not an error."""
        deleted = await _delete(list(dict.fromkeys(body.ids)))
        return BulkDeleteResult(deleted=deleted, missing=[i for i in body.ids if i not in deleted])

    @app.get("/api/v1/sessions/{session_id}/messages", dependencies=[read], tags=["messages"])
    async def messages(session_id: str) -> list[MessageView]:
        """The conversation (plain-dict messages, redacted)."""
        await existing(session_id)
        history = await service().agent.history(session_id)
        return [redact(_view(m)) for m in history]

    @app.get("/api/v1/sessions/{session_id}/diagnosis", dependencies=[read], tags=["messages"])
    async def last_diagnosis(session_id: str) -> Diagnosis:
        """The session's latest diagnosis (404 before its first): what a client that was not
        listening on the stream when the run ended reads afterwards."""
        await existing(session_id)
        raw = (await service().agent.state(session_id)).get("diagnosis")
        if not raw:
            raise NotFoundError(f"session {session_id!r} has no diagnosis yet")
        diagnosis: Diagnosis = redact(Diagnosis.model_validate(raw))
        diagnosis.session_id = session_id  # an id, not a secret (it looks like a token)
        return diagnosis

    @app.post(
        "/api/v1/sessions/{session_id}/messages",
        dependencies=[read],
        tags=["messages"],
        responses={202: {"model": Accepted}},
    )
    async def ask(
        session_id: str, body: AskBody, response: Response, wait: bool = Query(False)
    ) -> Diagnosis | Accepted:
        """Ask a question in the session; ``wait=true`` returns the diagnosis."""
        record = await existing(session_id)
        if record.status in ("running", "awaiting_approval"):
            raise SessionBusy(f"session {session_id} is {record.status}")
        svc = service()
        if wait:
            result = await svc.run(session_id, body.content, None)
            if result.diagnosis is not None:
                return result.diagnosis
            response.status_code = 202
            return Accepted(session_id=session_id, status="awaiting_approval")
        svc.start(session_id, body.content, None)
        response.status_code = 202
        return Accepted(session_id=session_id, status="running")

    @app.post(
        "/api/v1/sessions/{session_id}/approval",
        dependencies=[Depends(require_scope("control"))],
        tags=["messages"],
    )
    async def approval(session_id: str, body: ApprovalBody) -> Diagnosis | Accepted:
        """Approve or deny the pending control action; the run resumes (and is answered)."""
        record = await existing(session_id)
        if record.status != "awaiting_approval":
            raise SessionBusy(f"session {session_id} waits on no approval")
        result = await service().run(session_id, None, body.model_dump())
        if result.diagnosis is not None:
            return result.diagnosis
        return Accepted(session_id=session_id, status="awaiting_approval")

    @app.websocket("/api/v1/sessions/{session_id}/stream")
    async def stream(websocket: WebSocket, session_id: str) -> None:
        """Progress events of the session's runs, as JSON messages."""
        try:
            authenticate(
                extract_token(websocket.headers, websocket.query_params),
                keyring,
                surface="websocket",
            )
        except AuthFailure as failure:
            await websocket.close(code=4401 if failure.status == 401 else 4403)
            return
        svc = service()
        if await svc.index.get(session_id) is None:
            await websocket.close(code=4404)
            return
        await websocket.accept()
        queue = svc.hub.subscribe(session_id)

        async def until_closed() -> None:
            # the client leaving, or the server shutting down (uvicorn closes every WebSocket
            # on SIGTERM): either ends this handler at once, so a drain never waits on it
            while (await websocket.receive())["type"] != "websocket.disconnect":
                pass

        closed = asyncio.create_task(until_closed())
        try:
            record = await svc.index.get(session_id)
            await websocket.send_json(
                {"type": "status", "status": record.status if record else "unknown"}
            )
            while not closed.done():
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({getter, closed}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    break
                await websocket.send_json(redact(getter.result()))
        except WebSocketDisconnect:
            pass
        finally:
            closed.cancel()
            svc.hub.unsubscribe(session_id, queue)

    return ApiMiddleware(
        app,
        limiter=lambda: limiter,
        keyring=lambda: keyring,
        hosts=lambda: hosts,
        verbose=lambda: settings.diagnostic_verbose,
    )
