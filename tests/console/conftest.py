"""Fixtures of the console tests: a real dev3000 (``dev3000.app.create_app``) on an
ephemeral port, backed by the machine's real PostgreSQL and Redis, with real targets."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from textual.app import App
from textual.pilot import Pilot

from tools.harness import ServerThread, free_port

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


async def submit(pilot: Pilot[Any], text: str) -> None:
    """Type ``text`` into the focused input (in one step) and press enter."""
    from textual.widgets import Input

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
