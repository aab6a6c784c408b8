"""LLM providers behind one interface, and the fallback chain (see :mod:`.chain`)."""

from agent.providers.base import (
    AssistantMessage,
    ChatMessage,
    LLMProvider,
    LLMReply,
    SystemMessage,
    ToolCall,
    ToolDef,
    ToolMessage,
    UserMessage,
)
from agent.providers.chain import AllProvidersFailed, ProviderChain, build_chain, parse_chain

__all__ = [
    "AllProvidersFailed",
    "AssistantMessage",
    "ChatMessage",
    "LLMProvider",
    "LLMReply",
    "ProviderChain",
    "SystemMessage",
    "ToolCall",
    "ToolDef",
    "ToolMessage",
    "UserMessage",
    "build_chain",
    "parse_chain",
]
