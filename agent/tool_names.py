"""The MCP tools the agent calls by name: THE table.

Every tool name the agent (and the evals' recording and replay server) relies on is here and
nowhere else, so a renamed tool on dev3000's aggregate is one edit:

* :data:`GATHER`: role → the tool the first pass calls for it (with :data:`GATHER_ARGUMENTS`);
* :data:`BROWSER_ERRORS`, :data:`LOGS_TRACE`, :data:`LOGS_SEARCH`: the tools the browser
  rule follows a page error through; :data:`SYSTEM_OVERVIEW` and
  :data:`CIRCUIT_CONTROL`, the other tools the replay server answers as;
* :func:`role_of`: the role of any tool's evidence (the analyzers pick their rule by it):
  the names of this table first, then keywords for tools of other servers.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from agent.models import JsonValue

__all__ = [
    "BROWSER_ERRORS",
    "CIRCUIT_CONTROL",
    "GATHER",
    "GATHER_ARGUMENTS",
    "LOGS_SEARCH",
    "LOGS_TRACE",
    "ROLE_OF_TOOL",
    "SYSTEM_OVERVIEW",
    "role_of",
]

#: role → the aggregate's tool the first pass calls for it, in the order they are called
GATHER: Final[Mapping[str, str]] = MappingProxyType(
    {
        "health": "health_stack",
        "checks": "health_check",
        "circuits": "circuits_breakers",
        "errors": "logs_errors",
        "timeline": "timeline_recent",
    }
)

#: role → the arguments the first pass gives its tool (beyond the question's time window)
GATHER_ARGUMENTS: Final[Mapping[str, Mapping[str, JsonValue]]] = MappingProxyType(
    {"checks": {"scope": "deep"}, "errors": {"limit": 20}, "timeline": {"limit": 50}}
)

#: the watched page's recent errors (the browser rule's start)
BROWSER_ERRORS: Final = "browser_errors"
#: every backend log entry carrying one correlation id
LOGS_TRACE: Final = "logs_trace"
#: log search (the role the browser rule files traced backend lines under)
LOGS_SEARCH: Final = "logs_search"

#: the host overview
SYSTEM_OVERVIEW: Final = "system_overview"
#: circuit control action → its tool (control: the agent only proposes these, with approval)
CIRCUIT_CONTROL: Final[Mapping[str, str]] = MappingProxyType(
    {action: f"circuits_{action}" for action in ("open", "close", "reset")}
)

#: tool → role of its evidence for the tools of dev3000's aggregate the analyzers read
ROLE_OF_TOOL: Final[Mapping[str, str]] = MappingProxyType(
    {
        # the state of the stack: the model the rules over it read (not a health report)
        GATHER["health"]: "stack",
        GATHER["checks"]: "health",
        GATHER["circuits"]: "circuits",
        GATHER["errors"]: "errors",
        GATHER["timeline"]: "timeline",
        "health_history": "health",
        "circuits_transitions": "circuits",
        LOGS_SEARCH: "logs",
        LOGS_TRACE: "logs",
        "logs_tail": "logs",
    }
)


def role_of(tool: str) -> str:
    """The role of a tool's evidence: stack, health, circuits, errors, timeline, logs or
    other."""
    known = ROLE_OF_TOOL.get(tool)
    if known is not None:
        return known
    low = tool.lower()
    if "health" in low:
        return "health"
    if "circuit" in low or "breaker" in low:
        return "circuits"
    if "error" in low and ("group" in low or low.endswith("errors")):
        return "errors"
    if "timeline" in low or "event" in low:
        return "timeline"
    if "log" in low:
        return "logs"
    return "other"
