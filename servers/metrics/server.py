"""The metrics MCP server: a thin layer over :mod:`servers.metrics.logic`."""

from __future__ import annotations

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
    prompts_only_when_enabled,
    to_json,
)
from servers.context import ServerContext
from servers.metrics import logic
from servers.metrics.models import InstantResult, MetricsStatus, RangeResult, TargetList

__all__ = ["build_server"]

_TIME = "unix seconds, RFC 3339 or now-15m / -2h (default: now)"


def build_server(settings: Settings | None = None, context: ServerContext | None = None) -> FastMCP:
    """The metrics server (its tools when MCP_TOOLS_ENABLED); it needs nothing from the
    ``context``. Without ``PROMETHEUS_URL`` every tool answers with a tool error saying so."""
    del context
    s = settings or get_settings()
    server: FastMCP = DiagServer(
        "guilde-diag-metrics",
        instructions="PromQL against the stack's Prometheus: instant and range queries with "
        "bounded answers (series and points capped), and the scrape targets.",
        middleware=[ControlGate(s)],
    )

    if s.mcp_tools_enabled:

        @server.tool(
            name="metrics_status",
            description="Is a Prometheus configured (PROMETHEUS_URL) and answering; the "
            "bounds of every answer.",
            annotations=READ_ONLY,
            output_schema=None,
        )
        @as_tool_errors
        async def status() -> MetricsStatus:
            return await logic.status(settings=s)

        @server.tool(
            name="metrics_query",
            description="PromQL at one instant (at most PROMETHEUS_MAX_SERIES series; a bad "
            "expression is a tool error with Prometheus' parse error).",
            annotations=READ_ONLY,
            output_schema=None,
        )
        @as_tool_errors
        async def query(
            query: Annotated[
                str, Field(min_length=1, max_length=logic.MAX_QUERY_CHARS, description="PromQL")
            ],
            time: Annotated[str | Omitted, Field(max_length=40, description=_TIME)] = None,
        ) -> InstantResult:
            return await logic.query(query, time, settings=s)

        @server.tool(
            name="metrics_query_range",
            description="PromQL over a window (default the last 15 minutes): each series "
            "with its last and max value; series and points capped (the step widens).",
            annotations=READ_ONLY,
            output_schema=None,
        )
        @as_tool_errors
        async def query_range(
            query: Annotated[
                str, Field(min_length=1, max_length=logic.MAX_QUERY_CHARS, description="PromQL")
            ],
            start: Annotated[str, Field(max_length=40, description=_TIME)] = "now-15m",
            end: Annotated[str | Omitted, Field(max_length=40, description=_TIME)] = None,
            step_seconds: Annotated[
                float | Omitted, Field(gt=0, le=86400, description="Resolution (seconds).")
            ] = None,
        ) -> RangeResult:
            return await logic.query_range(query, start, end, step_seconds, settings=s)

        @server.tool(
            name="metrics_targets",
            description="What Prometheus scrapes (job, instance), each last scrape's health.",
            annotations=READ_ONLY,
            output_schema=None,
        )
        @as_tool_errors
        async def targets() -> TargetList:
            return await logic.targets(settings=s)

    if s.mcp_resources_enabled:

        @server.resource(
            "metrics://status",
            name="metrics_status",
            description="The metrics source (PROMETHEUS_URL): configured, reachable, version.",
            mime_type="application/json",
        )
        async def status_resource() -> str:
            return to_json(await logic.status(settings=s))

    if s.mcp_prompts_enabled:

        @server.prompt(
            name="error_rate",
            description="Ask the model to read a scrape job's 5xx rate and latency.",
        )
        async def error_rate(
            job: Annotated[str, Field(max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")] = "backend",
        ) -> str:
            return (
                f"Call the metrics query_range tool for the scrape job {job!r}: first "
                f'100 * sum(rate({{__name__=~".+_http_requests_total", job="{job}", '
                f'status=~"5.."}}[5m])) / sum(rate({{__name__=~".+_http_requests_total", '
                f'job="{job}"}}[5m])), then histogram_quantile(0.95, sum by (le) (rate('
                f'{{__name__=~".+_request_duration_seconds_bucket", job="{job}"}}[5m]))). Say '
                "whether the error rate is over 5 % or the p95 over 500 ms, since when (the "
                "first point over it), and which other tool (logs error groups, circuits) "
                "should explain it."
            )

    return prompts_only_when_enabled(server, s)
