"""A FastMCP server that replays recorded tool outputs (scenarios without a live sandbox).

Some scenarios of the suite are *recorded*: their ``scenario.yaml`` carries what each
diagnostic tool answered while the fault was present. This server exposes those answers
under the same tool names as dev3000's aggregate endpoint, so the agent reaches them the
same way — over MCP — and nothing in the agent knows the difference. Control tools
(open/close/reset a circuit) record every invocation in :attr:`RecordedState.control_calls`
so tests can prove none ran without approval.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import regex
from fastmcp import FastMCP

from agent.tool_names import CIRCUIT_CONTROL, GATHER, LOGS_SEARCH, SYSTEM_OVERVIEW

__all__ = ["RECORDED_TOOL_NAMES", "RecordedState", "build_recorded_server"]

#: role in a scenario's ``recorded:`` block → tool name on the aggregate endpoint
RECORDED_TOOL_NAMES: dict[str, str] = {**GATHER, "logs": LOGS_SEARCH, "system": SYSTEM_OVERVIEW}

#: seconds a model-supplied search pattern may run over a recorded scenario's log lines
_SEARCH_BUDGET = 1.0


@dataclass
class RecordedState:
    """What the replay server was asked (tool calls and control calls)."""

    data: dict[str, Any]
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    control_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def _answer(
    state: RecordedState, role: str, arguments: dict[str, Any], tool: str | None = None
) -> Any:
    from fastmcp.exceptions import ToolError

    state.calls.append((tool or RECORDED_TOOL_NAMES.get(role, role), arguments))
    value = state.data.get(role)
    if isinstance(value, dict) and set(value) == {"error"}:
        raise ToolError(str(value["error"]))
    if value is None:
        return {"note": f"no {role} data recorded"}
    return value


def build_recorded_server(
    data: dict[str, Any], *, name: str = "recorded"
) -> tuple[FastMCP, RecordedState]:
    """A FastMCP server answering from ``data`` (role → recorded output), and its log."""
    server: FastMCP = FastMCP(name)
    state = RecordedState(data=dict(data))
    ro = {"readOnlyHint": True, "destructiveHint": False}
    destructive = {"readOnlyHint": False, "destructiveHint": True}

    @server.tool(name=RECORDED_TOOL_NAMES["health"], annotations=ro)
    def health_stack(fresh: bool = False) -> dict[str, Any]:
        """The state of the stack (the recorded health report)."""
        result: dict[str, Any] = _answer(state, "health", {})
        return result

    @server.tool(name=RECORDED_TOOL_NAMES["checks"], annotations=ro)
    def health_check(scope: str = "ready", include: list[str] | None = None) -> dict[str, Any]:
        """Run health checks by scope (live|ready|deep): every check's status, latency, details."""
        result: dict[str, Any] = _answer(state, "checks", {"scope": scope, "include": include})
        return result

    @server.tool(name=RECORDED_TOOL_NAMES["circuits"], annotations=ro)
    def circuits_breakers(names: list[str] | None = None) -> dict[str, Any]:
        """Circuit breakers (all, or the names given): state, failures, last failure."""
        from fastmcp.exceptions import ToolError

        listing = _answer(state, "circuits", {"names": names} if names else {})
        if not names or not isinstance(listing, dict):
            return dict(listing) if isinstance(listing, dict) else {"result": listing}
        picked = [b for b in listing.get("breakers", []) if b.get("name") in names]
        missing = sorted(set(names) - {b.get("name") for b in picked})
        if missing:
            raise ToolError(f"no circuit breaker named {missing[0]!r}")
        return {**listing, "breakers": picked}

    @server.tool(name=RECORDED_TOOL_NAMES["errors"], annotations=ro)
    def logs_errors(limit: int = 20, since: str | None = None) -> dict[str, Any]:
        """Errors and exceptions grouped by normalised signature, with counts and a sample."""
        result: dict[str, Any] = _answer(state, "errors", {"limit": limit, "since": since})
        return result

    @server.tool(name=RECORDED_TOOL_NAMES["logs"], annotations=ro)
    def logs_search(query: str, limit: int = 50) -> dict[str, Any]:
        """Search log lines (literal or regex) across sources; newest last."""
        lines = _answer(state, "logs", {"query": query, "limit": limit})
        entries = lines.get("entries", []) if isinstance(lines, dict) else []
        try:
            pattern = regex.compile(query, regex.IGNORECASE)
        except regex.error:
            pattern = regex.compile(regex.escape(query), regex.IGNORECASE)
        deadline = time.monotonic() + _SEARCH_BUDGET  # the pattern comes from the model
        hits: list[Any] = []
        for entry in entries:
            left = deadline - time.monotonic()
            try:
                if left <= 0:
                    raise TimeoutError
                if pattern.search(str(entry.get("message", entry)), timeout=left):
                    hits.append(entry)
            except TimeoutError:
                return {"query": query, "entries": hits[-limit:], "truncated": True}
        return {"query": query, "entries": hits[-limit:], "truncated": len(hits) > limit}

    @server.tool(name=RECORDED_TOOL_NAMES["timeline"], annotations=ro)
    def timeline_recent(limit: int = 50, kinds: list[str] | None = None) -> dict[str, Any]:
        """Recent timeline events (health/circuit transitions, error lines, reloads)."""
        result = _answer(state, "timeline", {"limit": limit, "kinds": kinds})
        events = result.get("events", []) if isinstance(result, dict) else []
        if kinds:
            events = [e for e in events if e.get("kind") in kinds]
        return {"events": events[-limit:]}

    @server.tool(name=RECORDED_TOOL_NAMES["system"], annotations=ro)
    def system_overview() -> dict[str, Any]:
        """Host and process diagnostics: CPU, memory, disk, connections."""
        result: dict[str, Any] = _answer(state, "system", {})
        return result

    def _control(verb: str, name: str, reason: str) -> dict[str, Any]:
        state.control_calls.append((verb, {"name": name, "reason": reason}))
        return {"name": name, "action": verb, "ok": True}

    @server.tool(name=CIRCUIT_CONTROL["open"], annotations=destructive)
    def circuits_open(name: str, reason: str) -> dict[str, Any]:
        """Force a circuit breaker open (control; needs a reason)."""
        return _control("open", name, reason)

    @server.tool(name=CIRCUIT_CONTROL["close"], annotations=destructive)
    def circuits_close(name: str, reason: str) -> dict[str, Any]:
        """Force a circuit breaker closed (control; needs a reason)."""
        return _control("close", name, reason)

    @server.tool(name=CIRCUIT_CONTROL["reset"], annotations=destructive)
    def circuits_reset(name: str, reason: str) -> dict[str, Any]:
        """Reset a circuit breaker's counters (control; needs a reason)."""
        return _control("reset", name, reason)

    return server, state
