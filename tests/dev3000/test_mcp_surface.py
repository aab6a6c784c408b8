"""The MCP surface an assistant reads: what ``tools/list`` costs, arguments an inspector can
fill, control tools only for a caller who may control, the documented resource URIs, no
prompts advertised while they are off, ``diagnose`` with progress and a typed answer, and
MCP on loopback outside the REST rate limit."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from fastmcp import Client, FastMCP
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from dev3000.mcp_aggregate import build_aggregate_server
from dev3000.timeline.bus import EventBus
from guilde_core.config import Settings
from guilde_diag.cli import diagnose_tool
from tests.docs.markdown import ROOT
from tools.harness import ServerThread

#: what ``tools/list`` of ``dev3000 mcp all`` may cost an assistant's context
TOOLS_LIST_BUDGET = 15_000
CONTROL_TOOLS = {
    "circuits_open",
    "circuits_close",
    "circuits_reset",
    "browser_navigate",
    "browser_click",
    "browser_fill",
    "browser_reload",
    "process_restart",
}


def _all(settings: Settings) -> FastMCP:
    """The aggregate as ``dev3000 mcp all`` builds it (with the agent's ``diagnose``)."""
    return build_aggregate_server(settings, bus=EventBus(10), extra_tools=[diagnose_tool])


def _list(server: FastMCP) -> Any:
    async def run() -> Any:
        async with Client(server) as client:
            return await client.session.list_tools()

    return anyio.run(run)


def test_tools_list_of_all_fits_the_budget() -> None:
    listed = _list(_all(Settings()))
    size = len(listed.model_dump_json(by_alias=True, exclude_none=True))
    assert size <= TOOLS_LIST_BUDGET, f"tools/list is {size} characters"
    names = [t.name for t in listed.tools]
    assert "health_stack" in names  # the one entry point to the state of the stack
    assert "health_stack" in (_all(Settings()).instructions or "")
    for gone in ("health_deep_health", "system_full_status", "health_check_health"):
        assert gone not in names
    # output schemas are compact: top-level fields and types, no nested definitions
    for tool in listed.tools:
        schema = json.dumps(tool.output_schema or {})
        assert "$defs" not in schema, tool.name
        assert "$ref" not in schema, tool.name
        assert len(schema) < 700, (tool.name, len(schema))


def test_every_argument_is_one_an_inspector_can_fill() -> None:
    """No ``anyOf``/``oneOf`` (``[array, null]``…): a list is a plain array of strings or
    of an enum, an optional value a plain type with its default."""
    listed = _list(_all(Settings(diagnostic_control_enabled=True)))
    arrays = 0
    for tool in listed.tools:
        for name, prop in (tool.input_schema.get("properties") or {}).items():
            where = f"{tool.name}.{name}"
            assert "anyOf" not in prop, where
            assert "oneOf" not in prop, where
            assert "type" in prop, where
            if prop["type"] == "array":
                arrays += 1
                assert prop["items"].get("type") == "string", where
                assert prop.get("default") == [], where
    assert arrays >= 5  # sources, kinds, include/exclude, names …


def _names(server: FastMCP) -> set[str]:
    return {t.name for t in _list(server).tools}


def test_control_tools_are_listed_only_when_control_is_enabled_for_the_caller() -> None:
    off = _names(_all(Settings()))
    assert not off & CONTROL_TOOLS
    assert {"circuits_breakers", "browser_errors", "process_list"} <= off
    # in process (the local operator): the switch lets it control
    on = _names(_all(Settings(diagnostic_control_enabled=True)))
    assert on - off == CONTROL_TOOLS
    # the standalone area servers apply the same gate
    from servers.circuits.server import build_server

    assert not {"circuits_open"} & _names(build_server(Settings()))
    assert "circuits_open" in _names(build_server(Settings(diagnostic_control_enabled=True)))


READ_KEY = "surface-read-0123456789"
CONTROL_KEY = "surface-ctl-0123456789"


@pytest.fixture
def guarded(make_app: Callable[..., FastAPI]) -> Iterator[str]:
    app = make_app(
        mcp=True,
        diagnostic_auth_required=True,
        diagnostic_control_enabled=True,
        diagnostic_api_keys=f"{READ_KEY}:read,{CONTROL_KEY}:read+control",
        diagnostic_rate_limit=3,
    )
    with ServerThread(app) as srv:
        yield srv.url


async def _http_tools(url: str, key: str) -> set[str]:
    async with (
        httpx2.AsyncClient(headers={"X-API-Key": key}, timeout=20) as http,
        streamable_http_client(url + "/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        return {t.name for t in (await session.list_tools()).tools}


def test_over_http_the_key_decides_whether_control_tools_are_listed(guarded: str) -> None:
    read = anyio.run(_http_tools, guarded, READ_KEY)
    control = anyio.run(_http_tools, guarded, CONTROL_KEY)
    assert "circuits_breakers" in read
    assert not read & CONTROL_TOOLS
    assert {"circuits_open", "circuits_close", "circuits_reset", "process_restart"} <= control


def test_mcp_on_loopback_is_not_throttled_by_the_rest_limit(guarded: str) -> None:
    """DIAGNOSTIC_RATE_LIMIT=3: an MCP session from 127.0.0.1 makes 12 calls; the REST API
    from the same address still meets the limit at its 4th request."""

    async def session() -> int:
        async with (
            httpx2.AsyncClient(headers={"X-API-Key": READ_KEY}, timeout=20) as http,
            streamable_http_client(guarded + "/mcp", http_client=http) as (read, write),
            ClientSession(read, write) as client,
        ):
            await client.initialize()
            ok = 0
            for _ in range(12):
                result = await client.call_tool("circuits_transitions", {})
                ok += not result.is_error
            return ok

    assert anyio.run(session) == 12
    statuses = [
        httpx.get(guarded + "/api/v1/timeline", headers={"X-API-Key": READ_KEY}).status_code
        for _ in range(4)
    ]
    assert statuses == [200, 200, 200, 429]


def test_mcp_from_elsewhere_still_counts(make_app: Callable[..., FastAPI]) -> None:
    """The TestClient's address (``testclient``) is not loopback: its MCP requests count."""
    with TestClient(make_app(mcp=True, diagnostic_rate_limit=2)) as client:
        body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        headers = {"Accept": "application/json, text/event-stream"}
        statuses = [client.post("/mcp", json=body, headers=headers).status_code for _ in range(3)]
    assert statuses[-1] == 429


def _documented_uris() -> list[str]:
    text = (ROOT / "docs" / "servers.md").read_text(encoding="utf-8")
    found = re.findall(r"`([a-z]+://[^`\s{}]+)`", text)
    return sorted({u for u in found if not u.startswith(("http://", "https://", "redis://"))})


def test_every_documented_resource_uri_resolves_on_the_aggregate() -> None:
    uris = _documented_uris()
    assert "health://summary" in uris
    assert "stack://topology" in uris

    async def run() -> dict[str, str]:
        out: dict[str, str] = {}
        async with Client(_all(Settings())) as client:
            listed = {str(r.uri) for r in await client.list_resources()}
            for uri in uris:
                assert uri in listed, uri
                if uri.startswith("browser://"):
                    continue  # listed; they answer only while a capture runs
                contents = await client.read_resource(uri)
                out[uri] = getattr(contents[0], "text", "")
            templates = {t.uri_template for t in await client.list_resource_templates()}
            assert {"health://targets/{name}", "circuits://breakers/{name}"} <= templates
        return out

    read = anyio.run(run)
    assert json.loads(read["stack://topology"])["status"]
    assert "breakers" in json.loads(read["circuits://breakers"])


def test_prompts_are_advertised_only_when_enabled() -> None:
    """On by default, and useful: ``triage_health`` carries the state of the stack."""

    async def run(settings: Settings) -> tuple[bool, list[str]]:
        async with Client(_all(settings)) as client:
            caps = client.session.server_capabilities
            assert caps is not None
            if caps.prompts is None:
                return False, []
            return True, [p.name for p in await client.list_prompts()]

    assert anyio.run(run, Settings(mcp_prompts_enabled=False)) == (False, [])
    on, prompts = anyio.run(run, Settings())  # on by default
    assert on
    assert {"triage_health", "investigate_errors", "explain_circuits"} <= set(prompts)

    async def triage() -> str:
        async with Client(_all(Settings())) as client:
            result = await client.get_prompt("triage_health")
            return str(getattr(result.messages[0].content, "text", ""))

    text = anyio.run(triage)
    assert '"nodes"' in text
    assert "health_history" in text


def test_diagnose_reports_progress_and_has_a_typed_output_schema() -> None:
    server = _all(Settings())
    listed = {t.name: t for t in _list(server).tools}
    schema = listed["diagnose"].output_schema
    assert schema is not None
    props = schema["properties"]
    assert props["root_cause"] == {"type": "object"}
    assert props["findings"] == {"type": "array"}
    assert props["status"] == {"type": "string"}
    assert "session_id" not in props
    assert "actions" not in props
    progress: list[tuple[float, str | None]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        del total
        progress.append((done, message))

    async def run() -> Any:
        async with Client(server) as client:
            return await client.call_tool(
                "diagnose", {"question": "is everything ok?"}, progress_handler=on_progress
            )

    result = anyio.run(run)
    assert not result.is_error
    assert result.structured_content is not None
    assert set(result.structured_content) <= set(props)
    messages = [m for _, m in progress]
    assert messages[0] == "gather"
    assert any(m and m.startswith("gather: health_stack") for m in messages)
    assert "analyse" in messages
    assert messages[-1] == "done"
    assert [d for d, _ in progress] == sorted(d for d, _ in progress)
