"""The health MCP server: a thin layer over :mod:`servers.health.logic`."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Annotated, Any

from fastmcp import FastMCP
from pydantic import Field

from guilde_core.config import Settings, get_settings
from guilde_core.redaction import redact
from guilde_core.stack import StackModel, compact
from servers.common import (
    READ_ONLY,
    ControlGate,
    DiagServer,
    as_tool_errors,
    compact_schema,
    prompts_only_when_enabled,
    to_json,
)
from servers.context import ServerContext
from servers.health import logic
from servers.health.models import (
    HealthReport,
    Scope,
    TargetHistory,
    TargetList,
)

__all__ = ["build_server"]

Names = Annotated[Sequence[str], Field(description="Target names (health_targets).")]


def build_server(settings: Settings | None = None, context: ServerContext | None = None) -> FastMCP:
    """The health server (tools, resources, prompt as enabled by MCP_*_ENABLED).

    ``context.health`` is the host's health service (dev3000's: its registry's targets, its
    deep round and history); without it ``context.targets`` adds the host's targets to the
    settings' and the targets file's and the server keeps its own check history."""
    s = settings or get_settings()
    targets = context.targets if context is not None else None
    host = context.health if context is not None else None
    own = logic.get_service(s) if targets is None else logic.HealthService(s, targets)
    current: Callable[[], logic.HealthService] = host if host is not None else (lambda: own)

    async def topology_json(fresh: bool = False) -> dict[str, Any]:
        model = await current().topology(fresh=fresh)
        data: dict[str, Any] = redact(compact(model))
        return data

    server: FastMCP = DiagServer(
        "guilde-diag-health",
        instructions="Health of the service stack: HTTP services, Redis, PostgreSQL, TCP "
        "ports, disk, memory, CPU, circuit breakers and /metrics targets — and the model of "
        "the stack built from them (topology: what depends on what, and why each "
        "component is not healthy). Start with health_stack.",
        middleware=[ControlGate(s)],
    )

    if s.mcp_tools_enabled:

        @server.tool(
            name="health_stack",
            description="START HERE: the state of the stack. Every component with its status "
            "and why (reasons, the cause first); edges: source depends on target.",
            annotations=READ_ONLY,
            output_schema=compact_schema(StackModel),
        )
        @as_tool_errors
        async def health_stack(
            fresh: Annotated[bool, Field(description="Check now, not the last round.")] = False,
        ) -> dict[str, Any]:
            return await topology_json(fresh)

        @server.tool(
            name="health_check",
            description="Run health checks now: each check's status, latency, details "
            "(scope ready: critical targets; deep: all).",
            annotations=READ_ONLY,
            output_schema=compact_schema(HealthReport),
        )
        @as_tool_errors
        async def health_check(
            scope: Scope = "ready",
            include: Names = (),
            exclude: Names = (),
            fresh: bool = False,
        ) -> HealthReport:
            return await current().check(
                scope, list(include) or None, list(exclude) or None, use_cache=not fresh
            )

        @server.tool(
            name="health_targets",
            description="The health-check targets: kind, URL, critical, where each comes from.",
            annotations=READ_ONLY,
            output_schema=None,
        )
        @as_tool_errors
        async def health_targets() -> TargetList:
            return await current().target_list()

        @server.tool(
            name="health_history",
            description="Recent check results of one target, oldest first (when it started "
            "failing).",
            annotations=READ_ONLY,
            output_schema=None,
        )
        @as_tool_errors
        async def health_history(
            name: Annotated[str, Field(min_length=1, max_length=100)],
            limit: Annotated[int, Field(ge=1, le=logic.HISTORY_SIZE)] = 20,
        ) -> TargetHistory:
            return current().recent(name, limit)

    if s.mcp_resources_enabled:

        @server.resource(
            "health://summary",
            name="health_summary",
            description="Deep health of every target as JSON.",
            mime_type="application/json",
        )
        async def summary_resource() -> str:
            return to_json(await current().check("deep"))

        @server.resource(
            "stack://topology",
            name="stack_topology",
            description="The model of the watched stack (health_stack's JSON).",
            mime_type="application/json",
        )
        async def topology_resource() -> str:
            return json.dumps(await topology_json(), indent=1)

        @server.resource(
            "health://targets/{name}",
            name="health_target",
            description="One target's latest check and recent history as JSON.",
            mime_type="application/json",
        )
        async def target_resource(name: str) -> str:
            await current().check_one(name)
            return to_json(current().recent(name, 20))

    if s.mcp_prompts_enabled:

        @server.prompt(
            name="triage_health",
            description="Triage the stack now: its current state (the stack model) with "
            "what to look at next.",
        )
        async def triage_health() -> str:
            model = await topology_json(fresh=True)
            return (
                "You are on call. Here is the current state of the stack (JSON: every "
                "component with its status and why, edges = what depends on what):\n\n"
                + json.dumps(model, indent=1)
                + "\n\nTriage it: list what is unhealthy or degraded, most critical first, the "
                "deepest failing dependency as the likely cause; for each the next tool to "
                "call (health_history, logs_errors, logs_trace, circuits_breakers). Be brief."
            )

    return prompts_only_when_enabled(server, s)
