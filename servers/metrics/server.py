"""The metrics MCP server: a thin layer over :mod:`servers.metrics.logic`."""

from __future__ import annotations

from typing import Annotated

from fastmcp import FastMCP
from pydantic import Field

from guilde_core.config import Settings, get_settings
from servers.common import READ_ONLY, as_tool_errors
from servers.context import ServerContext
from servers.metrics import logic
from servers.metrics.models import InstantResult, RangeResult, TargetList

__all__ = ["build_server"]

_TIME = (
    "unix seconds, RFC 3339 (2026-01-02T15:04:05Z) or relative to now (now-15m, -2h); default now"
)


def build_server(settings: Settings | None = None, context: ServerContext | None = None) -> FastMCP:
    """The metrics server (its tools when MCP_TOOLS_ENABLED); it needs nothing from the
    ``context``. Without ``PROMETHEUS_URL`` every tool answers with a tool error saying so."""
    del context
    s = settings or get_settings()
    server: FastMCP = FastMCP(
        "guilde-diag-metrics",
        instructions="PromQL against the stack's Prometheus: instant and range queries with "
        "bounded answers (series and points capped), and the scrape targets.",
    )

    if s.mcp_tools_enabled:

        @server.tool(
            name="query",
            description="Evaluate a PromQL expression at one instant, e.g. "
            "sum by (job) (rate(http_requests_total{status=~'5..'}[5m])). At most "
            "PROMETHEUS_MAX_SERIES series; a bad expression is a tool error quoting "
            "Prometheus' parse error.",
            annotations=READ_ONLY,
        )
        @as_tool_errors
        async def query(
            query: Annotated[
                str, Field(min_length=1, max_length=logic.MAX_QUERY_CHARS, description="PromQL")
            ],
            time: Annotated[str | None, Field(max_length=40, description=_TIME)] = None,
        ) -> InstantResult:
            return await logic.query(query, time, settings=s)

        @server.tool(
            name="query_range",
            description="Evaluate a PromQL expression over a window (default the last 15 "
            "minutes, 60 points), e.g. an error rate or a latency quantile. Each series "
            "comes with its last and max value; series and points are capped "
            "(PROMETHEUS_MAX_SERIES, PROMETHEUS_MAX_POINTS: the step is widened to fit).",
            annotations=READ_ONLY,
        )
        @as_tool_errors
        async def query_range(
            query: Annotated[
                str, Field(min_length=1, max_length=logic.MAX_QUERY_CHARS, description="PromQL")
            ],
            start: Annotated[str, Field(max_length=40, description=_TIME)] = "now-15m",
            end: Annotated[str | None, Field(max_length=40, description=_TIME)] = None,
            step_seconds: Annotated[
                float | None, Field(gt=0, le=86400, description="Resolution (seconds).")
            ] = None,
        ) -> RangeResult:
            return await logic.query_range(query, start, end, step_seconds, settings=s)

        @server.tool(
            name="targets",
            description="What Prometheus scrapes (job, instance) and whether the last scrape "
            "of each worked, with its error.",
            annotations=READ_ONLY,
        )
        @as_tool_errors
        async def targets() -> TargetList:
            return await logic.targets(settings=s)

    return server
