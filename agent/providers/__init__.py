"""LLM providers behind one interface, and the fallback chain (see :mod:`.chain`)."""

from agent.providers.base import LLMProvider, LLMReply, ToolCall, ToolDef
from agent.providers.chain import AllProvidersFailed, ProviderChain, build_chain, parse_chain

__all__ = [
    "AllProvidersFailed",
    "LLMProvider",
    "LLMReply",
    "ProviderChain",
    "ToolCall",
    "ToolDef",
    "build_chain",
    "parse_chain",
]
