"""Start-up of the processes users start, A/B against the baseline (``tools.bench.ab``).

    uv run python tools/bench/bench_start.py                 # 5 rounds, both rows (~2 min)
    uv run python tools/bench/bench_start.py --rounds 7 --only stdio

1. ``dev3000 mcp all --transport stdio``: spawn → ``initialize`` → ``tools/list`` answered
   (what Claude Desktop pays at every start), this tree vs the baseline commit, beside a
   minimal official-SDK server (one tool) as the floor; goal <= 1.5 s;
2. ``dev3000 serve``: spawn → ``/health`` 200, this tree vs the baseline, beside a bare
   Starlette app under uvicorn; goal <= 1.5 s.

Each process is a whole ``python`` process (byte-compiled trees, same virtual
environment), alternating for ``--rounds`` rounds; medians, min–max, spread, load average.
``--env NAME=VALUE`` adds to every process's environment (e.g. ``SENTRY_DSN=…`` to time
the Sentry set-up; nothing is sent: point it at a closed loopback port).
"""

from __future__ import annotations

import argparse
import functools
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools.bench import ab  # noqa: E402
from tools.harness import free_port  # noqa: E402

GOAL = 1.5

_MINIMAL = """
from mcp.server.mcpserver import MCPServer
server = MCPServer("minimal")
@server.tool()
def ping() -> str:
    return "pong"
server.run("stdio")
"""

_BARE = """
import sys, uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
async def health(request):
    return JSONResponse({"status": "healthy"})
uvicorn.run(Starlette(routes=[Route("/health", health)]), host="127.0.0.1",
            port=int(sys.argv[1]), log_level="warning")
"""


def _rpc(proc: subprocess.Popen[bytes], msg: dict[str, object]) -> None:
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(msg).encode() + b"\n")
    proc.stdin.flush()


def _answer(proc: subprocess.Popen[bytes], ident: int) -> dict[str, object]:
    assert proc.stdout is not None
    while True:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("the server closed stdout before answering")
        msg: dict[str, object] = json.loads(line)
        if msg.get("id") == ident:
            return msg


def stdio_to_tools_list(argv: list[str], env: dict[str, str], cwd: str) -> float:
    """Seconds from spawn to the ``tools/list`` answer over stdio."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=env, cwd=cwd)  # fmt: skip
    try:
        _rpc(proc, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "bench", "version": "0"}}})  # fmt: skip
        _answer(proc, 1)
        _rpc(proc, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        _rpc(proc, {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}})
        answer = _answer(proc, 2)
        elapsed = time.perf_counter() - started
        result = answer.get("result")
        tools = result.get("tools") if isinstance(result, dict) else None
        if not tools:
            raise RuntimeError(f"no tools listed: {str(answer)[:300]}")
        return elapsed
    finally:
        proc.kill()
        proc.wait()


def spawn_to_health(argv: list[str], env: dict[str, str], cwd: str, port: int) -> float:
    """Seconds from spawn to ``GET /health`` 200."""
    started = time.perf_counter()
    with ab.served(argv, env, cwd, f"http://127.0.0.1:{port}/health", timeout=120, status=200):
        return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=ab.MIN_ROUNDS)
    parser.add_argument("--baseline", default=ab.BASELINE_COMMIT, help="git revision")
    parser.add_argument("--only", default="stdio,serve", help="rows to run")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for every process")
    args = parser.parse_args(argv)
    only = set(args.only.split(","))
    work = Path(tempfile.mkdtemp(prefix="bench-start-"))
    (work / "logs").mkdir()
    extra = dict(item.split("=", 1) for item in args.env)
    base_env = {
        "DEV3000_LOG_PATHS": str(work / "logs"),
        "DEV3000_DATA_DIR": str(work / "data"),
        "PYTHONUNBUFFERED": "1",
        **extra,
    }
    cmd = [sys.executable, "-m", "guilde_diag.cli"]
    results: dict[str, bool] = {}
    with ab.baseline_tree(args.baseline) as base:
        trees = {"after (this tree)": ab.ROOT, f"before ({args.baseline[:7]})": base}
        if "stdio" in only:
            variants: dict[str, Callable[[], float]] = {
                name: functools.partial(
                    stdio_to_tools_list, [*cmd, "mcp", "all", "--transport", "stdio"],
                    ab.python_env(tree, base_env), str(work))
                for name, tree in trees.items()
            }  # fmt: skip
            variants["minimal official-SDK server"] = lambda: stdio_to_tools_list(
                [sys.executable, "-c", _MINIMAL], ab.python_env(ab.ROOT, base_env), str(work)
            )
            load = ab.load_average()
            series = ab.alternate(variants, rounds=args.rounds)
            ab.report("dev3000 mcp all --transport stdio: spawn -> tools/list", series,
                      unit="s", scale=1.0, load_before=load,
                      baseline=f"before ({args.baseline[:7]})")  # fmt: skip
            results["stdio"] = series["after (this tree)"].median <= GOAL
        if "serve" in only:

            def serve(tree: Path) -> float:
                port = free_port()
                env = ab.python_env(tree, {**base_env, "DEV3000_PORT": str(port)})
                return spawn_to_health([*cmd, "serve", "--port", str(port)], env, str(work), port)

            def bare() -> float:
                port = free_port()
                return spawn_to_health([sys.executable, "-c", _BARE, str(port)],
                                       ab.python_env(ab.ROOT, base_env), str(work), port)  # fmt: skip

            variants = {name: functools.partial(serve, tree) for name, tree in trees.items()}
            variants["bare Starlette app"] = bare
            load = ab.load_average()
            series = ab.alternate(variants, rounds=args.rounds)
            ab.report("dev3000 serve: spawn -> /health 200", series, unit="s", scale=1.0,
                      load_before=load, baseline=f"before ({args.baseline[:7]})")  # fmt: skip
            results["serve"] = series["after (this tree)"].median <= GOAL
    for row, met in results.items():
        print(f"   [{'met' if met else 'NOT met':>7}] {row}: <= {GOAL} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
