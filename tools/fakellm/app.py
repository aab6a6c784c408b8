"""The fake OpenAI- and Anthropic-compatible provider server (one ASGI app).

Routes
* ``POST /v1/chat/completions`` — OpenAI chat completions (tool calls, SSE streaming with
  ``stream_options.include_usage``); use ``base_url=<url>/v1`` with the ``openai`` SDK.
* ``POST /v1/messages`` — Anthropic messages (tool use, the streaming event protocol); use
  ``base_url=<url>`` with the ``anthropic`` SDK.
* ``GET /v1/models`` — OpenAI's model list, or Anthropic's when the request carries an
  ``anthropic-version`` header.
* ``/_control/…`` — runtime control: ``GET stats``, ``GET requests``, ``GET|POST|DELETE
  faults`` (``DELETE faults/{id}``), ``GET|POST script``, ``POST reset``.
* ``GET /healthz``.

Answers come from a :class:`~tools.fakellm.script.Script` (steps by turn, rules by regex,
default echo); faults from a :class:`~tools.fakellm.faults.FaultBook`. A request that gets a
fault consumes no script step, so a scripted conversation resumes where it was after a retry.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from guilde_core.redaction import redact
from tools.fakellm.faults import ENDPOINTS, FaultBook, FaultSpec
from tools.fakellm.script import Script, ScriptError, Step, ToolCall, load_script

__all__ = ["FakeLLM", "create_app"]

MAX_RECORDED = 500
HANG_DEFAULT_S = 30.0
_DROPPED_STEP = Step(text="this answer is cut short by an injected connection drop")
_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    529: "overloaded_error",
}


class _DropResponse(Response):
    """Send the headers and part of the body, then return without finishing (the server
    closes the connection: the client sees a body cut short)."""

    def __init__(self, chunks: list[bytes], media_type: str, declared_length: int | None) -> None:
        super().__init__(status_code=200, media_type=media_type)
        self.chunks = chunks
        self.declared_length = declared_length

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", str(self.media_type).encode())]
        if self.declared_length is not None:
            headers.append((b"content-length", str(self.declared_length).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for chunk in self.chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await asyncio.sleep(0.01)
        # returning here without the final body message makes the server drop the connection


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for part in content:
            if isinstance(part, dict):
                if isinstance(part.get("text"), str):
                    parts.append(part["text"])
                elif "content" in part:
                    parts.append(_text_of(part["content"]))
        return "\n".join(parts)
    return ""


def _last_message_text(body: dict[str, Any]) -> str:
    messages = body.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[-1], dict):
        return _text_of(messages[-1].get("content"))
    return ""


def _pieces(text: str, size: int = 8) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _sse(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    payload = data if isinstance(data, str) else json.dumps(data)
    return f"{head}data: {payload}\n\n".encode()


class FakeLLM:
    """State and ASGI app of the fake providers; serve :attr:`app` (e.g. with
    ``tools.harness.ServerThread``) and steer it through its methods or ``/_control``."""

    def __init__(
        self,
        script: Script | dict[str, Any] | list[Any] | str | Path | None = None,
        *,
        api_key: str | None = None,
        seed: int | None = None,
        stream_chunk_delay: float = 0.0,
    ) -> None:
        self._lock = threading.Lock()
        self.api_key = api_key
        self.stream_chunk_delay = stream_chunk_delay
        self.faults = FaultBook(seed)
        self.counts: dict[str, int] = dict.fromkeys(ENDPOINTS, 0)
        self.requests: deque[dict[str, Any]] = deque(maxlen=MAX_RECORDED)
        self.script = Script()
        self._script_source: Script = Script()
        self._rule_uses: dict[int, int] = {}
        self.set_script(script)
        self.app = create_app(self)

    # ------------------------------------------------------------------ control
    def set_script(self, script: Script | dict[str, Any] | list[Any] | str | Path | None) -> None:
        """Replace the script (a :class:`Script`, mapping, list of steps, or file path)."""
        if script is None:
            parsed = Script()
        elif isinstance(script, Script):
            parsed = script
        elif isinstance(script, str | Path):
            parsed = load_script(script)
        else:
            parsed = Script.parse(script)
        with self._lock:
            self._script_source = parsed
            self.script = parsed.model_copy(deep=True)
            self._rule_uses = {}

    def inject(self, kind: str, **options: Any) -> FaultSpec:
        """Add a fault (see :mod:`tools.fakellm.faults`); return it (with its ``id``)."""
        return self.faults.add(FaultSpec.model_validate({"kind": kind, **options}))

    def clear_faults(self, fault_id: str | None = None) -> int:
        return self.faults.clear(fault_id)

    def reset(self) -> None:
        """Clear faults, counters and recorded requests; restart the script."""
        self.faults.reset()
        with self._lock:
            self.counts = dict.fromkeys(ENDPOINTS, 0)
            self.requests.clear()
            self.script = self._script_source.model_copy(deep=True)
            self._rule_uses = {}

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "counts": dict(self.counts),
                "total": sum(self.counts.values()),
                "faults_fired": dict(self.faults.fired),
                "script_steps_left": len(self.script.steps),
            }

    def prompt_text(self) -> str:
        """Every recorded request body, as one string (for leak checks)."""
        with self._lock:
            return "\n".join(json.dumps(r["body"]) for r in self.requests)

    # ------------------------------------------------------------------ internals
    def _record(self, endpoint: str, request: Request, body: dict[str, Any]) -> None:
        with self._lock:
            self.counts[endpoint] = self.counts.get(endpoint, 0) + 1
            self.requests.append(
                {
                    "endpoint": endpoint,
                    "ts": time.time(),
                    "body": body,
                    "headers": redact(dict(request.headers)),
                }
            )

    def next_step(self, body: dict[str, Any]) -> Step:
        """The turn for a request: a matching rule, else the next step, else the default."""
        last = _last_message_text(body)
        with self._lock:
            for index, rule in enumerate(self.script.rules):
                used = self._rule_uses.get(index, 0)
                if rule.times is not None and used >= rule.times:
                    continue
                if re.search(rule.match, last):
                    self._rule_uses[index] = used + 1
                    return Step(text=rule.text, tool_calls=rule.tool_calls, usage=rule.usage)
            if self.script.steps:
                return self.script.steps.pop(0)
            default = self.script.default
        return Step(text=f"echo: {last}" if default == "echo" else default)

    def _key_ok(self, request: Request) -> bool:
        if self.api_key is None:
            return True
        given = request.headers.get("x-api-key") or request.headers.get(
            "authorization", ""
        ).removeprefix("Bearer ")
        return given == self.api_key


# ---------------------------------------------------------------------- responses
def _error_response(api: str, status: int, retry_after: str | None, message: str) -> Response:
    headers = {"retry-after": retry_after} if retry_after else {}
    if api == "anthropic":
        kind = _ANTHROPIC_ERROR_TYPES.get(status, "api_error")
        body: dict[str, Any] = {
            "type": "error",
            "error": {"type": kind, "message": message},
            "request_id": f"req_{uuid.uuid4().hex[:12]}",
        }
    else:
        code = {401: "invalid_api_key", 429: "rate_limit_exceeded"}.get(status)
        body = {"error": {"message": message, "type": "fake_error", "param": None, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


async def _hang(request: Request, limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if await request.is_disconnected():
            return
        await asyncio.sleep(0.05)


async def _apply_fault(
    fake: FakeLLM, api: str, request: Request, stream: bool, endpoint: str | None = None
) -> tuple[Response | None, bool]:
    """The fault's response (or ``None``) and whether the request must drop mid-body."""
    endpoint = endpoint or api
    spec = fake.faults.pick(endpoint)
    if spec is None:
        return None, False
    status = spec.http_status
    if status is not None:
        retry = spec.retry_after if spec.retry_after is not None else None
        if spec.kind == "rate_limit" and retry is None:
            retry = "1"
        return _error_response(api, status, retry, f"injected fault {spec.kind} ({status})"), False
    if spec.kind == "slow":
        await asyncio.sleep(spec.delay if spec.delay is not None else 1.0)
        return None, False
    if spec.kind == "hang":
        await _hang(request, spec.delay if spec.delay is not None else HANG_DEFAULT_S)
        return _error_response(api, 504, None, "hang ended"), False
    if spec.kind == "malformed":
        if stream:
            media = "text/event-stream"
            return Response(b"data: {not json at all\n\n", media_type=media), False
        return Response(b'{"id": "broken", "choices": [', media_type="application/json"), False
    return None, True  # drop


