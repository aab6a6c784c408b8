"""The ``diagnose`` MCP tool: the agent's gather + offline analysis, served by dev3000.

Registered on the aggregate MCP server (``register_diagnose(server)``) so Claude Desktop
or an IDE attached to dev3000 gets the same grounded findings without running the agent —
the counterpart of the original dev3000's ``fix_my_app``. The tool reaches the other tools
of the same server through an in-memory MCP client, exactly as the agent does over HTTP.
No LLM is involved: the answer is the offline engine's.

The tool reports its progress (``notifications/progress`` when the caller sent a progress
token): one notification per step of the run — each phase, each tool call of the first pass
and its outcome, each finding — and its output schema types the answer (a
:class:`agent.models.Diagnosis` without the session's fields).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated

from fastmcp import Context, FastMCP
from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

from agent.models import Diagnosis, JsonObject
from guilde_core.config import Settings, get_settings
from guilde_core.schemas import compact_schema

__all__ = ["DIAGNOSE_TOOL", "OUTPUT_FIELDS", "progress_message", "register_diagnose"]

DIAGNOSE_TOOL = "diagnose"
#: the fields of the answer (the session's own are left out)
OUTPUT_FIELDS = {
    name: field
    for name, field in Diagnosis.model_fields.items()
    if name not in ("session_id", "actions")
}


def _output_schema() -> dict[str, object]:
    schema = compact_schema(Diagnosis)
    props = schema["properties"]
    schema["properties"] = {k: v for k, v in props.items() if k in OUTPUT_FIELDS}
    return schema


def progress_message(event: dict[str, object]) -> str | None:
    """One line for a progress notification, from one of the run's events (None: none)."""
    kind = event.get("type")
    if kind == "phase":
        return f"{event.get('phase')}"
    if kind == "tool":
        ok = event.get("ok")
        state = "" if ok is None else (" ok" if ok else " failed")
        return f"{event.get('phase', 'tool')}: {event.get('tool')}{state}"
    if kind == "finding":
        return f"finding: {event.get('title', event.get('id', ''))}"
    if kind == "diagnosis":
        return "done"
    return None


def register_diagnose(server: FastMCP, settings: Settings | None = None) -> None:
    """Add the ``diagnose`` tool to ``server`` (the aggregate, or any server with the tools)."""

    # the description is given, not a docstring: FastMCP parses a tool function's docstring
    # with griffe, an import of 0.15 s at every server start (tools/bench/bench_start.py)
    @server.tool(
        name=DIAGNOSE_TOOL,
        description="Root cause of a symptom with its chain and evidence (reports progress).",
        annotations={"readOnlyHint": True, "title": "Diagnose"},
        output_schema=_output_schema(),
    )
    async def diagnose(
        ctx: Context,
        question: Annotated[
            str, Field(max_length=2000, description="The symptom to explain.")
        ] = "What is wrong with the system right now?",
        focus: Annotated[
            str | SkipJsonSchema[None],
            Field(max_length=100, description="Component to focus on, e.g. database."),
        ] = None,
        window_minutes: Annotated[
            float | SkipJsonSchema[None],
            Field(gt=0, le=10080, description="Look back this many minutes."),
        ] = None,
    ) -> JsonObject:
        from agent.mcp_client import DiagTools
        from agent.providers import ProviderChain
        from agent.runner import DiagnosisAgent

        active = settings or get_settings()
        steps: asyncio.Queue[str | None] = asyncio.Queue()

        def on_event(event: dict[str, object]) -> None:
            message = progress_message(event)
            if message is not None:
                steps.put_nowait(message)

        async def report() -> None:
            done = 0
            while (message := await steps.get()) is not None:
                done += 1
                with contextlib.suppress(Exception):  # a client gone away stops nothing
                    await ctx.report_progress(done, None, message)

        reporter = asyncio.create_task(report())
        try:
            async with DiagTools(server) as tools:
                agent = DiagnosisAgent(
                    tools, ProviderChain([], active), settings=active, on_event=on_event
                )
                result = await agent.ask(question, focus=focus, window_minutes=window_minutes)
        finally:
            steps.put_nowait(None)
            await reporter
        assert result.diagnosis is not None
        return result.diagnosis.model_dump(mode="json", exclude={"session_id", "actions"})
