"""Every server through the official ``mcp`` client: spawned over stdio (``python -m
servers`` and ``dev3000 mcp``), and over streamable HTTP; every tool listed and called."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from guilde_core.config import Settings
from guilde_core.stack import StackModel
from servers.registry import AREAS as REGISTRY
from tests.servers.conftest import Behaviour, server_env, stdio_session
from tools.harness import ManagedProcess, PrivateRedis, free_port, wait_for_http

PY = [sys.executable, "-m", "servers"]
AREAS = tuple(REGISTRY)

#: arguments for every tool of every server (a tool missing here fails the test)
ARGS: dict[str, dict[str, dict[str, Any]]] = {
    "logs": {
        "logs_sources": {},
        "logs_tail": {"lines": 5},
        "logs_search": {"query": "payment failed", "context": 1},
        "logs_errors": {},
        "logs_trace": {"correlation_id": "req-trace-42"},
    },
    "health": {
        "health_check": {"scope": "deep", "exclude": ["backend", "agent", "frontend"]},
        "health_targets": {},
        "health_history": {"name": "memory"},
        "health_stack": {},
    },
    "system": {
        "system_overview": {},
        "system_processes": {"limit": 3},
        "system_connections": {},
        "system_tasks": {},
        "system_versions": {},
        "system_config": {"prefix": "HEALTH_"},
        "system_observability": {},
    },
    # with no PROMETHEUS_URL they answer a tool error naming the setting, never a secret
    "metrics": {
        "metrics_status": {},
        "metrics_query": {"query": "up"},
        "metrics_query_range": {"query": "up"},
        "metrics_targets": {},
    },
    # read tools only (with no capture running they answer a tool error, never a secret)
    "browser": {
        "browser_status": {},
        "browser_errors": {"limit": 5},
        "browser_screenshot": {},
    },
}
#: prompts each area offers when MCP_PROMPTS_ENABLED (the browser's page is read, not prompted)
PROMPTS = {"logs": 1, "health": 1, "circuits": 1, "system": 1, "metrics": 1, "browser": 0}


async def call_every_tool(session: ClientSession, area: str) -> dict[str, Any]:
    tools = {t.name: t for t in (await session.list_tools()).tools}
    assert set(tools) == set(ARGS[area]), f"tools changed: {sorted(tools)}"
    out: dict[str, Any] = {}
    for name, args in ARGS[area].items():
        tool = tools[name]
        assert tool.description
        assert tool.annotations is not None
        assert tool.annotations.read_only_hint is True
        result = await session.call_tool(name, args)
        assert not result.is_error, (name, result.content)
        out[name] = result.structured_content
    return out


@pytest.mark.parametrize("area", ["logs", "health", "system"])
def test_each_server_over_stdio(area: str, log_dir: Path) -> None:
    env = server_env(DEV3000_LOG_PATHS=str(log_dir), MCP_PROMPTS_ENABLED="true")

    dev3000 = shutil.which("dev3000", path=str(Path(sys.executable).parent))
    assert dev3000 is not None
    # logs through the real command line, the others through ``python -m servers``
    argv = [dev3000, "mcp", area, "--transport", "stdio"] if area == "logs" else [*PY, area]

    async def scenario() -> None:
        async with stdio_session(argv, env) as session:
            out = await call_every_tool(session, area)
            if area == "logs":
                assert out["logs_search"]["matched"] == 2
                assert out["logs_trace"]["entries"][0]["source"] == "api.log.2.gz"
                bad = await session.call_tool("logs_tail", {"sources": ["../../etc/passwd"]})
                assert bad.is_error
                assert "Traceback" not in str(bad.content)
                resource = await session.read_resource("logs://sources")
                assert "api.log" in resource.contents[0].text  # type: ignore[union-attr]
            if area == "health":
                assert out["health_history"]["results"]
                assert {c["name"] for c in out["health_check"]["checks"]} >= {"memory", "disk"}
                missing = await session.call_tool("health_check", {"include": ["ghost"]})
                assert missing.is_error
                assert "health_targets" in str(missing.content)
                prompts = (await session.list_prompts()).prompts
                assert [p.name for p in prompts] == ["triage_health"]
                text = await session.read_resource("health://targets/memory")
                assert '"name": "memory"' in text.contents[0].text  # type: ignore[union-attr]
                # the stack model, compact (checked against its output schema by the client)
                model = StackModel.model_validate(out["health_stack"])
                assert model.node("backend").status == "unhealthy"  # nothing listens there
                assert model.node("backend").cause is not None
                assert model.node("agent").absent  # non-critical and never answered
                agent = next(n for n in out["health_stack"]["nodes"] if n["id"] == "agent")
                assert "ever_up" not in agent  # fields at their default are left out
                assert model.node("host/memory").ever_up
                same = await session.read_resource("stack://topology")
                text_model = json.loads(same.contents[0].text)  # type: ignore[union-attr]
                assert {n["id"] for n in text_model["nodes"]} == {n.id for n in model.nodes}
            if area == "system":
                names = {e["name"] for e in out["system_config"]["entries"]}
                assert "HEALTH_CHECK_TIMEOUT" in names

    anyio.run(scenario)


def test_switches_hide_tools_resources_and_prompts(log_dir: Path) -> None:
    from fastmcp import Client

    from servers.cli import build

    async def scenario() -> None:
        for area in AREAS:
            off = Settings(dev3000_log_paths=[str(log_dir)], mcp_tools_enabled=False,
                           mcp_resources_enabled=False, mcp_prompts_enabled=False)  # fmt: skip
            async with Client(build(area, off)) as client:
                assert await client.list_tools() == []
                assert await client.list_resources() == []
                assert await client.list_resource_templates() == []
                # prompts off: not even advertised (no empty list shown as a feature)
                assert client.session.server_capabilities is not None
                assert client.session.server_capabilities.prompts is None
            on = Settings(dev3000_log_paths=[str(log_dir)], mcp_prompts_enabled=True)
            async with Client(build(area, on)) as client:
                assert await client.list_tools()
                assert await client.list_resources()
                assert len(await client.list_prompts()) == PROMPTS[area]

    anyio.run(scenario)


def test_health_server_over_streamable_http(target: tuple[str, Behaviour], tmp_path: Path) -> None:
    url, b = target
    targets = tmp_path / "targets.json"
    targets.write_text(json.dumps([{"name": "api", "kind": "http", "url": url,
                                     "path": "/health", "critical": True}]))  # fmt: skip
    port = free_port()
    env = server_env(DEV3000_TARGETS_FILE=str(targets), HEALTH_CHECK_CACHE_TTL="0.01")
    argv = [*PY, "health", "--transport", "http", "--host", "127.0.0.1", "--port", str(port)]
    with ManagedProcess(argv, env=env) as proc:
        del proc
        wait_for_http(f"http://127.0.0.1:{port}/mcp", timeout=30)

        async def scenario() -> None:
            async with (
                streamable_http_client(f"http://127.0.0.1:{port}/mcp") as streams,
                ClientSession(streams[0], streams[1]) as session,
            ):
                await session.initialize()
                await call_every_tool(session, "health")
                args = {"include": ["api"], "fresh": True}
                ok = await session.call_tool("health_check", args)
                assert ok.structured_content is not None
                assert ok.structured_content["checks"][0]["status"] == "healthy"
                b.status = 503
                bad = await session.call_tool("health_check", args)
                assert bad.structured_content is not None
                assert bad.structured_content["checks"][0]["status"] == "unhealthy"

        anyio.run(scenario)


def test_circuits_server_sees_other_processes_breakers_and_controls_them(
    private_redis: PrivateRedis,
) -> None:
    from guilde_core.resilience import BreakerRegistry

    async def fail() -> None:
        raise ConnectionError("payments gateway down")

    async def scenario() -> None:
        registry = BreakerRegistry(redis_url=private_redis.url, settings=Settings())
        breaker = registry.breaker("payments")
        for _ in range(10):
            with contextlib.suppress(Exception):
                await breaker.call(fail)
        env = server_env(CIRCUIT_BREAKER_REDIS_URL=private_redis.url,
                         DIAGNOSTIC_CONTROL_ENABLED="true")  # fmt: skip
        async with stdio_session([*PY, "circuits"], env) as session:
            tools = {t.name: t for t in (await session.list_tools()).tools}
            assert set(tools) == {
                "circuits_breakers", "circuits_transitions",
                "circuits_open", "circuits_close", "circuits_reset",
            }  # fmt: skip
            for name in ("circuits_open", "circuits_close", "circuits_reset"):
                ann = tools[name].annotations
                assert ann is not None
                assert ann.destructive_hint is True
                assert ann.read_only_hint is False
            listed = await session.call_tool("circuits_breakers", {})
            assert listed.structured_content is not None
            states = {b["name"]: b for b in listed.structured_content["breakers"]}
            assert states["payments"]["state"] == "open"
            assert states["payments"]["failure_count"] >= 1
            assert states["payments"]["seconds_until_half_open"] is not None
            one = await session.call_tool("circuits_breakers", {"names": ["payments"]})
            assert one.structured_content is not None
            assert [b["name"] for b in one.structured_content["breakers"]] == ["payments"]
            assert not (await session.call_tool("circuits_transitions", {})).is_error
            missing = await session.call_tool("circuits_breakers", {"names": ["ghost"]})
            assert missing.is_error
            no_reason = await session.call_tool("circuits_close", {"name": "payments"})
            assert no_reason.is_error
            closed = await session.call_tool(
                "circuits_close", {"name": "payments", "reason": "gateway recovered"}
            )
            assert not closed.is_error, closed.content
            assert closed.structured_content is not None
            assert closed.structured_content["breaker"]["state"] == "closed"
            opened = await session.call_tool(
                "circuits_open", {"name": "payments", "reason": "maintenance window"}
            )
            assert opened.structured_content is not None
            assert opened.structured_content["breaker"]["state"] == "open"
            reset = await session.call_tool(
                "circuits_reset", {"name": "payments", "reason": "maintenance done"}
            )
            assert reset.structured_content is not None
            assert reset.structured_content["breaker"]["state"] == "closed"
        # the change made through MCP is visible to this (other) process through Redis
        await asyncio.sleep(1.1)  # the registry's read cache (cache_ttl=1.0)
        snap = await registry.snapshot("payments")
        assert str(snap.state) == "closed"
        await registry.aclose()

    anyio.run(scenario)


def test_circuit_control_is_refused_unless_enabled() -> None:
    from fastmcp import Client

    from guilde_core.resilience import reset_registry
    from servers.circuits.server import build_server

    async def scenario() -> None:
        reset_registry()
        try:
            async with Client(build_server(Settings())) as client:
                refused = await client.call_tool(
                    "circuits_open", {"name": "payments", "reason": "testing"}, raise_on_error=False
                )
                assert refused.is_error
                assert "DIAGNOSTIC_CONTROL_ENABLED" in str(refused.content)
                assert "Traceback" not in str(refused.content)
        finally:
            reset_registry()

    anyio.run(scenario)


def test_circuit_control_tools_use_the_adapter_rules() -> None:
    """Trimmed reasons, configured breakers controllable before first use, and every action
    recorded through the host's audit sink (``ServerContext.audit``)."""
    from fastmcp import Client

    from guilde_core.events import TimelineEvent
    from guilde_core.resilience import reset_registry
    from servers.circuits.server import build_server
    from servers.context import ServerContext

    events: list[TimelineEvent] = []

    async def scenario() -> None:
        reset_registry()
        server = build_server(
            Settings(diagnostic_control_enabled=True), ServerContext(audit=events.append)
        )
        try:
            async with Client(server) as client:
                short = await client.call_tool(
                    "circuits_open", {"name": "openai", "reason": "   ab  "}, raise_on_error=False
                )
                assert short.is_error
                assert "reason of 3-500 characters" in str(short.content)
                opened = await client.call_tool(
                    "circuits_open", {"name": "openai", "reason": "  provider outage "}
                )
                assert opened.structured_content is not None
                assert opened.structured_content["reason"] == "provider outage"
                # in process: the local operator, given control by the switch
                assert opened.structured_content["actor"] == "local"
                assert opened.structured_content["breaker"]["state"] == "open"
                assert opened.structured_content["breaker"]["status"] == "unhealthy"
        finally:
            reset_registry()

    anyio.run(scenario)
    assert [(e.kind, e.subject, e.data["reason"], e.data["surface"]) for e in events] == [
        ("control_action", "openai", "provider outage", "stdio")
    ]