def _openai_message(step: Step, model: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": step.text or None}
    if step.tool_calls:
        message["tool_calls"] = [
            {
                "id": call.id or f"call_{uuid.uuid4().hex[:12]}",
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
            }
            for call in step.tool_calls
        ]
    usage = step.usage
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "tool_calls" if step.tool_calls else "stop",
            }
        ],
        "usage": {
            "prompt_tokens": usage.input_tokens,
            "completion_tokens": usage.output_tokens,
            "total_tokens": usage.input_tokens + usage.output_tokens,
        },
    }


def _openai_chunks(step: Step, model: str, include_usage: bool) -> list[bytes]:
    cid = f"chatcmpl-{uuid.uuid4().hex[:12]}"
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return _sse(
            {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
        )

    out = [chunk({"role": "assistant", "content": ""})]
    if step.text:
        out += [chunk({"content": piece}) for piece in _pieces(step.text)]
    for index, call in enumerate(step.tool_calls):
        head = {
            "index": index,
            "id": call.id or f"call_{uuid.uuid4().hex[:12]}",
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        out.append(chunk({"tool_calls": [head]}))
        for piece in _pieces(json.dumps(call.arguments)):
            out.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
    out.append(chunk({}, "tool_calls" if step.tool_calls else "stop"))
    if include_usage:
        usage = step.usage
        out.append(
            _sse(
                {
                    "id": cid,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [],
                    "usage": {
                        "prompt_tokens": usage.input_tokens,
                        "completion_tokens": usage.output_tokens,
                        "total_tokens": usage.input_tokens + usage.output_tokens,
                    },
                }
            )
        )
    out.append(_sse("[DONE]"))
    return out


def _anthropic_blocks(step: Step) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if step.text:
        blocks.append({"type": "text", "text": step.text})
    blocks += [_tool_use(call) for call in step.tool_calls]
    return blocks


def _tool_use(call: ToolCall) -> dict[str, Any]:
    return {
        "type": "tool_use",
        "id": call.id or f"toolu_{uuid.uuid4().hex[:12]}",
        "name": call.name,
        "input": call.arguments,
    }


def _anthropic_message(step: Step, model: str) -> dict[str, Any]:
    return {
        "id": f"msg_{uuid.uuid4().hex[:12]}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": _anthropic_blocks(step),
        "stop_reason": "tool_use" if step.tool_calls else "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": step.usage.input_tokens,
            "output_tokens": step.usage.output_tokens,
        },
    }


def _anthropic_events(step: Step, model: str) -> list[bytes]:
    message = _anthropic_message(step, model)
    start = {**message, "content": [], "stop_reason": None}
    start["usage"] = {"input_tokens": step.usage.input_tokens, "output_tokens": 1}
    out = [
        _sse({"type": "message_start", "message": start}, "message_start"),
        _sse({"type": "ping"}, "ping"),
    ]
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            first: dict[str, Any] = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": p} for p in _pieces(block["text"])]
        else:
            first = {**block, "input": {}}
            deltas = [
                {"type": "input_json_delta", "partial_json": p}
                for p in _pieces(json.dumps(block["input"]))
            ]
        event = {"type": "content_block_start", "index": index, "content_block": first}
        out.append(_sse(event, "content_block_start"))
        for delta in deltas:
            event = {"type": "content_block_delta", "index": index, "delta": delta}
            out.append(_sse(event, "content_block_delta"))
        out.append(_sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
    out.append(
        _sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                "usage": {"output_tokens": step.usage.output_tokens},
            },
            "message_delta",
        )
    )
    out.append(_sse({"type": "message_stop"}, "message_stop"))
    return out


