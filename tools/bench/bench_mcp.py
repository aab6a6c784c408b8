"""MCP ``tools/call`` through dev3000's aggregate ``/mcp``, A/B against the baseline.

    uv run python tools/bench/bench_mcp.py                      # 5 rounds x 100 calls (~2 min)
    uv run python tools/bench/bench_mcp.py --rounds 7 --calls 200

Three server processes are started once (loopback, one uvicorn worker each):

* ``dev3000 serve`` of this tree, ``/mcp`` (the aggregate);
* ``dev3000 serve`` of the baseline commit (``--baseline``), ``/mcp``;
* the logs server alone, ``dev3000 mcp logs --transport http`` (the direct call).

Each round, the official ``mcp`` client (streamable HTTP, one session per server, kept
open) times ``--calls`` calls of the same tool on each server in turn, alternating the
order (``tools.bench.ab``): ``logs_sources`` on the aggregates and on
the logs server. Reported: the median call of each round, their medians over the rounds,
min–max, spread, the load average, and the aggregate's ratio to the direct call (goal
<= 1.1x).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools.bench import ab  # noqa: E402
from tools.harness import free_port  # noqa: E402

GOAL = 1.1


@contextlib.asynccontextmanager
async def _session(url: str) -> AsyncIterator[Any]:
    import httpx2
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async with (
        httpx2.AsyncClient(timeout=60) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


#: the logs area's "list sources" tool, as each tree names it (this one: ``logs_sources``; the
#: baseline's aggregate ``logs_list_sources``, its server alone ``list_sources``)
SOURCES_TOOL = ("logs_sources", "logs_list_sources", "list_sources")


async def _sources_tool(session: Any) -> str:
    names = {tool.name for tool in (await session.list_tools()).tools}
    for name in SOURCES_TOOL:
        if name in names:
            return name
    raise RuntimeError(f"no list-sources tool among {sorted(names)}")


async def _round(session: Any, tool: str, calls: int) -> float:
    """The median seconds of ``calls`` calls."""
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        result = await session.call_tool(tool, {})
        times.append(time.perf_counter() - t0)
        if result.is_error:
            raise RuntimeError(f"{tool} failed: {result.content}")
    return statistics.median(times)


async def _measure(urls: dict[str, str], rounds: int, calls: int) -> dict[str, ab.Series]:
    async with contextlib.AsyncExitStack() as stack:
        sessions = {name: await stack.enter_async_context(_session(url))
                    for name, url in urls.items()}  # fmt: skip
        tools = {name: await _sources_tool(session) for name, session in sessions.items()}
        for name, tool in tools.items():  # warm up
            await _round(sessions[name], tool, 10)
        names = list(urls)
        series = {name: ab.Series(name) for name in names}
        for r in range(rounds):
            for name in names if r % 2 == 0 else names[::-1]:
                series[name].samples.append(await _round(sessions[name], tools[name], calls))
        return series


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=ab.MIN_ROUNDS)
    parser.add_argument("--calls", type=int, default=100, help="calls per server per round")
    parser.add_argument("--baseline", default=ab.BASELINE_COMMIT, help="git revision")
    args = parser.parse_args(argv)
    if args.rounds < ab.MIN_ROUNDS:
        raise SystemExit(f"at least {ab.MIN_ROUNDS} rounds")
    work = Path(tempfile.mkdtemp(prefix="bench-mcp-"))
    (work / "logs").mkdir()
    (work / "logs" / "app.log").write_text('{"level": "info", "message": "x"}\n')
    env = {
        "DEV3000_LOG_PATHS": str(work / "logs"),
        "DEV3000_DATA_DIR": str(work / "data"),
        "DIAGNOSTIC_RATE_LIMIT": "1000000",
        "DEV3000_LOG_LEVEL": "warning",
    }
    cmd = [sys.executable, "-m", "guilde_diag.cli"]
    before = f"before ({args.baseline[:7]})"
    load = ab.load_average()
    with ab.baseline_tree(args.baseline) as base, contextlib.ExitStack() as stack:
        urls: dict[str, str] = {}
        for name, tree in (("aggregate, after", ab.ROOT), (f"aggregate, {before}", base)):
            port = free_port()
            stack.enter_context(ab.served(
                [*cmd, "serve", "--port", str(port)], ab.python_env(tree, env), str(work),
                f"http://127.0.0.1:{port}/health"))  # fmt: skip
            urls[name] = f"http://127.0.0.1:{port}/mcp"
        port = free_port()
        stack.enter_context(ab.served(
            [*cmd, "mcp", "logs", "--transport", "http", "--port", str(port)],
            ab.python_env(ab.ROOT, env), str(work), f"http://127.0.0.1:{port}/mcp"))  # fmt: skip
        urls["logs server alone (direct)"] = f"http://127.0.0.1:{port}/mcp"
        series = asyncio.run(_measure(urls, args.rounds, args.calls))
    ab.report(f"MCP tools/call, median of {args.calls} calls per round", series,
              load_before=load, baseline="logs server alone (direct)")  # fmt: skip
    after = series["aggregate, after"].median / series["logs server alone (direct)"].median
    print(f"   [{'met' if after <= GOAL else 'NOT met':>7}] aggregate <= {GOAL}x the direct "
          f"call: {after:.2f}x")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
