"""The MCP endpoint mounted in the dev3000 app, used by the official ``mcp`` client over
streamable HTTP (``/mcp``) and legacy SSE (``/sse``), behind the API-key guard."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from fastmcp import FastMCP
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

import dev3000.app
from tools.harness import ServerThread

KEY = "mcp-key-0123456789"


def _probe_server(settings: Any, bus: Any = None, context: Any = None) -> Any:
    def echo(text: str) -> str:
        """Echo the text back."""
        return f"echo:{text}"

    server: Any = FastMCP("probe")
    server.tool(echo)
    parent: Any = FastMCP(settings.mcp_server_name)
    parent.mount(server, namespace="probe")
    return parent


@pytest.fixture
def mcp_app(make_app: Callable[..., FastAPI], monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    monkeypatch.setattr(dev3000.app, "MCP_BUILDERS", [_probe_server])
    return make_app(mcp=True, diagnostic_auth_required=True, diagnostic_api_keys=f"{KEY}:read")


async def _use(session: ClientSession) -> tuple[list[str], str]:
    await session.initialize()
    tools = await session.list_tools()
    result = await session.call_tool("probe_echo", {"text": "hi"})
    text = "".join(getattr(c, "text", "") for c in result.content)
    return [t.name for t in tools.tools], text


def test_streamable_http_with_official_client(mcp_app: FastAPI) -> None:
    async def run(url: str) -> tuple[list[str], str]:
        async with (
            httpx2.AsyncClient(headers={"X-API-Key": KEY}, timeout=10) as http,
            streamable_http_client(url + "/mcp", http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            return await _use(session)

    with ServerThread(mcp_app) as srv:
        names, text = asyncio.run(asyncio.wait_for(run(srv.url), 30))
    assert "probe_echo" in names
    assert text == "echo:hi"


def test_sse_with_official_client(mcp_app: FastAPI) -> None:
    async def run(url: str) -> tuple[list[str], str]:
        async with (
            sse_client(url + "/sse", headers={"Authorization": f"Bearer {KEY}"}) as (read, write),
            ClientSession(read, write) as session,
        ):
            return await _use(session)

    with ServerThread(mcp_app) as srv:
        names, text = asyncio.run(asyncio.wait_for(run(srv.url), 30))
    assert "probe_echo" in names
    assert text == "echo:hi"


def test_mcp_client_without_key_is_refused(mcp_app: FastAPI) -> None:
    async def run(url: str) -> None:
        async with (
            httpx2.AsyncClient(timeout=10) as http,
            streamable_http_client(url + "/mcp", http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()

    with ServerThread(mcp_app) as srv, pytest.raises(ExceptionGroup) as err:
        asyncio.run(asyncio.wait_for(run(srv.url), 30))
    # the guard answers 401 (see test_auth); the client surfaces it as an MCP error
    assert "MCPError" in repr(err.value)
    assert "error response" in repr(err.value)


def test_default_aggregate_initializes(make_app: Callable[..., FastAPI]) -> None:
    async def run(url: str) -> str:
        async with (
            httpx2.AsyncClient(timeout=10) as http,
            streamable_http_client(url + "/mcp", http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            init = await session.initialize()
            await session.list_tools()
            return str(init.server_info.name)

    with ServerThread(make_app(mcp=True)) as srv:
        name = asyncio.run(asyncio.wait_for(run(srv.url), 30))
    assert name == "guilde-diag"
