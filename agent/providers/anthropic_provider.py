"""Anthropic through the ``anthropic`` SDK (Messages API with tool use)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import TypeAdapter, ValidationError

from agent.models import ToolArguments
from agent.providers.base import ChatMessage, LLMReply, ToolCall, ToolDef

if TYPE_CHECKING:
    from anthropic.types import ContentBlockParam, MessageParam, ToolParam

__all__ = ["AnthropicProvider", "to_anthropic_messages"]

_ARGUMENTS: TypeAdapter[ToolArguments] = TypeAdapter(ToolArguments)


def _json_object(value: object) -> ToolArguments:
    """A ``tool_use`` block's input as tool arguments (``{}`` when it is not a JSON object)."""
    try:
        return _ARGUMENTS.validate_python(value)
    except ValidationError:
        return {}


def to_anthropic_messages(messages: list[ChatMessage]) -> tuple[str, list[MessageParam]]:
    """Neutral messages → (system prompt, Messages API messages).

    Consecutive tool results become one user turn of ``tool_result`` blocks, as the API
    requires; consecutive same-role turns are merged.
    """
    from anthropic.types import AssistantMessageParam, ToolUseBlockParam, UserMessageParam

    system_parts: list[str] = []
    turns: list[tuple[Literal["user", "assistant"], list[ContentBlockParam]]] = []

    def push(role: Literal["user", "assistant"], blocks: list[ContentBlockParam]) -> None:
        if turns and turns[-1][0] == role:
            turns[-1][1].extend(blocks)
        else:
            turns.append((role, list(blocks)))

    for m in messages:
        if m["role"] == "system":
            system_parts.append(m.get("content") or "")
        elif m["role"] == "assistant":
            blocks: list[ContentBlockParam] = []
            if m.get("content"):
                blocks.append({"type": "text", "text": m["content"]})
            for c in m.get("tool_calls") or []:
                blocks.append(
                    ToolUseBlockParam(
                        type="tool_use", id=c["id"], name=c["name"], input=dict(c["arguments"])
                    )
                )
            if not blocks:
                blocks.append({"type": "text", "text": "(no answer)"})
            push("assistant", blocks)
        elif m["role"] == "tool":
            push(
                "user",
                [
                    {
                        "type": "tool_result",
                        "tool_use_id": m["tool_call_id"],
                        "content": m.get("content") or "",
                        "is_error": bool(m.get("is_error")),
                    }
                ],
            )
        else:
            push("user", [{"type": "text", "text": m.get("content") or ""}])
    out: list[MessageParam] = [
        UserMessageParam(role="user", content=blocks)
        if role == "user"
        else AssistantMessageParam(role="assistant", content=blocks)
        for role, blocks in turns
    ]
    return "\n\n".join(p for p in system_parts if p), out


class AnthropicProvider:
    """Messages API with tool use; the SDK's own retries are off (``max_retries=0``)."""

    def __init__(self, model: str, *, api_key: str | None, base_url: str | None = None) -> None:
        import anthropic

        self.name = "anthropic"
        self.model = model
        self.base_url = base_url
        self._client = anthropic.AsyncAnthropic(
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
        from anthropic import omit
        from anthropic.types import TextBlock, ToolUseBlock

        system, converted = to_anthropic_messages(messages)
        offered: list[ToolParam] = [
            {
                "name": t.name,
                "description": t.description[:1000],
                "input_schema": dict(t.input_schema) or {"type": "object", "properties": {}},
            }
            for t in tools
        ]
        response = await self._client.messages.create(
            model=self.model,
            messages=converted,
            max_tokens=max_tokens,
            timeout=timeout,
            system=system or omit,
            tools=offered or omit,
        )
        texts: list[str] = []
        calls: list[ToolCall] = []
        for block in response.content or []:
            if isinstance(block, TextBlock):
                texts.append(block.text)
            elif isinstance(block, ToolUseBlock):
                args = _json_object(block.input)
                calls.append(ToolCall(id=block.id, name=block.name, arguments=args))
        usage = response.usage
        return LLMReply(
            text="\n".join(texts),
            tool_calls=calls,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            provider=self.name,
            model=self.model,
            stop_reason=response.stop_reason,
        )

    async def aclose(self) -> None:
        await self._client.close()
