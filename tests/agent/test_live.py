"""Live: the agent against dev3000's real aggregate MCP server with real faults.

The aggregate (``dev3000.mcp_aggregate.build_aggregate_server``) mounts the real health,
circuits, logs and system servers; the agent reaches it through an in-memory MCP client.
Faults are real: PostgreSQL configured on a port where nothing listens, a log directory
with an exception repeated, a breaker forced open in the shared resilience registry.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastmcp import FastMCP
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from agent.models import Diagnosis
from guilde_core.config import get_settings
from tests.agent.conftest import diagnose
from tools.harness import ServerThread, free_port


async def _ok(request: Request) -> JSONResponse:
    return JSONResponse({"status": "healthy"})


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """Healthy HTTP targets, empty logs, no PostgreSQL/Redis configured; returns the log dir."""
    from agent.providers.resilience import reset_local_breakers

    logs = tmp_path / "logs"
    logs.mkdir()
    app = Starlette(routes=[Route("/{path:path}", _ok)])
    with ServerThread(app) as srv:
        for name in ("DEV3000_BACKEND_URL", "DEV3000_FRONTEND_URL", "DEV3000_AGENT_URL"):
            monkeypatch.setenv(name, srv.url)
        monkeypatch.setenv("DEV3000_LOG_PATHS", str(logs))
        monkeypatch.setenv("DEV3000_DATA_DIR", str(tmp_path / "data"))
        monkeypatch.setenv("HEALTH_WARN_API_LATENCY_MS", "5000")  # a loaded CI box is no fault
        for name in ("DATABASE_URL", "REDIS_URL", "CIRCUIT_BREAKER_REDIS_URL"):
            monkeypatch.delenv(name, raising=False)
        reset_local_breakers()
        yield logs
        reset_local_breakers()


def _aggregate() -> FastMCP:
    """The aggregate as ``dev3000 serve`` composes it: with the agent's diagnose tool."""
    from dev3000.mcp_aggregate import build_aggregate_server
    from guilde_diag.cli import diagnose_tool

    return build_aggregate_server(get_settings(), extra_tools=[diagnose_tool])


def test_live_database_refusing_connections(stack: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", f"postgresql://postgres@127.0.0.1:{free_port()}/test")
    d = diagnose(_aggregate(), "why is checkout failing?")
    assert (d.root_cause.component, d.root_cause.category) == ("database", "unreachable")
    assert "refused" in d.root_cause.summary.lower()
    tools = {e.tool for e in d.evidence}
    assert {"health_stack", "health_check", "circuits_breakers"} <= tools
    assert d.mode == "offline"


def test_live_error_spike_in_logs(stack: Path) -> None:
    now = datetime.now(UTC)
    lines = [
        json.dumps(
            {
                # inside the question's window: older evidence does not count
                "ts": (now - timedelta(seconds=60 - i)).isoformat().replace("+00:00", "Z"),
                "level": "error",
                "logger": "orders",
                "message": "unhandled error in apply_discount",
                "exc_info": 'Traceback (most recent call last):\n  File "pricing.py", '
                "line 9, in apply_discount\nKeyError: 'sku'",
            }
        )
        for i in range(40)
    ]
    (stack / "app.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    d = diagnose(_aggregate(), "why are some orders failing with 500?")
    assert d.root_cause.category == "error_spike"
    assert "apply_discount" in d.root_cause.summary
    assert any(e.tool == "logs_errors" for e in d.evidence)


def test_live_breaker_forced_open(stack: Path) -> None:
    from guilde_core.resilience import get_registry

    async def force() -> None:
        registry = get_registry()
        registry.breaker("payments")
        await registry.force_open("payments", reason="maintenance window")

    asyncio.run(force())
    d = diagnose(_aggregate(), "why are payments rejected immediately?")
    assert (d.root_cause.component, d.root_cause.category) == ("payments", "circuit_open"), [
        (f.severity, f.component, f.category, f.title, f.detail) for f in d.findings
    ]


def test_live_diagnose_tool_on_the_aggregate(stack: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fastmcp import Client

    # a password in the URL: the secret that must not reach the answer (the state of the
    # stack it cites names the database's host and user, which are not secrets)
    password = "pw-9f3c2b7e1d"
    monkeypatch.setenv(
        "DATABASE_URL", f"postgresql://postgres:{password}@127.0.0.1:{free_port()}/test"
    )
    server = _aggregate()

    async def call() -> Diagnosis:
        async with Client(server) as client:
            result = await client.call_tool("diagnose", {"question": "what is wrong?"})
        return Diagnosis.model_validate(result.structured_content)

    d = asyncio.run(call())
    assert (d.root_cause.component, d.root_cause.category) == ("database", "unreachable")
    assert os.environ["DATABASE_URL"] not in json.dumps(d.model_dump())
    assert password not in json.dumps(d.model_dump())
