"""Fixtures of the agent tests: scenario data and a replay MCP server served over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.recorded import RecordedState, build_recorded_server
from tools.harness import ServerThread

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


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
