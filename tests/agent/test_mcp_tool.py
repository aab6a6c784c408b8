"""The ``diagnose`` tool on an MCP server, called by a real MCP client."""

from __future__ import annotations

import asyncio

from fastmcp import Client

from agent.mcp_tool import register_diagnose
from agent.models import Diagnosis
from evals.recorded import build_recorded_server
from tests.agent.conftest import scenario_data


def test_diagnose_tool_returns_a_grounded_diagnosis() -> None:
    server, state = build_recorded_server(scenario_data("redis-unreachable-memory-herring"))
    register_diagnose(server)

    async def run() -> None:
        async with Client(server) as client:
            tools = {t.name: t for t in await client.list_tools()}
            assert tools["diagnose"].annotations is not None
            assert tools["diagnose"].annotations.read_only_hint is True
            result = await client.call_tool(
                "diagnose", {"question": "API errors?", "focus": "redis", "window_minutes": 15}
            )
            diagnosis = Diagnosis.model_validate(result.structured_content)
            assert diagnosis.root_cause.component == "redis"
            assert diagnosis.root_cause.category == "unreachable"
            assert diagnosis.mode == "offline"
            assert diagnosis.evidence
            bad = await client.call_tool_mcp("diagnose", {"window_minutes": -5})
            assert bad.is_error

    asyncio.run(run())
    # the tool gathered through the server's own tools, never calling itself
    assert {name for name, _ in state.calls} == {
        "health_stack",
        "health_check",
        "circuits_breakers",
        "logs_errors",
        "timeline_recent",
    }
