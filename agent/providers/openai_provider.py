"""OpenAI (and OpenAI-compatible: OpenRouter, Ollama, vLLM) through the ``openai`` SDK."""

from __future__ import annotations

import json
from typing import Any

from agent.providers.base import LLMReply, ToolCall, ToolDef

__all__ = ["OpenAIProvider", "to_openai_messages"]

OPENROUTER_BASE_URL = "https://openrouter.ai/api/v1"


def to_openai_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Neutral plain-dict messages → Chat Completions messages."""
    out: list[dict[str, Any]] = []
    for m in messages:
        role = m["role"]
        if role == "assistant":
            msg: dict[str, Any] = {"role": "assistant", "content": m.get("content") or ""}
            calls = m.get("tool_calls") or []
            if calls:
                msg["tool_calls"] = [
                    {
                        "id": c["id"],
                        "type": "function",
                        "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])},
                    }
                    for c in calls
                ]
            out.append(msg)
        elif role == "tool":
            content = m.get("content") or ""
            if m.get("is_error"):
                content = f"ERROR: {content}"
            out.append({"role": "tool", "tool_call_id": m["tool_call_id"], "content": content})
        else:
            out.append({"role": role, "content": m.get("content") or ""})
    return out


def _parse_arguments(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {"__invalid_arguments__": raw[:500]}
    return value if isinstance(value, dict) else {"__invalid_arguments__": raw[:500]}


class OpenAIProvider:
    """Chat Completions with tool calling; the SDK's own retries are off (``max_retries=0``)."""

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None,
        base_url: str | None = None,
        name: str = "openai",
    ) -> None:
        import openai

        self.name = name
        self.model = model
        self.base_url = base_url
        self._client = openai.AsyncOpenAI(
            api_key=api_key or "missing-key", base_url=base_url, max_retries=0
        )

    async def complete(
        self,
        messages: list[dict[str, Any]],
        tools: list[ToolDef],
        *,
        timeout: float | None,  # noqa: ASYNC109 - passed to the SDK per attempt
        max_tokens: int,
    ) -> LLMReply:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": to_openai_messages(messages),
            "max_tokens": max_tokens,
            "timeout": timeout,
        }
        if tools:
            kwargs["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description[:1000],
                        "parameters": t.input_schema or {"type": "object", "properties": {}},
                    },
                }
                for t in tools
            ]
        response: Any = await self._client.chat.completions.create(**kwargs)
        choice = response.choices[0]
        message = choice.message
        calls = [
            ToolCall(
                id=c.id or f"call_{i}",
                name=c.function.name,
                arguments=_parse_arguments(c.function.arguments),
            )
            for i, c in enumerate(message.tool_calls or [])
            if getattr(c, "function", None) is not None
        ]
        usage = response.usage
        return LLMReply(
            text=message.content or "",
            tool_calls=calls,
            input_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            output_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            provider=self.name,
            model=self.model,
            stop_reason=choice.finish_reason,
        )

    async def aclose(self) -> None:
        await self._client.close()
