"""Fixtures of the console tests: a real dev3000 (``dev3000.app.create_app``) on an
ephemeral port, backed by the machine's real PostgreSQL and Redis, with real targets —
and (``stack``) the same dev3000 watching the sandbox service stack with chaos faults."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from textual.app import App
from textual.pilot import Pilot

from tools.harness import ServerThread, delete_keys, free_port

T = TypeVar("T")

READ_KEY = "console-read-key-0001"
CONTROL_KEY = "console-control-key-0002"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Dev3000:
    """A running dev3000 and the handles a test needs."""

    server: ServerThread
    app: Any
    logs_dir: Path | None = None

    @property
    def url(self) -> str:
        return self.server.url

    def emit(self, **event: Any) -> Any:
        """Publish a timeline event on the real bus (as a chaos tool or a probe would)."""
        return self.app.state.dev3000.emit(**event)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the server's own event loop (e.g. to drive its breakers)."""
        loop = self.app.state.dev3000.bus._loop
        return asyncio.run_coroutine_threadsafe(coro, loop).result(60)

    def add_target(self, **target: Any) -> None:
        response = httpx.post(
            f"{self.url}/api/v1/targets",
            json=target,
            headers={"X-API-Key": CONTROL_KEY},
            timeout=15,
        )
        assert response.status_code == 201, response.text


def _configure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **env: str) -> None:
    base = {
        "DEV3000_DATA_DIR": str(tmp_path),
        "DEV3000_LOG_PATHS": "",
        "HEALTH_CHECK_CACHE_TTL": "0.2",
        "HEALTH_CHECK_TIMEOUT": "2",
        "DIAGNOSTIC_RATE_LIMIT": "100000",
        "DIAGNOSTIC_API_KEYS": f"{READ_KEY}:read,{CONTROL_KEY}:read+control",
    }
    for name, value in {**base, **env}.items():
        monkeypatch.setenv(name, value)


def start_dev3000(redis_prefix: str, port: int | None = None) -> Dev3000:
    from dev3000.app import create_app
    from guilde_core.config import get_settings, reset_settings_cache

    reset_settings_cache()
    app = create_app(get_settings(), redis_prefix=redis_prefix)
    server = ServerThread(app, port=port).start()
    return Dev3000(server, app)


@pytest.fixture
def dev3000(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    pg_dsn: str,
    redis_url: str,
    redis_prefix: str,
) -> Iterator[Dev3000]:
    """dev3000 with PostgreSQL + Redis checks and two targets: itself and a dead port."""
    logs = tmp_path / "logs"
    logs.mkdir()
    _configure(
        monkeypatch, tmp_path, DATABASE_URL=pg_dsn, REDIS_URL=redis_url, DEV3000_LOG_PATHS=str(logs)
    )
    running = start_dev3000(redis_prefix)
    running.logs_dir = logs
    try:
        running.add_target(name="dev3000-self", kind="http", url=running.url, path="/health")
        running.add_target(
            name="ghost-api", kind="http", url=f"http://127.0.0.1:{free_port()}", timeout=0.5
        )
        yield running
    finally:
        running.server.stop()


