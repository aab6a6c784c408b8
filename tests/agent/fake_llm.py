"""A scripted OpenAI- and Anthropic-compatible HTTP server for the agent's LLM tests.

Stand-in for the tools engineer's ``tools/fakellm`` (not in the tree when these tests were
written): a real HTTP server on loopback that the real ``openai`` and ``anthropic`` SDKs
talk to by ``base_url``. It speaks ``POST /v1/chat/completions`` and ``POST /v1/messages``,
answers from a script (tool calls or a final text, one step per request), injects faults
on demand (status with ``Retry-After``, delay) and records every request body and header.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

__all__ = ["FakeLLM", "Fault", "Step"]


@dataclass
class Step:
    """One scripted model turn: tool calls, or a final text answer."""

    text: str = ""
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    input_tokens: int = 100
    output_tokens: int = 20


@dataclass
class Fault:
    """Answer the next ``times`` requests with ``status`` (or after ``delay`` seconds)."""

    status: int | None = None
    retry_after: str | None = None
    delay: float = 0.0
    times: int = 1
    body: dict[str, Any] | None = None


@dataclass
class Recorded:
    api: str
    body: dict[str, Any]
    headers: dict[str, str]


class FakeLLM:
    """State and ASGI app of the fake; ``app`` is served with ``ServerThread``."""

    def __init__(self) -> None:
        self.script: list[Step] = []
        self.faults: list[Fault] = []
        self.requests: list[Recorded] = []
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._openai, methods=["POST"]),
                Route("/v1/messages", self._anthropic, methods=["POST"]),
            ]
        )

    def prompt_text(self) -> str:
        """Every request body received, as one string (for leak checks)."""
        return "\n".join(json.dumps(r.body) for r in self.requests)

    async def _fault(self, api: str) -> Response | None:
        if not self.faults:
            return None
        fault = self.faults[0]
        fault.times -= 1
        if fault.times <= 0:
            self.faults.pop(0)
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.status is None:
            # a hang: the client has given up by now; the late answer consumes no step
            return JSONResponse({"error": {"message": "late"}}, status_code=504)
        headers = {"retry-after": fault.retry_after} if fault.retry_after else {}
        if api == "openai":
            body = fault.body or {
                "error": {"message": f"fake error {fault.status}", "type": "fake", "code": None}
            }
        else:
            kind = {
                401: "authentication_error",
                429: "rate_limit_error",
                529: "overloaded_error",
            }.get(fault.status, "api_error")
            body = fault.body or {
                "type": "error",
                "error": {"type": kind, "message": f"fake error {fault.status}"},
            }
        return JSONResponse(body, status_code=fault.status, headers=headers)

    async def _record(self, api: str, request: Request) -> dict[str, Any]:
        body: dict[str, Any] = await request.json()
        self.requests.append(Recorded(api, body, dict(request.headers)))
        return body

    def _next_step(self) -> Step:
        """The next scripted turn (a faulted request consumes none)."""
        return self.script.pop(0) if self.script else Step(text="(no script)")

    async def _openai(self, request: Request) -> Response:
        body = await self._record("openai", request)
        fault = await self._fault("openai")
        if fault is not None:
            return fault
        step = self._next_step()
        message: dict[str, Any] = {"role": "assistant", "content": step.text or None}
        if step.tool_calls:
            message["tool_calls"] = [
                {
                    "id": f"call_{uuid.uuid4().hex[:8]}",
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(args)},
                }
                for name, args in step.tool_calls
            ]
        return JSONResponse(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": 0,
                "model": body.get("model", "fake"),
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "finish_reason": "tool_calls" if step.tool_calls else "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": step.input_tokens,
                    "completion_tokens": step.output_tokens,
                    "total_tokens": step.input_tokens + step.output_tokens,
                },
            }
        )

    async def _anthropic(self, request: Request) -> Response:
        body = await self._record("anthropic", request)
        fault = await self._fault("anthropic")
        if fault is not None:
            return fault
        step = self._next_step()
        content: list[dict[str, Any]] = []
        if step.text:
            content.append({"type": "text", "text": step.text})
        for name, args in step.tool_calls:
            content.append(
                {
                    "type": "tool_use",
                    "id": f"toolu_{uuid.uuid4().hex[:8]}",
                    "name": name,
                    "input": args,
                }
            )
        return JSONResponse(
            {
                "id": "msg_fake",
                "type": "message",
                "role": "assistant",
                "model": body.get("model", "fake"),
                "content": content,
                "stop_reason": "tool_use" if step.tool_calls else "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": step.input_tokens, "output_tokens": step.output_tokens},
            }
        )
