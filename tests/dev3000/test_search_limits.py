"""Log searches are bounded: a hard time budget (REST and MCP), a server cap on MCP's
``time_budget``, a per-key limit on searches running at once, and a server that keeps
answering while a catastrophic regex runs."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastmcp import Client
from fastmcp.exceptions import ToolError

from guilde_core.config import Settings
from servers.logs.server import build_server
from tools.harness import ManagedProcess, ServerThread, free_port, wait_for_http

EVIL = r"(a+)+$"
BUDGET = 1.5
#: the answer may come this long after the budget (threads, JSON, HTTP on a loaded
#: machine); a search that gave each regex call the whole budget ran at least twice as long
SLACK = 1.2


def _logs(tmp_path: Path) -> Path:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "app.log").write_text(
        "INFO start\n" + "a" * 30_000 + "b\n" + "ERROR done\n", encoding="utf-8"
    )
    return logs


def test_rest_search_stops_at_the_budget_limits_each_key_and_keeps_serving(
    tmp_path: Path,
) -> None:
    """Against a real ``dev3000 serve`` process: a regex engine that held the GIL would
    stall a server in the test's own process, and the test's clock with it."""
    port = free_port()
    env = {
        "DEV3000_DATA_DIR": str(tmp_path / "data"),
        "DEV3000_LOG_PATHS": str(_logs(tmp_path)),
        "DEV3000_LOG_LEVEL": "warning",
        "DIAGNOSTIC_AUTH_REQUIRED": "true",
        "DIAGNOSTIC_API_KEYS": "first-key-0001:read,second-key-0002:read",
        "DIAGNOSTIC_SEARCH_TIME_BUDGET": str(BUDGET),
        "DIAGNOSTIC_SEARCH_CONCURRENCY": "1",
        "DIAGNOSTIC_RATE_LIMIT": "10000",
    }
    argv = [sys.executable, "-m", "guilde_diag.cli", "serve", "--port", str(port)]
    base = f"http://127.0.0.1:{port}"
    results: dict[str, Any] = {}
    with (
        ManagedProcess(argv, env=env, cwd=tmp_path),
        httpx.Client(base_url=base, timeout=30) as client,
    ):
        wait_for_http(base + "/api/v1/health/ready", timeout=60, status=200)

        def evil_search() -> None:
            started = time.monotonic()
            r = httpx.get(
                base + "/api/v1/logs/search",
                params={"q": EVIL, "regex": "true"},
                headers={"X-API-Key": "first-key-0001"},
                timeout=30,
            )
            results["elapsed"] = time.monotonic() - started
            results["response"] = r

        worker = threading.Thread(target=evil_search)
        worker.start()
        time.sleep(BUDGET / 3)  # the search is in the regex engine by now
        waits: list[float] = []

        def timed(*args: Any, **kwargs: Any) -> httpx.Response:
            started = time.monotonic()
            response = client.get(*args, **kwargs)
            waits.append(time.monotonic() - started)
            return response

        # one more search of the same key: 429 with Retry-After; another key may search
        busy = timed(
            "/api/v1/logs/search", params={"q": "done"}, headers={"X-API-Key": "first-key-0001"}
        )
        assert busy.status_code == 429, busy.text
        assert busy.headers["content-type"].startswith("application/problem+json")
        assert int(busy.headers["retry-after"]) >= 1
        other = timed(
            "/api/v1/logs/search", params={"q": "done"}, headers={"X-API-Key": "second-key-0002"}
        )
        assert other.status_code == 200, other.text
        assert [i["message"] for i in other.json()["items"]] == ["ERROR done"]
        # the event loop stays free while the regex engine works
        while worker.is_alive():
            assert timed("/api/v1/health/live").status_code == 200
        worker.join(30)
        assert max(waits) < 0.5, waits

    response = results["response"]
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["stopped_early"], body["stop_reason"]) == (True, "time_budget")
    assert results["elapsed"] < BUDGET + SLACK


def test_mcp_time_budget_is_capped_by_the_server_and_slots_are_per_caller(
    tmp_path: Path,
) -> None:
    server = build_server(
        Settings(
            dev3000_log_paths=[str(_logs(tmp_path))],
            diagnostic_search_time_budget=BUDGET,
            diagnostic_search_concurrency=1,
        )
    )

    async def scenario() -> tuple[float, dict[str, Any], str]:
        async with Client(server) as client:
            started = time.monotonic()
            evil = asyncio.ensure_future(
                client.call_tool("logs_search", {"query": EVIL, "regex": True, "time_budget": 30})
            )
            await asyncio.sleep(0.3)
            with pytest.raises(ToolError) as busy:
                await client.call_tool("logs_errors", {})
            result = await evil
            elapsed = time.monotonic() - started
            assert result.structured_content is not None
            return elapsed, result.structured_content, str(busy.value)

    elapsed, body, busy = asyncio.run(scenario())
    assert (body["stopped_early"], body["stop_reason"]) == (True, "time_budget")
    assert elapsed < BUDGET + SLACK  # 30 s asked, the server's 1 s given
    assert "at most 1" in busy
    assert "1 log searches" in busy


def test_error_groups_answer_at_the_budget(tmp_path: Path) -> None:
    from servers.logs import logic

    logs = tmp_path / "logs"
    logs.mkdir()
    line = "2026-01-01 00:00:00,000 ERROR app: failed order 1\n"
    (logs / "big.log").write_text(line * 400_000, encoding="utf-8")
    settings = Settings(dev3000_log_paths=[str(logs)], diagnostic_search_time_budget=5)
    started = time.monotonic()
    result = asyncio.run(logic.error_groups(time_budget=0.05, settings=settings))
    assert time.monotonic() - started < 0.05 + SLACK
    assert result.stopped_early
    assert result.stop_reason == "time_budget"


def test_the_recorded_replay_server_bounds_a_model_supplied_pattern() -> None:
    """The eval replay server's logs search takes its pattern from the model: the regex
    engine's timeout stops a catastrophic one instead of Python's re running for hours."""
    from evals.recorded import build_recorded_server

    entries = [{"message": "a" * 30_000 + "b"}, {"message": "order failed"}]
    server, _ = build_recorded_server({"logs": {"entries": entries}})

    async def search(query: str) -> dict[str, Any]:
        async with Client(server) as client:
            result = await client.call_tool("logs_search", {"query": query})
            content: dict[str, Any] | None = result.structured_content
            assert content is not None
            return content

    started = time.monotonic()
    stopped = asyncio.run(search(EVIL))
    assert time.monotonic() - started < 10  # hours without the engine's timeout
    assert stopped["truncated"] is True
    found = asyncio.run(search("order"))
    assert [e["message"] for e in found["entries"]] == ["order failed"]


def test_mcp_over_http_counts_slots_per_api_key(
    make_app: Callable[..., FastAPI], tmp_path: Path
) -> None:
    """Over dev3000's /mcp the slots belong to the caller's API key, as over REST."""
    from fastmcp.client.transports import StreamableHttpTransport

    app = make_app(
        mcp=True,
        dev3000_log_paths=[str(_logs(tmp_path))],
        diagnostic_auth_required=True,
        diagnostic_api_keys="mcp-key-one-0001:read,mcp-key-two-0002:read",
        diagnostic_search_time_budget=BUDGET,
        diagnostic_search_concurrency=1,
        diagnostic_rate_limit=100_000,
    )

    def client(url: str, key: str) -> Client[Any]:
        return Client(StreamableHttpTransport(url + "/mcp", headers={"X-API-Key": key}))

    async def scenario(url: str) -> tuple[str, bool]:
        async with client(url, "mcp-key-one-0001") as one, client(url, "mcp-key-two-0002") as two:
            evil = asyncio.ensure_future(
                one.call_tool("logs_search", {"query": EVIL, "regex": True})
            )
            await asyncio.sleep(BUDGET / 3)
            busy = await one.call_tool("logs_errors", {}, raise_on_error=False)
            other = await two.call_tool("logs_errors", {}, raise_on_error=False)
            await evil
            return str(busy.content), other.is_error

    with ServerThread(app) as srv:
        busy, other_failed = asyncio.run(asyncio.wait_for(scenario(srv.url), 30))
    assert "at most 1" in busy
    assert not other_failed
