"""The aggregate MCP server, used by the official ``mcp`` client over streamable HTTP and SSE."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

import anyio
import pytest
from fastmcp import FastMCP
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from dev3000.mcp_aggregate import RemoteServer, build_aggregate_server, parse_remotes
from dev3000.timeline.bus import EventBus
from guilde_core.config import Settings
from guilde_core.errors import ConfigurationError
from guilde_core.events import make_event
from servers.registry import AREAS
from tools.harness import ServerThread


@asynccontextmanager
async def mcp_session(url: str, transport: str = "http") -> AsyncIterator[ClientSession]:
    client = streamable_http_client(url) if transport == "http" else sse_client(url)
    async with client as streams, ClientSession(streams[0], streams[1]) as session:
        await session.initialize()
        yield session


Transport = Literal["http", "sse"]


def serve(server: FastMCP, transport: Transport = "http") -> ServerThread:
    path = "/mcp" if transport == "http" else "/sse"
    return ServerThread(server.http_app(path=path, transport=transport)).start()


@pytest.fixture
def served() -> Iterator[Callable[[FastMCP, Transport], str]]:
    threads: list[ServerThread] = []

    def start(server: FastMCP, transport: Transport = "http") -> str:
        thread = serve(server, transport)
        threads.append(thread)
        return thread.url + ("/mcp" if transport == "http" else "/sse")

    yield start
    for thread in threads:
        thread.stop()


def _bus_with_events() -> tuple[EventBus, list[Any]]:
    bus = EventBus(100)
    events = [
        make_event(source="health", kind="health_transition", severity="warning",
                   subject="redis", summary="redis healthy → degraded"),
        make_event(source="logs", kind="error_log", severity="error", subject="api.log",
                   summary="Traceback: KeyError token=sk-abcdefghijklmnopqrstuvwxyz123456"),
        make_event(source="config", kind="config_reload", subject="dev3000",
                   summary="configuration reloaded"),
    ]  # fmt: skip
    for event in events:
        bus.publish(event)
    return bus, events


@pytest.mark.parametrize("transport", ["http", "sse"])
def test_timeline_tool_and_resource_over_both_transports(
    transport: Transport, served: Callable[[FastMCP, Transport], str]
) -> None:
    bus, events = _bus_with_events()
    url = served(build_aggregate_server(Settings(), bus=bus), transport)

    async def run() -> None:
        async with mcp_session(url, transport) as session:
            tools = {t.name: t for t in (await session.list_tools()).tools}
            assert "timeline_recent" in tools
            assert tools["timeline_recent"].annotations is not None
            assert tools["timeline_recent"].annotations.read_only_hint is True
            everything = await session.call_tool("timeline_recent", {})
            assert not everything.is_error
            data = everything.structured_content
            assert data is not None
            assert [e["id"] for e in data["events"]] == [e.id for e in events]
            assert "sk-abcdefghijklmnopqrstuvwxyz123456" not in str(data)
            filtered = await session.call_tool(
                "timeline_recent", {"severity": "warning", "kinds": ["error_log"], "limit": 5}
            )
            assert filtered.structured_content is not None
            assert [e["id"] for e in filtered.structured_content["events"]] == [events[1].id]
            bad = await session.call_tool("timeline_recent", {"severity": "loud"})
            assert bad.is_error
            assert "Traceback" not in str(bad.content)
            resource = await session.read_resource("timeline://recent")
            text = resource.contents[0].text  # type: ignore[union-attr]
            assert events[2].id in text

    anyio.run(run)


@pytest.mark.parametrize("area", AREAS)
def test_each_area_is_mounted_under_its_namespace(
    area: str, served: Callable[[FastMCP, Transport], str]
) -> None:
    url = served(build_aggregate_server(Settings()), "http")

    async def run() -> None:
        async with mcp_session(url) as session:
            tools = [t for t in (await session.list_tools()).tools if t.name.startswith(area + "_")]
            assert tools, f"no {area}_* tools in the aggregate"
            # call one read-only tool that needs no arguments
            callable_tools = [
                t
                for t in tools
                if not (t.input_schema or {}).get("required")
                and t.annotations is not None
                and t.annotations.read_only_hint
            ]
            assert callable_tools, f"no argument-free read-only {area} tool"
            result = await session.call_tool(callable_tools[0].name, {})
            assert not result.is_error, result.content

    anyio.run(run)


REMOTE_SERVER = textwrap.dedent(
    """
    import sys
    from fastmcp import FastMCP

    server = FastMCP("stdio-remote")

    @server.tool(name="whoami")
    def whoami() -> str:
        return "stdio remote"

    server.run("stdio", show_banner=False)
    """
)


def test_remote_servers_over_http_and_stdio_appear_in_the_aggregate(
    served: Callable[[FastMCP, Transport], str], tmp_path: Path
) -> None:
    remote = FastMCP("remote")

    @remote.tool(name="echo")
    def echo(text: str) -> str:
        return f"remote says {text}"

    remote_url = served(remote, "http")
    script = tmp_path / "stdio_remote.py"
    script.write_text(REMOTE_SERVER)
    spec = f"far={remote_url}; local={sys.executable} {script}"
    settings = Settings(dev3000_mcp_remotes=spec)
    aggregate = build_aggregate_server(settings, bus=EventBus(10))
    url = served(aggregate, "http")

    async def run() -> None:
        async with mcp_session(url) as session:
            names = {t.name for t in (await session.list_tools()).tools}
            assert {"far_echo", "local_whoami", "timeline_recent"} <= names
            result = await session.call_tool("far_echo", {"text": "hi"})
            assert not result.is_error
            assert "remote says hi" in str(result.content)
            local = await session.call_tool("local_whoami", {})
            assert "stdio remote" in str(local.content)

    anyio.run(run)


def test_parse_remotes_accepts_urls_and_commands_and_names_bad_entries() -> None:
    remotes = parse_remotes(
        "a=http://10.0.0.2:3001/mcp; b = https://x.example/sse ;c=uvx some-server --flag"
    )
    assert [(r.name, r.transport) for r in remotes] == [("a", "http"), ("b", "sse"), ("c", "stdio")]
    assert remotes[2].command == ("uvx", "some-server", "--flag")
    assert parse_remotes(None) == []
    for bad, word in (
        ("noequals", "name="),
        ("Bad-Name=http://x", "lower-case"),
        ("health=http://x", "not one of"),
        ("a=http://x;a=http://y", "twice"),
        ("a=cmd 'unclosed", "quotation"),
    ):
        with pytest.raises(ConfigurationError) as info:
            parse_remotes(bad)
        assert word in str(info.value)
    assert RemoteServer("r", url="http://u:secret@h/mcp").describe()["target"] != (
        "http://u:secret@h/mcp"
    )


def test_extra_tools_are_added_without_editing_the_module(
    served: Callable[[FastMCP, Transport], str],
) -> None:
    def add_ping(server: FastMCP, settings: Settings) -> None:
        @server.tool(name="ping_extra")
        def ping_extra() -> str:
            return f"pong from {settings.mcp_server_name}"

    def add_other(server: FastMCP, settings: Settings) -> None:
        @server.tool(name="other_extra")
        def other_extra() -> str:
            return "other"

    url = served(
        build_aggregate_server(Settings(), bus=EventBus(10), extra_tools=[add_ping, add_other]),
        "http",
    )
    plain = served(build_aggregate_server(Settings(), bus=EventBus(10)), "http")

    async def run() -> None:
        async with mcp_session(url) as session:
            names = {t.name for t in (await session.list_tools()).tools}
            assert {"ping_extra", "other_extra"} <= names
            result = await session.call_tool("ping_extra", {})
            assert "pong from guilde-diag" in str(result.content)
        async with mcp_session(plain) as session:
            names = {t.name for t in (await session.list_tools()).tools}
            assert not {"ping_extra", "other_extra", "diagnose"} & names

    anyio.run(run)


def test_the_app_serves_the_aggregate_with_its_own_timeline(
    make_app: Callable[..., Any],
) -> None:
    """Inside ``dev3000 serve`` the timeline tool reads the app's bus (no bus passed)."""
    app = make_app(mcp=True)
    with ServerThread(app) as thread:
        event = app.state.dev3000.emit(
            kind="chaos", subject="sandbox", summary="fault injected: redis down"
        )

        async def run() -> None:
            async with mcp_session(thread.url + "/mcp") as session:
                result = await session.call_tool("timeline_recent", {"kinds": ["chaos"]})
                assert result.structured_content is not None
                ids = [e["id"] for e in result.structured_content["events"]]
                assert ids == [event.id]

        anyio.run(run)


