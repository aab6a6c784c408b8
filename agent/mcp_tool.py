"""The ``diagnose`` MCP tool: the agent's gather + offline analysis, served by dev3000.

Registered on the aggregate MCP server (``register_diagnose(server)``) so Claude Desktop
or an IDE attached to dev3000 gets the same grounded findings without running the agent —
the counterpart of the original dev3000's ``fix_my_app``. The tool reaches the other tools
of the same server through an in-memory MCP client, exactly as the agent does over HTTP.
No LLM is involved: the answer is the offline engine's.
"""

from __future__ import annotations

from typing import Annotated

from fastmcp import FastMCP
from pydantic import Field

from agent.models import JsonObject
from guilde_core.config import Settings, get_settings

__all__ = ["DIAGNOSE_TOOL", "register_diagnose"]

DIAGNOSE_TOOL = "diagnose"


def register_diagnose(server: FastMCP, settings: Settings | None = None) -> None:
    """Add the ``diagnose`` tool to ``server`` (the aggregate, or any server with the tools)."""

    @server.tool(
        name=DIAGNOSE_TOOL,
        annotations={"readOnlyHint": True, "destructiveHint": False, "title": "Diagnose"},
    )
    async def diagnose(
        question: Annotated[
            str, Field(max_length=2000, description="The symptom to explain.")
        ] = "What is wrong with the system right now?",
        focus: Annotated[
            str | None,
            Field(max_length=100, description="Component to focus on, e.g. database, redis."),
        ] = None,
        window_minutes: Annotated[
            float | None, Field(gt=0, le=10080, description="Look back this many minutes.")
        ] = None,
    ) -> JsonObject:
        """Find the root cause: deep health, breakers, error groups and timeline in one pass,
        rule-based findings each citing numbered evidence, and recommendations."""
        from agent.mcp_client import DiagTools
        from agent.providers import ProviderChain
        from agent.runner import DiagnosisAgent

        active = settings or get_settings()
        async with DiagTools(server) as tools:
            agent = DiagnosisAgent(tools, ProviderChain([], active), settings=active)
            result = await agent.ask(question, focus=focus, window_minutes=window_minutes)
        assert result.diagnosis is not None
        return result.diagnosis.model_dump(mode="json", exclude={"session_id", "actions"})
