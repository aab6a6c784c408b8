"""OpenAI (and OpenAI-compatible: OpenRouter, Ollama, vLLM) through the ``openai`` SDK."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from agent.models import ToolArguments
from agent.providers.base import ChatMessage, LLMReply, ToolCall, ToolDef

if TYPE_CHECKING:
    from openai.types.chat import (
        ChatCompletionAssistantMessageParam,
        ChatCompletionFunctionToolParam,
        ChatCompletionMessageParam,
    )

__all__ = ["OpenAIProvider", "to_openai_messages"]

OPENROUTER_BASE_URL = "https://openrouter.ai/api/v1"


def to_openai_messages(messages: list[ChatMessage]) -> list[ChatCompletionMessageParam]:
    """Neutral messages → Chat Completions messages."""
    out: list[ChatCompletionMessageParam] = []
    for m in messages:
        if m["role"] == "assistant":
            msg: ChatCompletionAssistantMessageParam = {
                "role": "assistant",
                "content": m.get("content") or "",
            }
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
        elif m["role"] == "tool":
            content = m.get("content") or ""
            if m.get("is_error"):
                content = f"ERROR: {content}"
            out.append({"role": "tool", "tool_call_id": m["tool_call_id"], "content": content})
        elif m["role"] == "system":
            out.append({"role": "system", "content": m.get("content") or ""})
        else:
            out.append({"role": "user", "content": m.get("content") or ""})
    return out


def _parse_arguments(raw: str | None) -> ToolArguments:
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
        messages: list[ChatMessage],
        tools: list[ToolDef],
        *,
        timeout: float | None,  # noqa: ASYNC109 - passed to the SDK per attempt
        max_tokens: int,
    ) -> LLMReply:
        from openai import omit
        from openai.types.chat import ChatCompletionMessageFunctionToolCall

        offered: list[ChatCompletionFunctionToolParam] = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description[:1000],
                    "parameters": dict(t.input_schema) or {"type": "object", "properties": {}},
                },
            }
            for t in tools
        ]
        response = await self._client.chat.completions.create(
            model=self.model,
            messages=to_openai_messages(messages),
            max_tokens=max_tokens,
            timeout=timeout,
            tools=offered or omit,
        )
        choice = response.choices[0]
        message = choice.message
        calls = [
            ToolCall(
                id=c.id or f"call_{i}",
                name=c.function.name,
                arguments=_parse_arguments(c.function.arguments),
            )
            for i, c in enumerate(message.tool_calls or [])
            if isinstance(c, ChatCompletionMessageFunctionToolCall)
        ]
        usage = response.usage
        return LLMReply(
            text=message.content or "",
            tool_calls=calls,
            input_tokens=usage.prompt_tokens if usage else 0,
            output_tokens=usage.completion_tokens if usage else 0,
            provider=self.name,
            model=self.model,
            stop_reason=choice.finish_reason,
        )

    async def aclose(self) -> None:
        await self._client.close()
