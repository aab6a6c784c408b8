"""The health MCP server: a thin layer over :mod:`servers.health.logic`."""

from __future__ import annotations

from typing import Annotated

from fastmcp import FastMCP
from pydantic import Field

from guilde_core.config import Settings, get_settings
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

    ``context.targets`` adds the host's targets (dev3000's runtime registry) to the settings'
    and the targets file's; the server then keeps its own check history."""
    s = settings or get_settings()
    targets = context.targets if context is not None else None
    service = logic.get_service(s) if targets is None else logic.HealthService(s, targets)
    server: FastMCP = FastMCP(
        "guilde-diag-health",
        instructions="Health of the service stack: HTTP services, Redis, PostgreSQL, TCP "
        "ports, disk, memory, CPU, circuit breakers and /metrics targets.",
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
            return await service.check(scope, include, exclude)

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
            return await service.check_one(name)

        @server.tool(
            name="list_targets",
            description="List the health-check targets (kind, URL, critical or not, where "
            "each comes from).",
            annotations=READ_ONLY,
        )
        @as_tool_errors
        async def list_targets() -> TargetList:
            return await service.target_list()

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
            return service.recent(name, limit)

        @server.tool(
            name="deep_health",
            description="The full deep health report (database, Redis, external APIs' "
            "circuits, observability, request metrics, process diagnostics).",
            annotations=READ_ONLY,
        )
        @as_tool_errors
        async def deep_health() -> DeepHealthReport:
            return await service.deep_report()

    if s.mcp_resources_enabled:

        @server.resource(
            "health://summary",
            name="health_summary",
            description="Deep health of every target as JSON.",
            mime_type="application/json",
        )
        async def summary_resource() -> str:
            return to_json(await service.check("deep"))

        @server.resource(
            "health://targets/{name}",
            name="health_target",
            description="One target's latest check and recent history as JSON.",
            mime_type="application/json",
        )
        async def target_resource(name: str) -> str:
            await service.check_one(name)
            return to_json(service.recent(name, 20))

    if s.mcp_prompts_enabled:

        @server.prompt(
            name="triage_health",
            description="Ask the model to triage the current health of the stack.",
        )
        async def triage_health() -> str:
            report = await service.check("deep")
            return (
                "You are on call. Here is the current deep health report (JSON):\n\n"
                + to_json(report)
                + "\n\nTriage it: list what is unhealthy or degraded, most critical first; for "
                "each give the likely cause from the details/error and the next diagnostic "
                "tool to call (target_history, logs search/trace, circuits). Be brief."
            )

    return server