@pytest.fixture
def bare_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Configuration for a dev3000 with no Redis/PostgreSQL (for restart tests)."""
    _configure(monkeypatch, tmp_path)


async def wait_for(
    pilot: Pilot[Any],
    predicate: Callable[[], bool],
    timeout: float = 15.0,
    what: str = "condition",
) -> None:
    """Let the app run until ``predicate()`` holds (a condition, not a sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return
        except Exception:  # noqa: S110 - the widget may not exist yet
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


def dig(value: object, *path: str | int) -> object:
    """``value[path[0]][path[1]]…`` of decoded JSON; ``None`` where the path leads nowhere."""
    for key in path:
        if isinstance(key, str) and isinstance(value, dict):
            value = value.get(key)
        elif isinstance(key, int) and isinstance(value, list) and -len(value) <= key < len(value):
            value = value[key]
        else:
            return None
    return value


async def submit(pilot: Pilot[Any], text: str) -> None:
    """Type ``text`` into the focused input (in one step) and press enter.

    The screen that shows the input focuses it itself; focus is applied after the screen's
    next refresh, so this waits (a condition, bounded) for an input to hold it."""
    from textual.widgets import Input

    await wait_for(
        pilot,
        lambda: isinstance(pilot.app.focused, Input),
        what="an Input to have focus",
    )
    focused = pilot.app.focused
    assert isinstance(focused, Input), f"expected an Input to have focus, not {focused!r}"
    focused.value = text
    await pilot.press("enter")


def screen_text(app: App[Any]) -> str:
    """Plain text of what the app shows now (every widget's content and border title)."""
    from rich.console import Console
    from textual.widgets import DataTable, Static

    console = Console(width=200, record=True, file=io.StringIO())
    parts: list[str] = []
    for widget in app.screen.query("*"):
        if isinstance(widget, Static):
            content = widget.content
            if isinstance(content, str):
                parts.append(content)
            else:
                console.print(content)
                parts.append(console.export_text())
        elif isinstance(widget, DataTable):
            for row_key in widget.rows:
                parts.append(" ".join(str(c) for c in widget.get_row(row_key)))
        title = getattr(widget, "border_title", None)
        if title:
            parts.append(str(title))
    return "\n".join(parts)


AsyncCheck = Callable[[], Awaitable[bool]]


# --------------------------------------------------------------------------- the stack


@dataclass
class Stack:
    """dev3000 watching the sandbox (its target, its log directory, its breakers through
    the shared Redis), the sandbox's chaos control, and the fake LLM upstream."""

    dev3000: Dev3000
    sandbox: ServerThread
    chaos: Any  # tools.chaos.client.ChaosClient
    logs_dir: Path
    redis_prefix: str

    @property
    def url(self) -> str:
        return self.dev3000.url

    def traffic(self, path: str = "/api/v1/orders", count: int = 10, **kwargs: Any) -> list[int]:
        """``count`` requests to the sandbox; their status codes."""
        method = str(kwargs.pop("method", "GET"))
        with httpx.Client(base_url=self.sandbox.url, timeout=15) as client:
            return [client.request(method, path, **kwargs).status_code for _ in range(count)]

    @contextlib.contextmanager
    def fault(self, fault_id: str, **params: Any) -> Iterator[dict[str, Any]]:
        """A chaos fault for the block; cleared (and the sandbox's breakers reset through
        dev3000) afterwards, so the next test of the module starts healthy."""
        active = self.chaos.inject(fault_id, **params)
        try:
            yield active
        finally:
            self.chaos.clear(fault_id)
            self.reset_breakers()

    def reset_breakers(self) -> None:
        with httpx.Client(
            base_url=self.url, headers={"X-API-Key": CONTROL_KEY}, timeout=15
        ) as client:
            circuits = client.get("/api/v1/diag/circuits").json()["circuits"]
            for circuit in circuits:
                if circuit.get("state") != "closed":
                    client.post(
                        f"/api/v1/diag/circuits/{circuit['name']}/reset",
                        json={"reason": "test cleanup"},
                    ).raise_for_status()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One dev3000 + sandbox (+ fake LLM upstream) for a whole test module.

    The sandbox keeps its orders in a PostgreSQL schema of its own and caches in Redis;
    dev3000 checks PostgreSQL and Redis, probes the sandbox as the target ``sandbox``, tails
    the sandbox's log directory, and both see one set of circuit breakers: each has a
    Redis-backed registry under this module's key prefix, as two processes sharing
    ``CIRCUIT_BREAKER_REDIS_URL`` would. Tests inject faults with :meth:`Stack.fault`."""
    import psycopg

    from guilde_core.resilience import BreakerRegistry, reset_registry
    from tests.conftest import PG_DSN, REDIS_URL
    from tools.chaos.client import ChaosClient
    from tools.fakellm import fakellm_server
    from tools.sandbox import SandboxConfig, create_app

    tmp = tmp_path_factory.mktemp("console-stack")
    prefix = f"guilde-test:{uuid.uuid4().hex[:12]}:"
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    logs = tmp / "sandbox-logs"
    env = {
        "DEV3000_ENV_FILE": os.devnull,
        "DEV3000_DATA_DIR": str(tmp / "dev3000"),
        "DEV3000_LOG_PATHS": str(logs),
        "DATABASE_URL": PG_DSN,
        "REDIS_URL": REDIS_URL,
        "CIRCUIT_BREAKER_REDIS_URL": REDIS_URL,
        "HEALTH_CHECK_CACHE_TTL": "0.2",
        "HEALTH_CHECK_TIMEOUT": "3",
        "HEALTH_DEEP_CHECK_INTERVAL": "1",
        # a loaded machine's latencies are not the faults these tests inject
        "HEALTH_WARN_API_LATENCY_MS": "5000",
        "HEALTH_WARN_DB_LATENCY_MS": "5000",
        "HEALTH_WARN_REDIS_LATENCY_MS": "5000",
        "DIAGNOSTIC_RATE_LIMIT": "100000",
        "DIAGNOSTIC_API_KEYS": f"{READ_KEY}:read,{CONTROL_KEY}:read+control",
        # the sandbox's database breaker opens after 3 failed calls, and stays open
        "RETRY_DATABASE_MAX_ATTEMPTS": "1",
        "CB_DATABASE_FAILURE_THRESHOLD": "3",
        "CB_DATABASE_RECOVERY_TIMEOUT": "120",
        "AGENT_PROVIDERS": "offline",
        "DIAGNOSTIC_CONTROL_ENABLED": "true",  # the agent's approved control actions run
        # the watched service is the sandbox (a registry target below): nothing of the default
        # backend/agent/frontend targets runs here, so none is declared (a critical backend on
        # :8000 that never answers would rightly be the root cause of every question)
        "DEV3000_BACKEND_URL": "",
        "DEV3000_AGENT_URL": "",
        "DEV3000_FRONTEND_URL": "",
    }
    with pytest.MonkeyPatch.context() as mp, contextlib.ExitStack() as exit_stack:
        for name, value in env.items():
            mp.setenv(name, value)
        from guilde_core.config import get_settings, reset_settings_cache

        reset_settings_cache()
        reset_registry(BreakerRegistry(redis_url=REDIS_URL, prefix=prefix))
        exit_stack.callback(reset_registry)
        upstream = exit_stack.enter_context(fakellm_server())
        token = f"console-{uuid.uuid4().hex[:8]}"
        config = SandboxConfig(
            logs_dir=logs,
            data_dir=tmp / "sandbox-data",
            database_url=PG_DSN,
            pg_schema=schema,
            redis_url=REDIS_URL,
            redis_prefix=f"{prefix}sandbox:",
            llm_base_url=upstream.openai_base_url,
            chaos_token=token,
            # the sandbox runs in the test process: its RSS grows with dev3000, the consoles
            # and the agents of the module, not with a leak of its own
            memory_budget_mb=4096,
            # a fault's 5xx leave the error-rate window within seconds, so "healthy again"
            # after a cleared fault is the sandbox's honest status, not a 60-s wait
            health_window_s=3,
        )
        sandbox_registry = BreakerRegistry(redis_url=REDIS_URL, prefix=prefix)
        sandbox = exit_stack.enter_context(
            ServerThread(
                create_app(config, registry=sandbox_registry, settings=get_settings()),
                timeout_graceful_shutdown=2,
            )
        )
        chaos = ChaosClient(sandbox.url, token)
        exit_stack.callback(lambda: chaos.clear())
        running = start_dev3000(prefix)
        exit_stack.callback(running.server.stop)
        running.logs_dir = logs
        running.add_target(
            name="sandbox", kind="http", url=sandbox.url, path="/api/v1/health", timeout=3
        )
        stack = Stack(running, sandbox, chaos, logs, prefix)
        stack.traffic(count=3)  # the sandbox's breakers exist (and are closed)
        try:
            yield stack
        finally:
            reset_settings_cache()
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    delete_keys(REDIS_URL, prefix)