def test_mcp_all_over_stdio_serves_every_area_and_a_live_timeline(tmp_path: Path) -> None:
    """``dev3000 mcp all --transport stdio`` as Claude Desktop would start it."""
    import os

    from mcp.client.stdio import StdioServerParameters, stdio_client

    logs = tmp_path / "logs"
    logs.mkdir()
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "guilde_diag.cli", "mcp", "all", "--transport", "stdio"],
        env={
            **os.environ,
            "DEV3000_ENV_FILE": os.devnull,
            "DEV3000_LOG_PATHS": str(logs),
            "DEV3000_DATA_DIR": str(tmp_path / "data"),
            "HEALTH_DEEP_CHECK_INTERVAL": "3600",
        },
        cwd=str(tmp_path),
    )

    async def run() -> None:
        with (tmp_path / "stderr.txt").open("w") as errlog:
            async with (
                stdio_client(params, errlog=errlog) as streams,
                ClientSession(streams[0], streams[1]) as session,
            ):
                await session.initialize()
                names = {t.name for t in (await session.list_tools()).tools}
                for prefix in (*AREAS, "timeline"):
                    assert any(n.startswith(prefix + "_") for n in names), prefix
                assert "diagnose" in names  # the agent's tool, composed in by the command
                (logs / "app.log").write_text("ERROR checkout failed: card declined\n")
                with anyio.fail_after(30):
                    while True:
                        result = await session.call_tool(
                            "timeline_recent", {"kinds": ["error_log"]}
                        )
                        assert result.structured_content is not None
                        summaries = [e["summary"] for e in result.structured_content["events"]]
                        if any("checkout failed" in s for s in summaries):
                            break
                        await anyio.sleep(0.3)

    anyio.run(run)
    assert (logs / "timeline" / "current").is_symlink()  # the timeline file of this session


