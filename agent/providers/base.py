"""The one provider interface: plain-dict messages in, a :class:`LLMReply` out.

Messages are plain dicts (no LangChain types), in a neutral shape each provider converts:

* ``{"role": "system" | "user", "content": str}``
* ``{"role": "assistant", "content": str, "tool_calls": [{"id", "name", "arguments"}]}``
* ``{"role": "tool", "tool_call_id": str, "name": str, "content": str, "is_error": bool}``
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = ["LLMProvider", "LLMReply", "ToolCall", "ToolDef"]


@dataclass(frozen=True)
class ToolDef:
    """A tool offered to the model."""

    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass(frozen=True)
class ToolCall:
    """A tool call the model asked for."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass
class LLMReply:
    """What one model call returned."""

    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    provider: str = ""
    model: str = ""
    stop_reason: str | None = None

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@runtime_checkable
class LLMProvider(Protocol):
    """A chat model reachable through a direct SDK (one attempt per :meth:`complete`)."""

    name: str
    """Provider (and breaker) name: openai, anthropic, openrouter."""
    model: str

    async def complete(
        self,
        messages: list[dict[str, Any]],
        tools: list[ToolDef],
        *,
        timeout: float | None,  # noqa: ASYNC109 - passed to the SDK per attempt
        max_tokens: int,
    ) -> LLMReply:
        """One attempt; raises the SDK's exception on failure (classified by the chain)."""
        ...