def _streaming(chunks: list[bytes], delay: float) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk
            if delay:
                await asyncio.sleep(delay)

    return StreamingResponse(body(), media_type="text/event-stream")


# ---------------------------------------------------------------------- app
def create_app(fake: FakeLLM) -> Starlette:
    """The Starlette app serving ``fake``."""

    async def read_body(request: Request) -> dict[str, Any] | Response:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return JSONResponse({"error": {"message": "body is not JSON"}}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"error": {"message": "body must be an object"}}, 400)
        return body

    async def completion(request: Request, api: str) -> Response:
        body = await read_body(request)
        if isinstance(body, Response):
            return body
        fake._record(api, request, body)
        if not fake._key_ok(request):
            return _error_response(api, 401, None, "invalid x-api-key / bearer token")
        stream = bool(body.get("stream"))
        fault, drop = await _apply_fault(fake, api, request, stream)
        if fault is not None:
            return fault
        # a dropped answer consumes no script step either
        step = _DROPPED_STEP if drop else fake.next_step(body)
        model = str(body.get("model") or "fake-model")
        if api == "openai":
            options = body.get("stream_options") or {}
            include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
            if stream:
                chunks = _openai_chunks(step, model, include_usage)
            else:
                payload = _openai_message(step, model)
        elif stream:
            chunks = _anthropic_events(step, model)
        else:
            payload = _anthropic_message(step, model)
        if stream:
            if drop:
                return _DropResponse(chunks[: max(1, len(chunks) // 2)], "text/event-stream", None)
            return _streaming(chunks, fake.stream_chunk_delay)
        raw = json.dumps(payload).encode()
        if drop:
            return _DropResponse([raw[: len(raw) // 2]], "application/json", len(raw))
        return JSONResponse(payload)

    async def openai_chat(request: Request) -> Response:
        return await completion(request, "openai")

    async def anthropic_messages(request: Request) -> Response:
        return await completion(request, "anthropic")

    async def models(request: Request) -> Response:
        anthropic = "anthropic-version" in request.headers
        fake._record("models", request, {})
        api = "anthropic" if anthropic else "openai"
        fault, drop = await _apply_fault(fake, api, request, False, "models")
        if fault is not None:
            return fault
        names = ["fake-gpt", "fake-claude"]
        if anthropic:
            data: list[dict[str, Any]] = [
                {
                    "type": "model",
                    "id": n,
                    "display_name": n,
                    "created_at": "2026-01-01T00:00:00Z",
                }
                for n in names
            ]
            payload: dict[str, Any] = {
                "data": data,
                "has_more": False,
                "first_id": names[0],
                "last_id": names[-1],
            }
        else:
            data = [
                {"id": n, "object": "model", "created": 0, "owned_by": "fakellm"} for n in names
            ]
            payload = {"object": "list", "data": data}
        if drop:
            raw = json.dumps(payload).encode()
            return _DropResponse([raw[:10]], "application/json", len(raw))
        return JSONResponse(payload)

    async def control_stats(request: Request) -> Response:
        return JSONResponse(fake.stats())

    async def control_requests(request: Request) -> Response:
        endpoint = request.query_params.get("endpoint")
        with fake._lock:
            rows = [r for r in fake.requests if endpoint is None or r["endpoint"] == endpoint]
        return JSONResponse({"requests": rows})

    async def control_faults(request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse({"faults": fake.faults.list()})
        if request.method == "DELETE":
            return JSONResponse({"cleared": fake.clear_faults()})
        body = await read_body(request)
        if isinstance(body, Response):
            return body
        items = body.get("faults", [body])
        if not isinstance(items, list):
            return _problem(422, "faults must be a list")
        try:
            specs = [FaultSpec.model_validate(item) for item in items]
        except ValidationError as exc:
            return _problem(422, f"invalid fault: {exc.errors(include_url=False)}")
        for spec in specs:
            fake.faults.add(spec)
        return JSONResponse({"faults": [s.model_dump() for s in specs]}, status_code=201)

    async def control_fault_delete(request: Request) -> Response:
        removed = fake.clear_faults(request.path_params["fault_id"])
        if not removed:
            return _problem(404, "no such fault")
        return JSONResponse({"cleared": removed})

    async def control_script(request: Request) -> Response:
        if request.method == "POST":
            body = await read_body(request)
            if isinstance(body, Response):
                return body
            try:
                fake.set_script(Script.parse(body))
            except ScriptError as exc:
                return _problem(422, str(exc))
        with fake._lock:
            return JSONResponse(fake.script.model_dump())

    async def control_reset(request: Request) -> Response:
        fake.reset()
        return JSONResponse(fake.stats())

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "healthy"})

    return Starlette(
        routes=[
            Route("/v1/chat/completions", openai_chat, methods=["POST"]),
            Route("/v1/messages", anthropic_messages, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/_control/stats", control_stats, methods=["GET"]),
            Route("/_control/requests", control_requests, methods=["GET"]),
            Route("/_control/faults", control_faults, methods=["GET", "POST", "DELETE"]),
            Route("/_control/faults/{fault_id}", control_fault_delete, methods=["DELETE"]),
            Route("/_control/script", control_script, methods=["GET", "POST"]),
            Route("/_control/reset", control_reset, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )


def _problem(status: int, detail: str) -> Response:
    return JSONResponse(
        {"type": "about:blank", "title": "Bad control request", "status": status, "detail": detail},
        status_code=status,
        media_type="application/problem+json",
    )