def test_each_app_lends_its_mcp_servers_its_own_targets_and_timeline(
    make_app: Callable[..., Any], tmp_path: Path, stack_service: ServerThread
) -> None:
    """The app passes its runtime targets and its timeline to the aggregate it mounts —
    explicitly, so two apps in one process do not see each other's targets or events."""
    import httpx

    from dev3000.timeline.filters import EventFilter
    from guilde_core.resilience import BreakerRegistry, reset_registry

    reset_registry(BreakerRegistry())
    apps = [
        make_app(mcp=True, diagnostic_control_enabled=True, dev3000_data_dir=str(tmp_path / name))
        for name in ("a", "b")
    ]
    control = EventFilter(kinds=frozenset({"control_action"}))

    async def targets(session: ClientSession) -> dict[str, str]:
        listed = await session.call_tool("health_targets", {})
        assert listed.structured_content is not None
        return {t["name"]: t["source"] for t in listed.structured_content["targets"]}

    try:
        with ServerThread(apps[0]) as a, ServerThread(apps[1]) as b:
            added = httpx.post(
                a.url + "/api/v1/targets", json={"name": "only-in-a", "url": stack_service.url}
            )
            assert added.status_code == 201, added.text

            async def run() -> None:
                async with mcp_session(a.url + "/mcp") as session:
                    assert (await targets(session))["only-in-a"] == "registry"
                    opened = await session.call_tool(
                        "circuits_open", {"name": "openai", "reason": "provider outage"}
                    )
                    assert not opened.is_error, opened.content
                async with mcp_session(b.url + "/mcp") as session:
                    assert "only-in-a" not in await targets(session)

            anyio.run(run)
        recorded = apps[0].state.dev3000.bus.recent(10, control)
        # no key, development on loopback, control switched on: anonymous may act
        assert [(e.subject, e.data["key_id"], e.data["reason"]) for e in recorded] == [
            ("openai", "anonymous", "provider outage")
        ]
        assert apps[1].state.dev3000.bus.recent(10, control) == []
    finally:
        reset_registry()


def test_an_area_tool_is_resolved_once_and_runs_without_the_areas_pipeline(
    tmp_path: Path,
) -> None:
    """The aggregate serves an area's tools itself: a call neither asks the mounted area
    for the tool nor runs the area's call pipeline (its middleware sees nothing), while
    its resources still come through the mount under their own URIs."""
    import asyncio

    from fastmcp import Client
    from fastmcp.server.middleware import Middleware, MiddlewareContext

    from servers.registry import ServerArea

    seen: list[str] = []

    class Count(Middleware):
        async def on_call_tool(self, context: MiddlewareContext[Any], call_next: Any) -> Any:
            seen.append("call")
            return await call_next(context)

        async def on_read_resource(self, context: MiddlewareContext[Any], call_next: Any) -> Any:
            seen.append("read")
            return await call_next(context)

    def build(settings: Settings | None, context: Any = None) -> FastMCP:
        area: FastMCP = FastMCP("probe")
        area.add_middleware(Count())

        @area.tool(name="probe_echo")
        def echo(text: str) -> str:
            return f"echo: {text}"

        @area.resource("probe://state")
        def state() -> str:
            return "ok"

        return area

    settings = Settings(dev3000_log_paths=[str(tmp_path)])
    server = build_aggregate_server(settings, areas=[ServerArea("probe", "a probe", build)])

    async def run() -> tuple[list[str], str, str]:
        async with Client(server) as client:
            names = [t.name for t in await client.list_tools()]
            result = await client.call_tool("probe_echo", {"text": "hi"})
            contents = await client.read_resource("probe://state")
            return names, str(result.data), str(getattr(contents[0], "text", ""))

    names, answer, resource = asyncio.run(run())
    assert names.count("probe_echo") == 1
    assert answer == "echo: hi"
    assert resource == "ok"
    assert seen == ["read"]  # the resource went through the area; the tool call did not
