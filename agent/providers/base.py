"""The one provider interface: neutral chat messages in, a :class:`LLMReply` out.

Messages are plain dicts (no LangChain types) typed as :data:`ChatMessage`, a neutral shape
each provider converts to its SDK's:

* :class:`SystemMessage` / :class:`UserMessage` — ``{"role", "content"}``
* :class:`AssistantMessage` — ``{"role": "assistant", "content", "tool_calls"?: [ToolCall]}``
* :class:`ToolMessage` — ``{"role": "tool", "tool_call_id", "name", "content", "is_error"}``

Every message may carry an ``id`` (the graph's message reducer replaces by id) and the
``turn`` (question of the session) it belongs to; providers ignore both.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, NotRequired, Protocol, TypedDict, runtime_checkable

from agent.models import JsonObject, ToolArguments
from guilde_core.config import ServiceType

__all__ = [
    "AssistantMessage",
    "ChatMessage",
    "LLMCall",
    "LLMProvider",
    "LLMReply",
    "SystemMessage",
    "ToolCall",
    "ToolDef",
    "ToolMessage",
    "UserMessage",
]


@dataclass(frozen=True)
class ToolDef:
    """A tool offered to the model."""

    name: str
    description: str
    input_schema: JsonObject


class ToolCall(TypedDict):
    """A tool call the model asked for (kept in messages and the graph state).

    ``arguments`` is ``{"__invalid_arguments__": raw}`` when the model sent arguments that
    are not a JSON object.
    """

    id: str
    name: str
    arguments: ToolArguments


class _Stamped(TypedDict, total=False):
    id: str
    turn: int


class SystemMessage(_Stamped):
    role: Literal["system"]
    content: str


class UserMessage(_Stamped):
    role: Literal["user"]
    content: str


class AssistantMessage(_Stamped):
    role: Literal["assistant"]
    content: str
    tool_calls: NotRequired[list[ToolCall]]


class ToolMessage(_Stamped):
    role: Literal["tool"]
    tool_call_id: str
    name: str
    content: str
    is_error: bool


ChatMessage = SystemMessage | UserMessage | AssistantMessage | ToolMessage


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
        messages: list[ChatMessage],
        tools: list[ToolDef],
        *,
        timeout: float | None,  # noqa: ASYNC109 - passed to the SDK per attempt
        max_tokens: int,
    ) -> LLMReply:
        """One attempt; raises the SDK's exception on failure (classified by the chain)."""
        ...


class LLMCall(Protocol):
    """How the chain reaches the resilience layer: ``await call(service, attempt, …)``
    where ``attempt(timeout)`` is one provider call (``guilde_core.resilience.resilient_call``)."""

    def __call__(
        self,
        service: str,
        fn: Callable[[float | None], Awaitable[LLMReply]],
        /,
        *,
        service_type: ServiceType,
    ) -> Awaitable[LLMReply]: ...
