"""Live scenarios: the sandbox with chaos faults injected, diagnosed through dev3000.

Every scenario of the suite can run live. Its ``scenario.yaml`` says how:

* ``faults: [{id, options}]`` — fault ids of ``dev3000 chaos`` (the catalogue in
  :mod:`tools.chaos.catalogue`), injected through the sandbox's ``/_chaos`` endpoint;
* ``traffic: [{method, path, json, count}]`` — the requests that make them visible;
* ``sandbox: {…}`` — :class:`~tools.sandbox.SandboxConfig` overrides (``database: sqlite``
  keeps the sandbox on SQLite instead of PostgreSQL; ``llm_provider: anthropic`` makes its
  upstream the Anthropic messages API); ``runtime: {…}`` — the sandbox's reloadable runtime
  config at start (short pool/upstream timeouts keep a scenario fast);
* ``setup: […]`` — what no chaos fault does, declared: ``{log: {file, lines, repeat}}``
  plants lines in the sandbox's log directory (prompt injection, planted secrets);
  ``{breaker: {name, force_open: reason}}`` forces a breaker of the shared resilience
  registry open; ``{breaker: {name, trip: n, error, recovery_timeout, probe}}`` makes it fail
  ``n`` times with ``error`` (and, with ``probe``, half-open after its recovery timeout with
  one successful trial call) — an unrelated breaker as a red herring.

:func:`live_environment` holds what a whole suite shares: one fake LLM upstream (checking
the sandbox's key, so a revoked credential gets a genuine 401) and the real PostgreSQL and
Redis named by ``SANDBOX_DATABASE_URL`` / ``SANDBOX_REDIS_URL`` when they answer (SQLite and
an in-memory cache otherwise; never dev3000's own ``DATABASE_URL`` / ``REDIS_URL``).
:func:`live_target` then, for one scenario, starts the sandbox in this process (its
breakers are the process-wide resilience registry, as a sandbox sharing
``CIRCUIT_BREAKER_REDIS_URL`` with dev3000 would be) with its own PostgreSQL schema and
Redis key prefix, points dev3000's configuration at it (backend health, log directory),
runs the setup, injects the faults (waiting for the ones that grow — disk, memory, log
flood — to reach their cap), drives the traffic, and yields dev3000's real aggregate MCP
server (``build_aggregate_server``) for the agent to connect to in memory. Afterwards the
faults are cleared, the schema dropped, the Redis keys deleted, the breakers forgotten and
the configuration restored.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evals.scenario import Scenario
from guilde_core.config import environment_overrides, get_settings

__all__ = ["LIVE_LLM_KEY", "LiveEnvironment", "LiveRun", "live_environment", "live_target"]

#: the key the sandbox sends and the suite's fake upstream accepts
LIVE_LLM_KEY = "sk-live-scenario-key"
#: dev3000 settings that would make it check the machine's real services directly (the
#: sandbox's view of them is what a scenario is about) or share breakers through Redis
_UNSET = ("DATABASE_URL", "REDIS_URL", "CIRCUIT_BREAKER_REDIS_URL")
#: faults that grow in the background: (info key, option naming the cap, its default)
_GROWING = {
    "disk-fill": ("written_mb", "cap_mb"),
    "memory-pressure": ("ballast_mb", "cap_mb"),
    "log-flood": ("lines", "max_lines"),
}


@dataclass
class LiveEnvironment:
    """What a suite of live scenarios shares."""

    upstream: Any  # tools.fakellm.client.RunningFakeLLM
    database_url: str | None
    redis_url: str | None


@dataclass
class LiveRun:
    """One scenario's live target: dev3000's aggregate MCP server over the sandbox."""

    server: Any  # fastmcp.FastMCP
    sandbox_url: str
    workdir: Path  # the sandbox's logs and data, dev3000's data dir
    upstream_url: str


def _reachable_pg(dsn: str | None) -> str | None:
    if not dsn:
        return None
    import psycopg

    try:
        with psycopg.connect(dsn, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
    except Exception:
        return None
    return dsn


def _reachable_redis(url: str | None) -> str | None:
    if not url:
        return None
    from guilde_core.shared_redis import probe_sync

    try:
        with probe_sync(url, 1.0) as client:
            client.ping()
    except Exception:
        return None
    return url


@contextlib.contextmanager
def live_environment() -> Iterator[LiveEnvironment]:
    """One fake LLM upstream and the reachable real PostgreSQL/Redis, for a whole suite."""
    from tools.fakellm import fakellm_server

    # the sandbox's own variables only: dev3000's DATABASE_URL / REDIS_URL name the system it
    # watches, where a scenario has no business creating schemas or keys
    pg = os.environ.get("SANDBOX_DATABASE_URL")
    rd = os.environ.get("SANDBOX_REDIS_URL")
    # what a diagnosis imports, imported before the first sandbox measures its baseline
    # memory (its memory check counts growth of this process's RSS)
    import agent.runner  # noqa: F401
    import dev3000.mcp_aggregate  # noqa: F401
    import tools.sandbox  # noqa: F401

    with fakellm_server(api_key=LIVE_LLM_KEY) as upstream:
        yield LiveEnvironment(upstream, _reachable_pg(pg), _reachable_redis(rd))


@contextlib.contextmanager
def _pg_schema(dsn: str) -> Iterator[str]:
    import psycopg

    schema = f"live_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _drive(url: str, traffic: list[dict[str, Any]]) -> None:
    import httpx

    with httpx.Client(base_url=url, timeout=15) as client:
        for item in traffic:
            for _ in range(int(item.get("count", 10))):
                client.request(
                    str(item.get("method", "GET")), str(item["path"]), json=item.get("json")
                )


def _plant_log(logs_dir: Path, spec: dict[str, Any]) -> None:
    """Append ``spec['lines']`` (JSON objects or text) ``repeat`` times to a log file."""
    path = logs_dir / str(spec.get("file", "app.jsonl"))
    if path.parent != logs_dir:
        raise ValueError(f"setup log file must be a plain name: {spec.get('file')!r}")
    out: list[str] = []
    for _ in range(int(spec.get("repeat", 1))):
        for line in spec.get("lines") or []:
            if isinstance(line, dict):
                ts = datetime.now(UTC).isoformat(timespec="milliseconds")
                out.append(json.dumps({"ts": ts, **line}))
            else:
                out.append(str(line))
    with path.open("a", encoding="utf-8") as handle:
        handle.write("\n".join(out) + "\n")


async def _breaker(spec: dict[str, Any]) -> None:
    """Force a breaker of the shared registry open, or trip it for real (see module doc)."""
    from guilde_core.config import BreakerConfig
    from guilde_core.resilience import get_registry

    registry = get_registry()
    name = str(spec["name"])
    if "force_open" in spec:
        registry.breaker(name)
        await registry.force_open(name, reason=str(spec["force_open"]))
        return
    trips = int(spec.get("trip", 5))
    recovery = float(spec.get("recovery_timeout", 30))
    config = BreakerConfig(
        failure_threshold=trips,
        recovery_timeout=recovery,
        half_open_requests=3,
        success_threshold=2,  # one successful trial call leaves it half-open
    )
    breaker = registry.breaker(name, config)
    error = str(spec.get("error", f"{name} failed"))

    async def fail() -> None:
        raise ConnectionError(error)

    async def succeed() -> None:
        return None

    for _ in range(trips):
        with contextlib.suppress(Exception):
            await breaker.call(fail)
    if spec.get("probe"):
        deadline = time.monotonic() + recovery + 5
        while (await registry.snapshot(name)).seconds_until_half_open:
            if time.monotonic() > deadline:
                raise TimeoutError(f"breaker {name} did not reach its recovery timeout")
            await asyncio.sleep(0.02)
        await breaker.call(succeed)  # the first trial call of half-open succeeds


def _settle(chaos: Any, fault_id: str, options: dict[str, Any]) -> None:
    """Wait until a growing fault has reached its cap (condition, not a sleep)."""
    from tools.chaos.catalogue import validate_params
    from tools.harness import wait_until

    if fault_id not in _GROWING:
        return
    info_key, cap_key = _GROWING[fault_id]
    cap = getattr(validate_params(fault_id, options), cap_key)

    def reached() -> bool:
        for active in chaos.status():
            if active["id"] == fault_id:
                done: bool = int((active.get("info") or {}).get(info_key, 0)) >= cap
                return done
        return False

    wait_until(reached, timeout=30, interval=0.02)


@contextlib.asynccontextmanager
async def live_target(
    scenario: Scenario, env: LiveEnvironment | None = None
) -> AsyncIterator[LiveRun]:
    """dev3000's aggregate MCP server with the scenario's faults live in a sandbox."""
    if env is None:
        with live_environment() as own:
            async with live_target(scenario, own) as run:
                yield run
        return

    from agent.providers.resilience import reset_local_breakers
    from dev3000.mcp_aggregate import build_aggregate_server
    from tools.chaos.client import ChaosClient
    from tools.harness import ServerThread, delete_keys
    from tools.sandbox import SandboxConfig, create_app
    from tools.sandbox.config import RuntimeConfig

    options = dict(scenario.sandbox)
    use_sqlite = options.pop("database", "postgres") == "sqlite"
    reset_local_breakers()  # a fresh registry: no breaker state from an earlier scenario
    with contextlib.ExitStack() as stack:
        stack.callback(reset_local_breakers)
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="live-scenario-")))
        empty_env = tmp / "empty.env"
        empty_env.write_text("", encoding="utf-8")
        stack.enter_context(
            environment_overrides(
                {
                    "DEV3000_ENV_FILE": str(empty_env),  # no .env layer under the scenario
                    "RETRY_DATABASE_MAX_ATTEMPTS": "1",
                    "RETRY_LLM_MAX_ATTEMPTS": "1",
                    "CB_OPENAI_RECOVERY_TIMEOUT": "60",
                    "CB_ANTHROPIC_RECOVERY_TIMEOUT": "60",
                    "CB_DATABASE_RECOVERY_TIMEOUT": "60",
                    "CB_REDIS_RECOVERY_TIMEOUT": "60",
                },
                _UNSET,
            )
        )
        data_dir = tmp / "data"
        data_dir.mkdir()
        runtime = RuntimeConfig.model_validate(scenario.runtime)
        (data_dir / "runtime.json").write_text(json.dumps(runtime.model_dump(), indent=2))
        store: dict[str, Any] = {}
        if env.database_url and not use_sqlite:
            store = {
                "database_url": env.database_url,
                "pg_schema": stack.enter_context(_pg_schema(env.database_url)),
            }
        cache: dict[str, Any] = {}
        if env.redis_url:
            prefix = f"live-scenario:{uuid.uuid4().hex[:12]}:"
            cache = {"redis_url": env.redis_url, "redis_prefix": prefix}
            stack.callback(delete_keys, env.redis_url, prefix)
        config = SandboxConfig.model_validate(
            {
                "logs_dir": tmp / "logs",
                "data_dir": data_dir,
                "llm_base_url": env.upstream.openai_base_url,
                "llm_api_key": LIVE_LLM_KEY,
                "chaos_token": f"live-{scenario.name}",
                # the sandbox shares this process with dev3000 and the agent, whose own
                # allocations count in its RSS growth: a wider budget than a sandbox alone
                "memory_budget_mb": 128,
                **store,
                **cache,
                **options,
            }
        )
        server = stack.enter_context(ServerThread(create_app(config), timeout_graceful_shutdown=2))
        chaos = ChaosClient(server.url, f"live-{scenario.name}")

        def clear() -> None:
            with contextlib.suppress(Exception):
                chaos.clear()

        stack.callback(clear)
        stack.enter_context(
            environment_overrides(
                {
                    "DEV3000_BACKEND_URL": server.url,  # the backend serves /api/v1/health
                    "DEV3000_FRONTEND_URL": server.url,  # "/" answers 200
                    "DEV3000_AGENT_URL": server.url,  # /health answers liveness
                    "DEV3000_LOG_PATHS": str(tmp / "logs"),
                    "DEV3000_DATA_DIR": str(tmp / "dev3000"),
                    "HEALTH_WARN_API_LATENCY_MS": "5000",  # a loaded CI box is no fault
                },
                (),
            )
        )
        for step in scenario.setup:
            if "log" in step:
                _plant_log(tmp / "logs", dict(step["log"]))
            elif "breaker" in step:
                await _breaker(dict(step["breaker"]))
            else:
                raise ValueError(f"{scenario.name}: unknown setup step {sorted(step)}")
        for fault in scenario.faults:
            fault_id, opts = str(fault["id"]), dict(fault.get("options") or {})
            await asyncio.to_thread(chaos.inject, fault_id, **opts)
            await asyncio.to_thread(_settle, chaos, fault_id, opts)
        await asyncio.to_thread(_drive, server.url, list(scenario.traffic))
        yield LiveRun(build_aggregate_server(get_settings()), server.url, tmp, env.upstream.url)
