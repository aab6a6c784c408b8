"""Benchmark: offline diagnosis of a scenario end to end against a running dev3000 (goal:
under 2 s).

Unless ``--url`` names a running dev3000, starts — each in its own process, state in a
temporary directory — the sandbox (``python -m tools.sandbox``) with the scenario's chaos
faults injected and its traffic driven (``--scenario``, default ``db-unreachable``; its
``faults`` and ``traffic``), and ``dev3000 serve`` pointed at it (backend probes, log
directory). Then runs the agent in offline mode ``--runs`` times over streamable HTTP MCP and
prints the diagnosis it reached, and per run and as medians: total time, time per phase
(connect, gather, analyse, conclude), the number of MCP calls and the time of each tool.
Beside it, in the same run, the baseline: the same agent over an in-process replay server
(the scenario's recorded outputs, no checks, no network) — the agent's own overhead.

    uv run python tools/bench/bench_agent.py            # ~15 s
    uv run python tools/bench/bench_agent.py --scenario pool-exhausted-chain
    uv run python tools/bench/bench_agent.py --runs 20 --url http://127.0.0.1:3001/mcp
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import yaml

from agent.mcp_client import DiagTools
from agent.providers import ProviderChain
from agent.runner import DiagnosisAgent
from evals.recorded import build_recorded_server
from evals.scenario import default_scenario_dir
from guilde_core.config import get_settings


async def one_run(target: Any, question: str) -> tuple[dict[str, float], Any]:
    marks: dict[str, float] = {}
    settings = get_settings()
    t0 = time.perf_counter()

    def on_event(event: dict[str, Any]) -> None:
        if event.get("type") == "phase":
            marks.setdefault(str(event["phase"]), time.perf_counter())

    tool_ms: dict[str, float] = {}

    def on_call(outcome: Any) -> None:
        tool_ms[outcome.name] = outcome.duration_ms

    async with DiagTools(target, on_call=on_call) as tools:
        t_connected = time.perf_counter()
        agent = DiagnosisAgent(
            tools, ProviderChain([], settings), settings=settings, on_event=on_event
        )
        result = await agent.ask(question)
        t_end = time.perf_counter()
        calls = tools.calls
    assert result.diagnosis is not None
    gather_t = marks.get("gather", t_connected)
    analyse_t = marks.get("analyse", t_end)
    conclude_t = marks.get("conclude", t_end)
    return {
        "total_ms": (t_end - t0) * 1000,
        "connect_ms": (t_connected - t0) * 1000,
        "gather_ms": (analyse_t - gather_t) * 1000,
        "analyse_ms": (conclude_t - analyse_t) * 1000,
        "conclude_ms": (t_end - conclude_t) * 1000,
        "mcp_calls": float(calls),
        **{f"tool:{name}": ms for name, ms in tool_ms.items()},
    }, result.diagnosis


def _summary(label: str, runs: list[dict[str, float]]) -> None:
    keys = ["total_ms", "connect_ms", "gather_ms", "analyse_ms", "conclude_ms", "mcp_calls"]
    med = {k: statistics.median(r[k] for r in runs) for k in keys}
    worst = max(r["total_ms"] for r in runs)
    tools = sorted({k for r in runs for k in r if k.startswith("tool:")})
    per_tool = "  ".join(
        f"{k[5:]} {statistics.median(r.get(k, 0.0) for r in runs):.0f}" for k in tools
    )
    print(
        f"{label:<34} median {med['total_ms']:7.1f} ms (max {worst:7.1f})  "
        f"connect {med['connect_ms']:6.1f}  gather {med['gather_ms']:6.1f}  "
        f"analyse {med['analyse_ms']:5.1f}  conclude {med['conclude_ms']:5.1f}  "
        f"MCP calls {med['mcp_calls']:.0f}"
    )
    print(f"{'':<34} per tool (ms): {per_tool}")


async def bench(url: str, runs: int, question: str, data: dict[str, Any], scenario: str) -> None:
    # warm-up: imports, graph compilation, first connection
    _, diagnosis = await one_run(url, question)
    live: list[dict[str, float]] = []
    for _ in range(runs):
        live.append((await one_run(url, question))[0])
    server, _ = build_recorded_server(data)
    base: list[dict[str, float]] = []
    for _ in range(runs):
        base.append((await one_run(server, question))[0])
    rc = diagnosis.root_cause
    print(f"scenario {scenario}: {question!r} → {rc.component}/{rc.category}: {rc.summary[:100]}")
    print(f"offline diagnosis, {runs} runs each (goal: dev3000 end to end < 2000 ms)")
    _summary(f"dev3000 over HTTP ({url})", live)
    _summary(f"baseline: in-process replay ({scenario})", base)
    verdict = statistics.median(r["total_ms"] for r in live) < 2000
    print("goal met" if verdict else "goal NOT met")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--url", default=None, help="a running dev3000 MCP endpoint")
    parser.add_argument("--question", default=None, help="default: the scenario's question")
    parser.add_argument("--scenario", default="db-unreachable")
    args = parser.parse_args()
    path = default_scenario_dir() / args.scenario
    raw = yaml.safe_load((path / "scenario.yaml").read_text(encoding="utf-8"))
    question = args.question or raw["question"]
    with ExitStack() as stack:
        url = args.url or _start_stack(stack, raw)
        asyncio.run(bench(url, max(1, args.runs), question, raw["recorded"], args.scenario))


def _start_stack(stack: ExitStack, scenario: dict[str, Any]) -> str:
    """The sandbox with the scenario's faults and traffic, and dev3000 serve pointed at it."""
    import os
    import sys
    import tempfile

    from evals.live import _drive
    from tools.chaos.client import ChaosClient
    from tools.harness import ManagedProcess, free_port, wait_for_http

    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-agent-")))
    base_env = {"DEV3000_ENV_FILE": os.devnull, "RETRY_DATABASE_MAX_ATTEMPTS": "1"}
    sandbox_port = free_port()
    sandbox = f"http://127.0.0.1:{sandbox_port}"
    argv = [sys.executable, "-m", "tools.sandbox", "--port", str(sandbox_port)]
    argv += ["--logs-dir", str(tmp / "logs"), "--token-file", str(tmp / "chaos.token")]
    env = {**base_env, "SANDBOX_DATA_DIR": str(tmp / "sandbox-data")}
    stack.enter_context(ManagedProcess(argv, env=env))
    wait_for_http(f"{sandbox}/api/v1/health/live", timeout=60)
    chaos = ChaosClient(sandbox, (tmp / "chaos.token").read_text(encoding="utf-8").strip())
    for fault in scenario.get("faults") or []:
        chaos.inject(str(fault["id"]), **dict(fault.get("options") or {}))
    _drive(sandbox, list(scenario.get("traffic") or []))
    port = free_port()
    env = {
        **base_env,
        "DEV3000_BACKEND_URL": sandbox,
        "DEV3000_FRONTEND_URL": sandbox,
        "DEV3000_AGENT_URL": sandbox,
        "DEV3000_LOG_PATHS": str(tmp / "logs"),
        "DEV3000_DATA_DIR": str(tmp / "dev3000"),
    }
    argv = [sys.executable, "-m", "guilde_diag.cli", "serve", "--port", str(port)]
    stack.enter_context(ManagedProcess(argv, env=env))
    wait_for_http(f"http://127.0.0.1:{port}/health", timeout=60)
    return f"http://127.0.0.1:{port}/mcp"


if __name__ == "__main__":
    main()
