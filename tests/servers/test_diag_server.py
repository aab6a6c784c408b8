"""DiagServer (every area's and the aggregate's FastMCP server): its session state is made at
the first write, not at the first ``tools/list``, and still holds what is written."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

from fastmcp import Client, Context

from servers.common import DiagServer


def _server() -> DiagServer:
    server = DiagServer("t")

    @server.tool
    async def remember(value: str, ctx: Context) -> str:
        before = await ctx.get_state("note")
        await ctx.set_state("note", value)
        return f"{before} -> {await ctx.get_state('note')}"

    @server.tool
    async def hide_secret(ctx: Context) -> str:
        await ctx.disable_components(names={"secret"})
        return "hidden"

    @server.tool
    def secret() -> str:
        return "s"

    return server


def test_state_and_session_visibility_still_work() -> None:
    async def run() -> tuple[list[str], str, list[str]]:
        async with Client(_server()) as client:
            before = [t.name for t in await client.list_tools()]
            noted = (await client.call_tool("remember", {"value": "kept"})).data
            await client.call_tool("hide_secret", {})
            after = [t.name for t in await client.list_tools()]
        return before, noted, after

    before, noted, after = asyncio.run(run())
    assert "secret" in before
    assert noted == "None -> kept"
    assert "secret" not in after
    assert "remember" in after


_STDIO_SERVER = """
import sys
from servers.common import DiagServer
server = DiagServer("t")
@server.tool
def ping() -> str:
    return "pong"
server.run("stdio", show_banner=False)
print(sorted(m for m in sys.modules if m.startswith(("key_value", "beartype"))), file=sys.stderr)
"""


def test_listing_tools_over_stdio_makes_no_state_store() -> None:
    # making it imports py-key-value and beartype: a quarter of a second of a stdio start
    messages = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    ]  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-c", _STDIO_SERVER],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdin is not None
        assert proc.stdout is not None
        proc.stdin.write("".join(json.dumps(m) + "\n" for m in messages))
        proc.stdin.flush()
        # the answer to tools/list before the end of input (the server stops at it)
        listed = next(r for r in map(json.loads, proc.stdout) if r.get("id") == 2)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert [t["name"] for t in listed["result"]["tools"]] == ["ping"]
    assert err.strip().splitlines()[-1] == "[]", err[-2000:]
