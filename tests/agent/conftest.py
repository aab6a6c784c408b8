"""Fixtures of the agent tests: scenario data and a replay MCP server served over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from evals.recorded import RecordedState, build_recorded_server
from evals.scenario import default_scenario_dir
from tools.harness import ServerThread

SCENARIOS = default_scenario_dir()


def scenario_data(name: str) -> dict[str, Any]:
    """The ``recorded`` block of a scenario of the suite."""
    raw = yaml.safe_load((SCENARIOS / name / "scenario.yaml").read_text(encoding="utf-8"))
    data: dict[str, Any] = raw["recorded"]
    return data


@pytest.fixture
def mcp_http() -> Iterator[tuple[str, RecordedState]]:
    """The db-unreachable scenario's replay server over streamable HTTP: (url, state)."""
    server, state = build_recorded_server(scenario_data("db-unreachable"))
    app = server.http_app(path="/mcp")
    with ServerThread(app) as srv:
        yield f"{srv.url}/mcp", state


def diagnose(server: Any, question: str, providers: str | None = None) -> Any:
    """One diagnosis of ``question`` over an in-process MCP server (offline unless
    ``providers`` names a chain); returns the :class:`~agent.models.Diagnosis`."""
    import asyncio

    from agent.mcp_client import DiagTools
    from agent.providers import ProviderChain, build_chain
    from agent.runner import DiagnosisAgent
    from guilde_core.config import get_settings

    async def run() -> Any:
        settings = get_settings()
        chain = build_chain(settings, providers) if providers else ProviderChain([], settings)
        try:
            async with DiagTools(server) as tools:
                agent = DiagnosisAgent(tools, chain, settings=settings)
                result = await agent.ask(question)
        finally:
            await chain.aclose()
        assert result.diagnosis is not None
        return result.diagnosis

    return asyncio.run(run())
