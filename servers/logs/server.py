"""The logs MCP server: a thin layer over :mod:`servers.logs.logic`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastmcp import FastMCP
from pydantic import Field

from guilde_core.config import Settings, get_settings
from servers.common import READ_ONLY, as_tool_errors, caller_key, to_json
from servers.context import ServerContext
from servers.logs import logic
from servers.logs.models import (
    ErrorGroupsResult,
    Level,
    SearchResult,
    SourceList,
    TailResult,
    TraceResult,
)

__all__ = ["build_server"]

Sources = Annotated[
    list[str] | None,
    Field(description="Source names from list_sources (default: every source)."),
]


def build_server(settings: Settings | None = None, context: ServerContext | None = None) -> FastMCP:
    """The logs server (tools, resources, prompt as enabled by MCP_*_ENABLED); it needs
    nothing from the ``context`` (every area server takes one)."""
    del context
    s = settings or get_settings()
    server: FastMCP = FastMCP(
        "guilde-diag-logs",
        instructions="Read the service's log files: list sources, tail, search, group errors, "
        "trace one correlation id. Every line is redacted.",
    )

    if s.mcp_tools_enabled:

        @server.tool(
            name="list_sources",
            description="List the readable log files (names to pass to the other log tools).",
            annotations=READ_ONLY,
        )
        @as_tool_errors
        async def list_sources_tool() -> SourceList:
            return await logic.list_log_sources(settings=s)

        @server.tool(
            name="tail",
            description="Show the last N log entries (tracebacks joined), optionally only "
            "entries at or above a level or newer than a time.",
            annotations=READ_ONLY,
        )
        @as_tool_errors
        async def tail_tool(
            sources: Sources = None,
            lines: Annotated[int, Field(ge=1, le=2000, description="How many entries.")] = 50,
            min_level: Annotated[Level | None, Field(description="Minimum level.")] = None,
            since: Annotated[datetime | None, Field(description="Only entries after this.")] = None,
        ) -> TailResult:
            return await logic.tail(sources, lines, min_level, since, settings=s)

        @server.tool(
            name="search",
            description="Search log lines for text or a regex with level/time filters and "
            "context lines; says when the limit or time budget stopped it early.",
            annotations=READ_ONLY,
        )
        @as_tool_errors
        async def search_tool(
            query: Annotated[str, Field(min_length=1, max_length=500, description="Text/regex.")],
            regex: Annotated[bool, Field(description="Treat query as a regex.")] = False,
            ignore_case: bool = False,
            sources: Sources = None,
            level: Annotated[Level | None, Field(description="Minimum level.")] = None,
            since: datetime | None = None,
            until: datetime | None = None,
            limit: Annotated[int, Field(ge=1, le=1000)] = 100,
            context: Annotated[int, Field(ge=0, le=10, description="Lines around each.")] = 0,
            time_budget: Annotated[
                float | None,
                Field(
                    gt=0,
                    le=60,
                    description="Seconds (default and cap: the server's "
                    "DIAGNOSTIC_SEARCH_TIME_BUDGET).",
                ),
            ] = None,
        ) -> SearchResult:
            return await logic.search(
                query,
                regex=regex,
                sources=sources,
                level=level,
                since=since,
                until=until,
                limit=limit,
                context=context,
                ignore_case=ignore_case,
                time_budget=time_budget,
                settings=s,
                caller=caller_key(),
            )

        @server.tool(
            name="error_groups",
            description="Group recent errors and exceptions by normalised signature with "
            "counts, first/last seen and one sample — start here to see what is failing.",
            annotations=READ_ONLY,
        )
        @as_tool_errors
        async def error_groups_tool(
            sources: Sources = None,
            since: datetime | None = None,
            limit: Annotated[int, Field(ge=1, le=200)] = 20,
        ) -> ErrorGroupsResult:
            return await logic.error_groups(sources, since, limit, settings=s, caller=caller_key())

        @server.tool(
            name="trace",
            description="Follow one request: every log entry carrying a correlation/request "
            "id, across all sources, in time order.",
            annotations=READ_ONLY,
        )
        @as_tool_errors
        async def trace_tool(
            correlation_id: Annotated[str, Field(min_length=4, max_length=128)],
            limit: Annotated[int, Field(ge=1, le=2000)] = 500,
        ) -> TraceResult:
            return await logic.trace(correlation_id, limit, settings=s, caller=caller_key())

    if s.mcp_resources_enabled:

        @server.resource(
            "logs://sources",
            name="log_sources",
            description="The readable log files as JSON.",
            mime_type="application/json",
        )
        async def sources_resource() -> str:
            return to_json(await logic.list_log_sources(settings=s))

        @server.resource(
            "logs://errors",
            name="log_error_groups",
            description="Current error groups as JSON.",
            mime_type="application/json",
        )
        async def errors_resource() -> str:
            return to_json(await logic.error_groups(settings=s, caller=caller_key()))

    if s.mcp_prompts_enabled:

        @server.prompt(
            name="investigate_errors",
            description="Ask the model to investigate the most frequent errors in the logs.",
        )
        def investigate_errors(focus: str = "") -> str:
            extra = f" Focus on: {focus}." if focus else ""
            return (
                "Call error_groups to see what is failing, then search or trace the top "
                "group's sample (its correlation id if any) to find the first failure and its "
                "cause. Report: the failing component, the first occurrence, the likely root "
                "cause and the next check to run." + extra
            )

    return server
