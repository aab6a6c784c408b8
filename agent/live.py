"""Live scenarios: the sandbox with chaos faults injected, diagnosed through dev3000.

A ``source: live`` scenario names fault ids of ``dev3000 chaos`` (``faults: [{id, options}]``)
and the traffic that makes them visible (``traffic: [{method, path, json, count}]``).
:func:`live_target` starts, in this process, a fake LLM upstream and the sandbox (its
breakers are the process-wide resilience registry, as a sandbox sharing
``CIRCUIT_BREAKER_REDIS_URL`` with dev3000 would be), points dev3000's configuration at
the sandbox (its health endpoint and its log directory), injects the faults through the
sandbox's chaos endpoint, drives the traffic, and yields dev3000's real aggregate MCP server
(``build_aggregate_server``) for the agent to connect to in memory. Faults are cleared and
the configuration restored afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from guilde_core.config import environment_overrides, get_settings

__all__ = ["live_target"]


def _drive(url: str, traffic: list[dict[str, Any]]) -> None:
    import httpx

    with httpx.Client(base_url=url, timeout=15) as client:
        for item in traffic:
            for _ in range(int(item.get("count", 10))):
                client.request(
                    str(item.get("method", "GET")), str(item["path"]), json=item.get("json")
                )


@contextlib.asynccontextmanager
async def live_target(scenario: Any) -> AsyncIterator[Any]:
    """dev3000's aggregate MCP server with the scenario's faults live in a sandbox."""
    from agent.providers.resilience import reset_local_breakers
    from dev3000.mcp_aggregate import build_aggregate_server
    from tools.chaos.client import ChaosClient
    from tools.fakellm import fakellm_server
    from tools.harness import ServerThread
    from tools.sandbox import SandboxConfig, create_app

    reset_local_breakers()  # a fresh registry: no breaker state from an earlier scenario
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="live-scenario-")))
        stack.enter_context(
            environment_overrides(
                {
                    "RETRY_DATABASE_MAX_ATTEMPTS": "1",
                    "RETRY_LLM_MAX_ATTEMPTS": "1",
                    "CB_OPENAI_RECOVERY_TIMEOUT": "60",
                    "CB_DATABASE_RECOVERY_TIMEOUT": "60",
                }
            )
        )
        upstream = stack.enter_context(fakellm_server())
        config = SandboxConfig(
            logs_dir=tmp / "logs",
            data_dir=tmp / "data",
            llm_base_url=upstream.openai_base_url,
            chaos_token=f"live-{scenario.name}",
        )
        server = stack.enter_context(ServerThread(create_app(config), timeout_graceful_shutdown=2))
        chaos = ChaosClient(server.url, f"live-{scenario.name}")

        def clear() -> None:
            with contextlib.suppress(Exception):
                chaos.clear()

        stack.callback(clear)
        target = f"{server.url}/api/v1"
        stack.enter_context(
            environment_overrides(
                {
                    "DEV3000_BACKEND_URL": server.url,  # the backend serves /api/v1/health
                    "DEV3000_FRONTEND_URL": target,
                    "DEV3000_AGENT_URL": target,
                    "DEV3000_LOG_PATHS": str(tmp / "logs"),
                    "DEV3000_DATA_DIR": str(tmp / "dev3000"),
                    "HEALTH_WARN_API_LATENCY_MS": "5000",
                }
            )
        )
        for fault in scenario.faults:
            await asyncio.to_thread(
                chaos.inject, str(fault["id"]), **dict(fault.get("options") or {})
            )
        await asyncio.to_thread(_drive, server.url, list(scenario.traffic))
        yield build_aggregate_server(get_settings())
