"""The logs MCP server: a thin layer over :mod:`servers.logs.logic`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated

from fastmcp import FastMCP
from pydantic import Field

from guilde_core.config import Settings, get_settings
from servers.common import (
    READ_ONLY,
    ControlGate,
    DiagServer,
    Omitted,
    as_tool_errors,
    caller_key,
    compact_schema,
    prompts_only_when_enabled,
    to_json,
)
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

Sources = Annotated[Sequence[str], Field(description="From logs_sources (default: all).")]


def build_server(settings: Settings | None = None, context: ServerContext | None = None) -> FastMCP:
    """The logs server (tools, resources, prompt as enabled by MCP_*_ENABLED); it needs
    nothing from the ``context`` (every area server takes one)."""
    del context
    s = settings or get_settings()
    server: FastMCP = DiagServer(
        "guilde-diag-logs",
        instructions="Read the service's log files: list sources, tail, search, group errors, "
        "trace one correlation id. Every line is redacted.",
        middleware=[ControlGate(s)],
    )

    if s.mcp_tools_enabled:

        @server.tool(
            name="logs_sources",
            description="The readable log files (names for the other logs_ tools).",
            annotations=READ_ONLY,
            output_schema=None,
        )
        @as_tool_errors
        async def list_sources_tool() -> SourceList:
            return await logic.list_log_sources(settings=s)

        @server.tool(
            name="logs_tail",
            description="The last N log entries (tracebacks joined), optionally at or above "
            "a level or newer than a time.",
            annotations=READ_ONLY,
            output_schema=None,
        )
        @as_tool_errors
        async def tail_tool(
            sources: Sources = (),
            lines: Annotated[int, Field(ge=1, le=2000)] = 50,
            min_level: Level | Omitted = None,
            since: datetime | Omitted = None,
        ) -> TailResult:
            return await logic.tail(list(sources) or None, lines, min_level, since, settings=s)

        @server.tool(
            name="logs_search",
            description="Search log lines (text or regex), with filters and context; says "
            "when a limit stopped it.",
            annotations=READ_ONLY,
            output_schema=compact_schema(SearchResult),
        )
        @as_tool_errors
        async def search_tool(
            query: Annotated[str, Field(min_length=1, max_length=500, description="Text/regex.")],
            regex: bool = False,
            ignore_case: bool = False,
            sources: Sources = (),
            level: Annotated[Level | Omitted, Field(description="Minimum.")] = None,
            since: datetime | Omitted = None,
            until: datetime | Omitted = None,
            limit: Annotated[int, Field(ge=1, le=1000)] = 100,
            context: Annotated[int, Field(ge=0, le=10, description="Lines around each.")] = 0,
            time_budget: Annotated[
                float | Omitted,
                Field(
                    gt=0,
                    le=60,
                    description="Seconds (capped)",
                ),
            ] = None,
        ) -> SearchResult:
            return await logic.search(
                query,
                regex=regex,
                sources=list(sources) or None,
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
            name="logs_errors",
            description="Recent errors and exceptions grouped by normalised signature: "
            "counts, first/last seen, one sample.",
            annotations=READ_ONLY,
            output_schema=None,
        )
        @as_tool_errors
        async def error_groups_tool(
            sources: Sources = (),
            since: datetime | Omitted = None,
            limit: Annotated[int, Field(ge=1, le=200)] = 20,
        ) -> ErrorGroupsResult:
            return await logic.error_groups(
                list(sources) or None, since, limit, settings=s, caller=caller_key()
            )

        @server.tool(
            name="logs_trace",
            description="Follow one request: every log entry carrying a correlation/request "
            "id, across all sources, in time order.",
            annotations=READ_ONLY,
            output_schema=None,
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
                "Call logs_errors to see what is failing, then logs_search or logs_trace the top "
                "group's sample (its correlation id if any) to find the first failure and its "
                "cause. Report: the failing component, the first occurrence, the likely root "
                "cause and the next check to run." + extra
            )

    return prompts_only_when_enabled(server, s)
