"""The system MCP server: a thin layer over :mod:`servers.system.logic`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastmcp import FastMCP
from pydantic import Field

from guilde_core.config import Settings, get_settings
from servers.common import (
    READ_ONLY,
    ControlGate,
    DiagServer,
    Omitted,
    as_tool_errors,
    prompts_only_when_enabled,
    to_json,
)
from servers.context import ServerContext
from servers.system import logic
from servers.system.models import (
    Connections,
    EffectiveConfig,
    ProcessList,
    SystemOverview,
    TaskList,
    Versions,
)

__all__ = ["build_server"]


def build_server(settings: Settings | None = None, context: ServerContext | None = None) -> FastMCP:
    """The system server (tools, resources, prompt as enabled by MCP_*_ENABLED); it needs
    nothing from the ``context`` (every area server takes one)."""
    del context
    s = settings or get_settings()
    server: FastMCP = DiagServer(
        "guilde-diag-system",
        instructions="Host and process diagnostics: CPU, memory, disks, load, processes, "
        "connections, asyncio tasks, versions, effective configuration, observability.",
        middleware=[ControlGate(s)],
    )

    if s.mcp_tools_enabled:

        @server.tool(
            name="system_overview",
            description="Host CPU, memory, disks, load and uptime; this process's memory "
            "and uptime.",
            annotations=READ_ONLY,
            output_schema=None,
        )
        @as_tool_errors
        async def overview() -> SystemOverview:
            return await logic.overview()

        @server.tool(
            name="system_processes",
            description="The busiest processes by CPU or memory (command lines redacted).",
            annotations=READ_ONLY,
            output_schema=None,
        )
        @as_tool_errors
        async def top_processes(
            limit: Annotated[int, Field(ge=1, le=100)] = 10,
            sort_by: Literal["cpu", "memory"] = "cpu",
        ) -> ProcessList:
            return await logic.top_processes(limit, sort_by)

        @server.tool(
            name="system_connections",
            description="Open network connections by state and the listening ports.",
            annotations=READ_ONLY,
            output_schema=None,
        )
        @as_tool_errors
        async def connections() -> Connections:
            return await logic.connections()

        @server.tool(
            name="system_tasks",
            description="This server's own asyncio tasks (names and coroutines) — to spot "
            "leaks or stuck work.",
            annotations=READ_ONLY,
            output_schema=None,
        )
        @as_tool_errors
        async def asyncio_tasks(limit: Annotated[int, Field(ge=1, le=1000)] = 100) -> TaskList:
            return await logic.asyncio_tasks(limit)

        @server.tool(
            name="system_versions",
            description="Versions of Python and the components (fastmcp, mcp, redis, …).",
            annotations=READ_ONLY,
            output_schema=None,
        )
        @as_tool_errors
        async def versions() -> Versions:
            return await logic.versions()

        @server.tool(
            name="system_config",
            description="The effective configuration (secrets masked), each value's source.",
            annotations=READ_ONLY,
            output_schema=None,
        )
        @as_tool_errors
        async def effective_config(
            prefix: Annotated[
                str | Omitted, Field(max_length=60, description="e.g. HEALTH_ or CB_")
            ] = None,
        ) -> EffectiveConfig:
            return await logic.effective_config(prefix, settings=s)

        @server.tool(
            name="system_observability",
            output_schema=None,
            description="Logfire and Sentry status: configured, spans exported, export "
            "errors, events sent, rate limited.",
            annotations=READ_ONLY,
        )
        @as_tool_errors
        async def observability() -> dict[str, Any]:
            return await logic.observability()

    if s.mcp_resources_enabled:

        @server.resource(
            "system://overview",
            name="system_overview",
            description="Host and process overview as JSON.",
            mime_type="application/json",
        )
        async def overview_resource() -> str:
            return to_json(await logic.overview())

        @server.resource(
            "system://config",
            name="system_config",
            description="Effective configuration (redacted) as JSON.",
            mime_type="application/json",
        )
        async def config_resource() -> str:
            return to_json(await logic.effective_config(settings=s))

    if s.mcp_prompts_enabled:

        @server.prompt(
            name="resource_pressure",
            description="Ask the model whether the host is under resource pressure.",
        )
        async def resource_pressure() -> str:
            return (
                "Here is the host overview (JSON):\n\n"
                + to_json(await logic.overview())
                + "\n\nIs the host under CPU, memory, disk or load pressure? Name the "
                "resource, the figure and the threshold, and say which process to look at "
                "(call system_processes) if any."
            )

    return prompts_only_when_enabled(server, s)
