"""The one table of the MCP tools the agent calls on its own, by role.

The agent never hard-codes a tool's full name: dev3000's aggregate endpoint namespaces each
server's tools (``health_stack``, ``circuits_breakers`` …), another host may not. A
role is found by keywords the tool's name must contain (and must not); the first option a
server offers wins, the shortest matching name among several. Every module of the agent that
calls a tool by itself — the gather pass, the browser rule, the evidence collectors — and the
analysis that tells an evidence record's role from its tool name read this table only, so a
renamed tool is one line here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from agent.mcp_client import DiagTools

__all__ = ["GATHERED", "TOOL_ROLES", "Role", "find_tool", "resolve_roles", "role_of"]

Role = Literal[
    "topology",
    "health",
    "checks",
    "circuits",
    "errors",
    "timeline",
    "logs",
    "browser_errors",
    "trace",
    "metrics",
    "metrics_status",
    "metrics_instant",
]
#: one option: (keywords the name contains, keywords it must not contain)
Option = tuple[tuple[str, ...], tuple[str, ...]]

#: role → the options that find its tool, in order of preference
TOOL_ROLES: dict[Role, tuple[Option, ...]] = {
    # the model of the stack: dev3000's health_stack (health_topology on older servers)
    "topology": ((("health", "stack"), ()), (("topology",), ())),
    # a deep report of the seed's shape, where a server still offers one as a tool of its own
    "health": ((("health", "deep"), ()),),
    "checks": (
        (("health", "check"), ("target", "history", "deep")),
        (("health", "check", "health"), ()),
    ),
    "circuits": (
        (("circuits", "breakers"), ()),
        (("circuit", "list"), ()),
        (("circuits",), ("get", "transition", "history", "open", "close", "reset")),
    ),
    "errors": (
        (("logs", "errors"), ()),
        (("error", "group"), ()),
        (("errors",), ("browser", "recent")),
    ),
    "timeline": ((("timeline",), ("resource",)),),
    "logs": ((("logs", "search"), ()),),
    "browser_errors": ((("browser", "error"), ()),),
    "trace": ((("logs", "trace"), ()),),
    # the range query (its evidence is the metrics role's), the status, the instant query
    "metrics": ((("metrics", "query", "range"), ()),),
    "metrics_status": ((("metrics", "status"), ()),),
    "metrics_instant": ((("metrics", "query"), ("range",)),),
}

#: the roles of the first pass, in the order their evidence is numbered
GATHERED: tuple[Role, ...] = ("topology", "health", "checks", "circuits", "errors", "timeline")


def find_tool(tools: DiagTools, role: Role) -> str | None:
    """The server's tool for ``role`` (None when it offers none)."""
    for keywords, exclude in TOOL_ROLES[role]:
        name = tools.find(*keywords, exclude=exclude)
        if name:
            return name
    return None


def resolve_roles(tools: DiagTools, roles: tuple[Role, ...] = GATHERED) -> dict[Role, str]:
    """``roles`` mapped to the server's tool names (the roles it offers no tool for left out)."""
    found: dict[Role, str] = {}
    for role in roles:
        name = find_tool(tools, role)
        if name is not None:
            found[role] = name
    return found


def _matches(name: str, option: Option) -> bool:
    keywords, exclude = option
    return all(k in name for k in keywords) and not any(x in name for x in exclude)


def role_of(tool: str) -> Role | Literal["other"]:
    """The role of an evidence record from the name of the tool that produced it."""
    low = tool.lower()
    roles: tuple[Role, ...] = (
        "browser_errors",
        "trace",
        "metrics",
        "metrics_instant",
        "topology",
        "timeline",
        "circuits",
        "errors",
    )
    for role in roles:
        if any(_matches(low, option) for option in TOOL_ROLES[role]):
            return role
    if "health" in low:
        return "health" if "deep" in low else "checks"
    if "log" in low:
        return "logs"
    return "other"
