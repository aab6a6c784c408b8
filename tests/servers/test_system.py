"""System logic and observability set-up (Sentry against a local fake ingest server)."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Coroutine
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from guilde_core import observability
from guilde_core.config import Settings
from guilde_core.redaction import MASK
from servers.system import logic
from tools.harness import ServerThread, wait_until


def run[T](coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def test_overview_processes_connections_versions() -> None:
    ov = run(logic.overview())
    assert ov.cpu.count_logical
    assert ov.memory.total_mb > 0
    assert ov.disks
    assert ov.process_uptime_seconds >= 0
    top = run(logic.top_processes(limit=3, sort_by="memory"))
    assert len(top.processes) == 3
    mems = [p.memory_mb for p in top.processes]
    assert mems == sorted(mems, reverse=True)
    conns = run(logic.connections())
    assert conns.total == sum(conns.by_status.values())
    vers = run(logic.versions())
    assert vers.components["fastmcp"]
    assert vers.components["mcp"]


def test_asyncio_tasks_lists_this_loops_tasks() -> None:
    async def scenario() -> list[str]:
        blocker = asyncio.create_task(asyncio.sleep(5), name="probe-task")
        try:
            tasks = await logic.asyncio_tasks()
        finally:
            blocker.cancel()
        return [t.name for t in tasks.tasks]

    assert "probe-task" in run(scenario())


def test_effective_config_is_redacted_and_names_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-abcdefghijklmnopqrstuvwx")
    monkeypatch.setenv("HEALTH_CHECK_TIMEOUT", "7")
    cfg = run(logic.effective_config(settings=Settings()))
    rows = {e.name: e for e in cfg.entries}
    assert rows["OPENAI_API_KEY"].value == MASK
    assert rows["HEALTH_CHECK_TIMEOUT"].value == 7
    assert rows["HEALTH_CHECK_TIMEOUT"].source == "env"
    assert rows["MCP_SERVER_NAME"].source == "default"
    assert "sk-test-abcdefghijklmnopqrstuvwx" not in cfg.model_dump_json()
    only = run(logic.effective_config(prefix="health_", settings=Settings()))
    assert only.entries
    assert all(e.name.startswith("HEALTH_") for e in only.entries)


def test_observability_without_credentials_is_harmless() -> None:
    observability.setup_observability(Settings())
    status = observability.observability_status()
    # nowhere to write (no token, console not asked): Logfire is not even set up
    assert status["logfire"]["configured"] is False
    assert status["logfire"]["sending"] is False
    assert status["sentry"]["configured"] is False
    assert status["sentry"]["rate_limited"] is False
    assert {"status", "spans_exported", "export_errors"} <= set(status["logfire"])


def test_sentry_events_are_scrubbed_and_counted() -> None:
    received: list[bytes] = []

    async def envelope(request: Request) -> JSONResponse:
        body = await request.body()
        if request.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        received.append(body)
        return JSONResponse({})

    app = Starlette(routes=[Route("/api/{project}/envelope/", envelope, methods=["POST"])])
    with ServerThread(app) as server:
        port = server.url.rsplit(":", 1)[1]
        settings = Settings(sentry_dsn=f"http://publickey@127.0.0.1:{port}/42")
        observability.setup_observability(settings)
        import sentry_sdk

        before = observability.observability_status()["sentry"]["events_sent"]
        sentry_sdk.set_extra("api_key", "sk-live-zyxwvutsrqponmlkjihgfedcba")
        sentry_sdk.capture_message(
            "login failed with password=hunter2hunter2 for Bearer abcdefghijklmnop"
        )
        sentry_sdk.flush(5)
        wait_until(lambda: bool(received), timeout=10)
        status = observability.observability_status()["sentry"]
        assert status["configured"] is True
        assert status["events_sent"] == before + 1
        payload = b"\n".join(received).decode()
        assert "login failed" in payload
        for secret in ("sk-live-zyxwvutsrqponmlkjihgfedcba", "hunter2hunter2", "abcdefghijklmnop"):
            assert secret not in payload
        first = json.loads(payload.splitlines()[-1])
        assert "user" not in first
        # integrations chosen explicitly: none of the auto-enabling ones (each imports its
        # library at start-up: langchain, the LLM SDKs, the MCP SDK …)
        active = set(sentry_sdk.get_client().integrations)
        assert not active & {"langchain", "langgraph", "openai", "anthropic", "mcp", "redis",
                             "httpx", "sqlalchemy", "asyncpg"}, active  # fmt: skip
        assert "logging" in active  # the default ones stay
        sentry_sdk.get_client().close()


def test_logfire_console_only_when_asked() -> None:
    observability.setup_observability(Settings(logfire_console_enabled=True))
    assert observability.observability_status()["logfire"]["configured"] is True
    observability.setup_observability(Settings(logfire_console_enabled=False))  # reconfigured
    assert observability.observability_status()["logfire"]["sending"] is False
