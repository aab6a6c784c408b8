"""One real stack per module: the sandbox (its frontend at /app) and a dev3000 app whose
browser capture watches it in the system's headless Chromium."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport
from mcp_types import CallToolResult
from pydantic import SecretStr

from dev3000.app import create_app
from dev3000.browser import browser_lifespan
from guilde_core.config import Settings, reset_settings_cache
from guilde_core.events import TimelineEvent
from guilde_core.resilience import BreakerRegistry
from servers.browser.capture import BrowserCapture, find_chromium
from tools.chaos.client import ChaosClient
from tools.harness import ServerThread, wait_until
from tools.sandbox import SandboxConfig
from tools.sandbox import create_app as create_sandbox

READ_KEY = "browser-test-read-key-0123456789"
CONTROL_KEY = "browser-test-control-key-0123456789"


@dataclass
class Stack:
    sandbox: str
    dev3000: str
    chaos: ChaosClient
    logs: Path
    app: Any

    @property
    def capture(self) -> BrowserCapture:
        capture = self.app.state.dev3000.browser
        assert isinstance(capture, BrowserCapture)
        return capture

    def events(self) -> list[TimelineEvent]:
        return list(self.app.state.dev3000.bus.events())

    def mark(self) -> str:
        """The id of the newest event: what a test waits for comes after it."""
        events = self.events()
        return events[-1].id if events else ""

    def wait_event(
        self, after: str, match: Callable[[TimelineEvent], bool], timeout: float = 10.0
    ) -> TimelineEvent:
        found: list[TimelineEvent] = []

        def seen() -> bool:
            found[:] = [e for e in self.events() if e.id > after and match(e)]
            return bool(found)

        wait_until(seen, timeout=timeout, interval=0.05)
        return found[0]

    def get(self, path: str, key: str = READ_KEY, **kw: Any) -> httpx.Response:
        return httpx.get(self.dev3000 + path, headers={"X-API-Key": key}, timeout=30, **kw)

    def call(
        self, tool: str, arguments: dict[str, Any] | None = None, key: str = READ_KEY
    ) -> CallToolResult:
        async def run() -> CallToolResult:
            transport = StreamableHttpTransport(self.dev3000 + "/mcp", headers={"X-API-Key": key})
            async with Client(transport, timeout=60) as client:
                result: CallToolResult = await client.call_tool_mcp(tool, arguments or {})
                return result

        return asyncio.run(run())

    def read_resource(self, uri: str, key: str = READ_KEY) -> Any:
        async def run() -> Any:
            transport = StreamableHttpTransport(self.dev3000 + "/mcp", headers={"X-API-Key": key})
            async with Client(transport, timeout=60) as client:
                return await client.read_resource(uri)

        return asyncio.run(run())

    def in_page(self, coro_fn: Callable[[Any], Any], timeout: float = 20.0) -> Any:
        """Run ``coro_fn(capture)`` on the loop the capture lives on (the server's)."""
        capture = self.capture
        assert capture._task is not None
        loop = capture._task.get_loop()
        return asyncio.run_coroutine_threadsafe(coro_fn(capture), loop).result(timeout)

    def running(self, timeout: float = 30.0) -> None:
        wait_until(
            lambda: self.get("/api/v1/browser/status").json()["state"] == "running",
            timeout=timeout,
            interval=0.1,
        )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    assert find_chromium() is not None, "the browser tests need Debian's chromium installed"
    root = tmp_path_factory.mktemp("browser")
    logs = root / "logs"
    logs.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        for name, value in {
            "RETRY_DATABASE_MAX_ATTEMPTS": "1",
            "CB_DATABASE_FAILURE_THRESHOLD": "1000",
        }.items():
            mp.setenv(name, value)
        reset_settings_cache()
        sandbox_app = create_sandbox(
            SandboxConfig(
                logs_dir=logs, data_dir=root / "sandbox", chaos_token="chaos-" + root.name
            ),
            registry=BreakerRegistry(),
        )
        sandbox = ServerThread(sandbox_app, timeout_graceful_shutdown=2).start()
        settings = Settings(
            dev3000_log_paths=[str(logs)],
            dev3000_data_dir=str(root / "dev3000"),
            dev3000_backend_url=sandbox.url,
            diagnostic_control_enabled=True,
            diagnostic_auth_required=True,
            diagnostic_api_keys=SecretStr(f"{READ_KEY}:read,{CONTROL_KEY}:read+control"),
            health_deep_check_enabled=False,
            diagnostic_rate_limit=100_000,
        )
        app = create_app(
            settings,
            redis_prefix=f"browser-test-{os.getpid()}:",
            lifespans=[
                browser_lifespan(
                    sandbox.url + "/app",
                    slow_load_ms=1200.0,
                    initial_backoff=0.2,
                    action_timeout=3.0,
                )
            ],
        )
        server = ServerThread(app, timeout_graceful_shutdown=5).start(timeout=60)
        stack = Stack(
            sandbox.url, server.url, ChaosClient(sandbox.url, "chaos-" + root.name), logs, app
        )
        try:
            stack.running(60)
            yield stack
        finally:
            server.stop(20)
            sandbox.stop()
            reset_settings_cache()


def planted_free(text: str, planted: list[str]) -> list[str]:
    """The planted secrets that occur in ``text``."""
    return [p for p in planted if p in text]


def dump(value: Any) -> str:
    return json.dumps(value, default=str)
