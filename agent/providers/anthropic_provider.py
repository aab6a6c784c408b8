"""Anthropic through the ``anthropic`` SDK (Messages API with tool use)."""

from __future__ import annotations

from typing import Any

from agent.providers.base import LLMReply, ToolCall, ToolDef

__all__ = ["AnthropicProvider", "to_anthropic_messages"]


def to_anthropic_messages(messages: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Neutral plain-dict messages → (system prompt, Messages API messages).

    Consecutive tool results become one user turn of ``tool_result`` blocks, as the API
    requires; consecutive same-role turns are merged.
    """
    system_parts: list[str] = []
    out: list[dict[str, Any]] = []

    def push(role: str, blocks: list[dict[str, Any]]) -> None:
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": list(blocks)})

    for m in messages:
        role = m["role"]
        if role == "system":
            system_parts.append(m.get("content") or "")
        elif role == "assistant":
            blocks: list[dict[str, Any]] = []
            if m.get("content"):
                blocks.append({"type": "text", "text": m["content"]})
            for c in m.get("tool_calls") or []:
                blocks.append(
                    {"type": "tool_use", "id": c["id"], "name": c["name"], "input": c["arguments"]}
                )
            if not blocks:
                blocks.append({"type": "text", "text": "(no answer)"})
            push("assistant", blocks)
        elif role == "tool":
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
        messages: list[dict[str, Any]],
        tools: list[ToolDef],
        *,
        timeout: float | None,  # noqa: ASYNC109 - passed to the SDK per attempt
        max_tokens: int,
    ) -> LLMReply:
        system, converted = to_anthropic_messages(messages)
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": converted,
            "max_tokens": max_tokens,
            "timeout": timeout,
        }
        if system:
            kwargs["system"] = system
        if tools:
            kwargs["tools"] = [
                {
                    "name": t.name,
                    "description": t.description[:1000],
                    "input_schema": t.input_schema or {"type": "object", "properties": {}},
                }
                for t in tools
            ]
        response: Any = await self._client.messages.create(**kwargs)
        texts: list[str] = []
        calls: list[ToolCall] = []
        for block in response.content or []:
            kind = getattr(block, "type", None)
            if kind == "text":
                texts.append(block.text)
            elif kind == "tool_use":
                args = block.input if isinstance(block.input, dict) else {}
                calls.append(ToolCall(id=block.id, name=block.name, arguments=args))
        usage = response.usage
        return LLMReply(
            text="\n".join(texts),
            tool_calls=calls,
            input_tokens=int(getattr(usage, "input_tokens", 0) or 0),
            output_tokens=int(getattr(usage, "output_tokens", 0) or 0),
            provider=self.name,
            model=self.model,
            stop_reason=getattr(response, "stop_reason", None),
        )

    async def aclose(self) -> None:
        await self._client.close()
