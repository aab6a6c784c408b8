"""The one list of server areas (``servers.registry.AREAS``) is what every reader uses: the
``dev3000 mcp`` command, ``python -m servers`` and dev3000's aggregate (the docs: tests/docs/test_servers_doc.py)."""

from __future__ import annotations

import re
import subprocess
import sys

import anyio
from fastmcp import Client, FastMCP
from typer.testing import CliRunner

from dev3000.mcp_aggregate import build_aggregate_server
from dev3000.timeline.bus import EventBus
from guilde_core.config import Settings
from guilde_diag.cli import app
from servers.context import ServerContext
from servers.registry import AREAS, ServerArea


def test_every_area_is_a_lower_case_name_with_a_description() -> None:
    assert list(AREAS) == ["health", "circuits", "logs", "system", "metrics", "browser"]
    for name, area in AREAS.items():
        assert area.name == name
        assert re.fullmatch(r"[a-z][a-z0-9_]*", name)
        assert area.description
        assert "\n" not in area.description


def test_the_command_lists_every_area_and_the_aggregate() -> None:
    result = CliRunner().invoke(app, ["mcp", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for area in [*AREAS.values()]:
        assert f"{area.name}: {area.description}" in result.output
    assert "all: " in result.output
    unknown = CliRunner().invoke(app, ["mcp", "nope"])
    assert unknown.exit_code == 2
    assert ", ".join([*AREAS, "all"]) in unknown.output


def test_python_m_servers_offers_every_area() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "servers", "--help"], capture_output=True, text=True, timeout=60
    ).stdout
    assert "{" + ",".join(AREAS) + "}" in out


def test_an_area_added_to_the_list_is_mounted_by_the_aggregate() -> None:
    def build_extra(settings: Settings | None, context: ServerContext | None = None) -> FastMCP:
        server: FastMCP = FastMCP("extra")

        @server.tool(name="extra_ping")
        def ping() -> str:
            return "pong"

        return server

    extra = ServerArea("extra", "a fifth area", build_extra)
    server = build_aggregate_server(Settings(), bus=EventBus(10), areas=[*AREAS.values(), extra])

    async def run() -> set[str]:
        async with Client(server) as client:
            return {t.name for t in await client.list_tools()}

    names = anyio.run(run)
    assert "extra_*" in (server.instructions or "")
    assert "extra_ping" in names
    for area in AREAS:
        assert any(n.startswith(area + "_") for n in names), area


def test_every_area_names_its_tools_and_the_aggregate_keeps_the_names() -> None:
    """Each area server names its tools ``<area>_<tool>`` itself (the prefix keeps the
    areas apart in the aggregate, which mounts them as they are): a tool has one name,
    standalone and through dev3000, and no name stutters (``health_check_health``)."""
    settings = Settings(diagnostic_control_enabled=True)

    async def names(server: FastMCP) -> set[str]:
        async with Client(server) as client:
            return {t.name for t in await client.list_tools()}

    aggregate = anyio.run(names, build_aggregate_server(settings, bus=EventBus(10)))
    for name, area in AREAS.items():
        own = anyio.run(names, area.build(settings, None))
        assert own, name
        for tool in own:
            assert tool.startswith(name + "_"), tool
            words = tool.split("_")
            assert len(set(words)) == len(words), f"{tool} repeats a word"
        assert own <= aggregate, sorted(own - aggregate)
