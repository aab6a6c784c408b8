"""The health MCP server: a thin layer over :mod:`servers.health.logic`."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

from fastmcp import FastMCP
from pydantic import Field

from guilde_core.config import Settings, get_settings
from guilde_core.redaction import redact
from guilde_core.stack import StackModel, compact
from servers.common import READ_ONLY, as_tool_errors, to_json
from servers.context import ServerContext
from servers.health import logic
from servers.health.models import (
    CheckResult,
    DeepHealthReport,
    HealthReport,
    Scope,
    TargetHistory,
    TargetList,
)

__all__ = ["build_server"]

Names = Annotated[list[str] | None, Field(description="Target names (see list_targets).")]


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

    server: FastMCP = FastMCP(
        "guilde-diag-health",
        instructions="Health of the service stack: HTTP services, Redis, PostgreSQL, TCP "
        "ports, disk, memory, CPU, circuit breakers and /metrics targets — and the model of "
        "the stack built from them (topology: what depends on what, and why each "
        "component is not healthy).",
    )

    if s.mcp_tools_enabled:

        @server.tool(
            name="check_health",
            description="Check health by scope (live: process only; ready: critical "
            "dependencies; deep: every target), optionally only/except some targets.",
            annotations=READ_ONLY,
        )
        @as_tool_errors
        async def check_health(
            scope: Annotated[Scope, Field(description="live | ready | deep")] = "ready",
            include: Names = None,
            exclude: Names = None,
        ) -> HealthReport:
            return await current().check(scope, include, exclude)

        @server.tool(
            name="check_target",
            description="Check one target now (no cache) and return its status, latency "
            "and details.",
            annotations=READ_ONLY,
        )
        @as_tool_errors
        async def check_target(
            name: Annotated[str, Field(min_length=1, max_length=100)],
        ) -> CheckResult:
            return await current().check_one(name)

        @server.tool(
            name="list_targets",
            description="List the health-check targets (kind, URL, critical or not, where "
            "each comes from).",
            annotations=READ_ONLY,
        )
        @as_tool_errors
        async def list_targets() -> TargetList:
            return await current().target_list()

        @server.tool(
            name="target_history",
            description="Recent check results of one target, oldest first — to see when it "
            "started failing.",
            annotations=READ_ONLY,
        )
        @as_tool_errors
        async def target_history(
            name: Annotated[str, Field(min_length=1, max_length=100)],
            limit: Annotated[int, Field(ge=1, le=logic.HISTORY_SIZE)] = 20,
        ) -> TargetHistory:
            return current().recent(name, limit)

        @server.tool(
            name="topology",
            description="The model of the watched stack: every component (services, "
            "datastores, upstream providers, host resources) with its status and WHY "
            "(reasons with a category read from structured fields, the cause first), what "
            "depends on what (edges: source depends on target), ever_up and absent (a "
            "non-critical service that never answered: not an incident). Compact JSON: "
            "fields at their default are left out. Start a diagnosis here.",
            annotations=READ_ONLY,
            output_schema=StackModel.model_json_schema(),
        )
        @as_tool_errors
        async def topology(
            fresh: Annotated[
                bool, Field(description="Check now instead of reading the last round.")
            ] = False,
        ) -> dict[str, Any]:
            return await topology_json(fresh)

        @server.tool(
            name="deep_health",
            description="The full deep health report (database, Redis, external APIs' "
            "circuits, observability, request metrics, process diagnostics).",
            annotations=READ_ONLY,
        )
        @as_tool_errors
        async def deep_health() -> DeepHealthReport:
            return await current().deep_report()

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
            description="The model of the watched stack (the topology tool's JSON).",
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
            description="Ask the model to triage the current health of the stack.",
        )
        async def triage_health() -> str:
            report = await current().check("deep")
            return (
                "You are on call. Here is the current deep health report (JSON):\n\n"
                + to_json(report)
                + "\n\nTriage it: list what is unhealthy or degraded, most critical first; for "
                "each give the likely cause from the details/error and the next diagnostic "
                "tool to call (target_history, logs search/trace, circuits). Be brief."
            )

    return server
