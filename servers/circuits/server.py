"""The circuits MCP server: a thin layer over :mod:`servers.circuits.logic`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastmcp import FastMCP
from pydantic import Field

from guilde_core.config import Settings, get_settings
from servers.circuits import logic
from servers.circuits.models import Action, BreakerList, ControlResult, TransitionList
from servers.common import (
    CONTROL,
    READ_ONLY,
    ControlGate,
    DiagServer,
    as_tool_errors,
    compact_schema,
    current_caller,
    prompts_only_when_enabled,
    to_json,
)
from servers.context import ServerContext

__all__ = ["build_server"]

Name = Annotated[
    str,
    Field(
        min_length=1,
        max_length=logic.NAME_MAX,
        pattern=logic.NAME_PATTERN,
        description="Breaker name.",
    ),
]
Reason = Annotated[
    str,
    Field(
        min_length=logic.REASON_MIN,
        max_length=logic.REASON_MAX,
        description="Why (recorded with the change and on the timeline).",
    ),
]


def build_server(settings: Settings | None = None, context: ServerContext | None = None) -> FastMCP:
    """The circuits server (tools, resources, prompt as enabled by MCP_*_ENABLED).

    ``context.audit`` receives the ``control_action`` event of every control action."""
    s = settings or get_settings()
    audit = context.audit if context is not None else None
    server: FastMCP = DiagServer(
        "guilde-diag-circuits",
        instructions="Circuit breakers shared across processes: state, failures, "
        "transitions; operators may force them open/closed when control is enabled.",
        middleware=[ControlGate(s)],
    )

    if s.mcp_tools_enabled:

        @server.tool(
            name="circuits_breakers",
            description="Circuit breakers (all, or the names given): state, status, "
            "failures, last error, seconds until half-open, configuration, and the store.",
            annotations=READ_ONLY,
            output_schema=compact_schema(BreakerList),
        )
        @as_tool_errors
        async def circuits_breakers(
            names: Annotated[Sequence[Name], Field(description="Only these breakers.")] = (),
        ) -> BreakerList:
            every = await logic.list_breakers(s)
            if not names:
                return every
            picked = [await logic.get_breaker(name, s) for name in dict.fromkeys(names)]
            return BreakerList(breakers=picked, store=every.store)

        @server.tool(
            name="circuits_transitions",
            description="Recent breaker state changes (closed/open/half-open), newest last.",
            annotations=READ_ONLY,
            output_schema=None,
        )
        @as_tool_errors
        async def circuits_transitions(
            limit: Annotated[int, Field(ge=1, le=500)] = 50,
        ) -> TransitionList:
            return await logic.recent_transitions(limit, s)

        for action, rule in logic.ACTIONS.items():
            _add_control(server, s, action, rule.effect, audit)

    if s.mcp_resources_enabled:

        @server.resource(
            "circuits://breakers",
            name="circuit_breakers",
            description="Every circuit breaker as JSON.",
            mime_type="application/json",
        )
        async def all_resource() -> str:
            return to_json(await logic.list_breakers(s))

        @server.resource(
            "circuits://breakers/{name}",
            name="circuit_breaker",
            description="One circuit breaker as JSON.",
            mime_type="application/json",
        )
        async def one_resource(name: str) -> str:
            return to_json(await logic.get_breaker(name, s))

    if s.mcp_prompts_enabled:

        @server.prompt(
            name="explain_circuits",
            description="Ask the model to explain which dependencies are failing fast.",
        )
        def explain_circuits() -> str:
            return (
                "Call circuits_breakers and circuits_transitions. For each breaker not closed, say "
                "which dependency it protects, since when, the last error, when it will try "
                "again (seconds until half-open) and whether forcing it is advisable."
            )

    return prompts_only_when_enabled(server, s)


def _add_control(
    server: FastMCP, s: Settings, action: Action, effect: str, audit: logic.AuditSink | None
) -> None:
    async def control(name: Name, reason: Reason) -> ControlResult:
        # per call: the caller of this request (its key, transport, posture) passes the gate
        return await logic.control(
            name, action, caller=current_caller(s), reason=reason, settings=s, audit=audit
        )

    control.__name__ = f"circuits_{action}"
    server.tool(
        as_tool_errors(control),
        name=f"circuits_{action}",
        description=f"{action.capitalize()} a circuit breaker ({effect}); control, with a "
        "reason (recorded on the timeline).",
        annotations=CONTROL,
        output_schema=compact_schema(ControlResult),
    )
