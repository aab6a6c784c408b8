"""DiagTools over streamable HTTP with the official ``mcp`` client, against dev3000 itself,
and what ``dev3000 ask`` imports (what it does not is what makes it start fast)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.mcp_client import DiagTools
from evals.recorded import RecordedState
from guilde_core.config import Settings
from guilde_core.errors import AuthenticationError, ConnectionFailedError
from tools.harness import ServerThread, free_port

KEY = "k-mcp-client-test-7f3a"


@pytest.fixture
def secured_dev3000(tmp_path: Path) -> Iterator[str]:
    """dev3000 (HTTP app with its aggregate MCP endpoint) that requires an API key."""
    from dev3000.app import create_app

    settings = Settings(
        diagnostic_auth_required=True,
        diagnostic_api_keys=f"{KEY}:read",
        dev3000_backend_url="http://127.0.0.1:9",
        dev3000_agent_url="",
        dev3000_frontend_url="",
        dev3000_log_paths=[str(tmp_path / "logs")],
        dev3000_data_dir=str(tmp_path / "data"),
    )
    with ServerThread(create_app(settings, mcp=True)) as server:
        yield f"{server.url}/mcp"


def test_api_key_accepted_refused_and_missing(secured_dev3000: str) -> None:
    async def run() -> None:
        async with DiagTools(secured_dev3000, api_key=KEY) as tools:
            assert tools.find("targets") == "health_targets"
            listed = await tools.call("health_targets")
            assert listed.ok
            assert isinstance(listed.data, dict)
            assert "targets" in listed.data
            unknown = await tools.call("no_such_tool")
            assert not unknown.ok
            assert unknown.error
        for key in ("wrong-key", None):
            with pytest.raises(AuthenticationError, match="rejected the API key") as refused:
                async with DiagTools(secured_dev3000, api_key=key):
                    pass
            assert refused.value.status_code == 401
            assert KEY not in str(refused.value)

    asyncio.run(run())


def test_nothing_listening_is_a_connection_error() -> None:
    async def run() -> None:
        async with DiagTools(f"http://127.0.0.1:{free_port()}/mcp"):
            pass

    with pytest.raises(
        ConnectionFailedError, match="cannot reach the dev3000 MCP endpoint at http"
    ):
        asyncio.run(run())


#: what `dev3000 ask` must not import over a URL in offline mode: FastMCP (its client's auth
#: stack pulls key-value stores and beartype), the output-schema validator, the LLM SDKs
HEAVY = ("fastmcp", "key_value", "beartype", "jsonschema", "openai", "anthropic")


def test_ask_imports_neither_fastmcp_nor_the_llm_path(
    mcp_http: tuple[str, RecordedState],
) -> None:
    url, _ = mcp_http
    script = Path(sys.executable).with_name("dev3000")
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", str(script), "ask", "--url", url, "-q", "why?"],
        env={**os.environ, "AGENT_PROVIDERS": "offline"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Root cause" in proc.stdout
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    }
    assert "mcp.client.streamable_http" in imported
    assert "langgraph.graph" in imported  # the graph runs the diagnosis
    heavy = sorted(m for m in imported if m.split(".")[0] in HEAVY)
    assert heavy == []
