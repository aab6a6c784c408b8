"""Planted secrets of every kind never survive any path that reads, transforms and serves text.

The property: hypothesis writes log files holding planted secrets (``sk-`` keys, Bearer
tokens, DSNs with passwords, ``x-api-key`` headers, AWS keys, JWTs, cookies, ``?token=``
query strings, see :mod:`tests.planted`) in every log format, then reads them through

* the logs logic: tail, literal and regex search (with context lines), error groups, trace;
* REST: ``/api/v1/logs/search``, ``/api/v1/timeline`` and the ``/timeline`` page;
* MCP (dev3000's aggregate, in-process): the logs tools, the errors resource, the timeline;
* the timeline: the log follower's ``error_log`` events, breaker transitions whose reason
  carries the secrets, events built from them;
* the agent: an offline diagnosis over that aggregate, as JSON and as the rendered report;

and asserts that not even 8 consecutive characters of any planted secret come out. A second
test plants one secret of each kind in a real ``dev3000 serve`` process at debug level
(headers, query strings, a control reason, a search) and reads its own log output.
"""

from __future__ import annotations

import asyncio
import io
import json
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dev3000.app import create_app
from dev3000.mcp_aggregate import build_aggregate_server
from dev3000.timeline.bus import EventBus
from dev3000.timeline.sources import LogFollower, breaker_event
from guilde_core.config import Settings
from guilde_core.events import make_event
from guilde_core.resilience import BreakerState, BreakerTransition
from servers.logs import logic
from tests.planted import LINE_STYLES, Planted, leaks, log_line, one_of_each, planted_lists
from tools.harness import ManagedProcess, free_port, wait_for_http, wait_until


@dataclass
class World:
    root: Path
    settings: Settings
    api: TestClient
    bus: EventBus


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    root = Path(tempfile.mkdtemp(prefix="secrets-everywhere-"))
    (root / "logs").mkdir()
    nowhere = f"http://127.0.0.1:{free_port()}"
    settings = Settings(
        dev3000_data_dir=str(root / "data"),
        dev3000_log_paths=[str(root / "logs")],
        dev3000_backend_url=nowhere,
        dev3000_agent_url=nowhere,
        dev3000_frontend_url=nowhere,
        diagnostic_rate_limit=1_000_000,
        health_check_timeout=1,
        dev3000_allowed_hosts=["testserver"],  # TestClient's Host (module scope: set here)
    )
    bus = EventBus(1000)
    app = create_app(settings, mcp=False, timeline_sources=False, bus=bus)
    with TestClient(app) as api:
        yield World(root / "logs", settings, api, bus)
    import shutil

    shutil.rmtree(root, ignore_errors=True)


def _write(root: Path, secrets: list[Planted], styles: list[int]) -> None:
    import shutil

    for old in root.iterdir():
        shutil.rmtree(old) if old.is_dir() else old.unlink()
    lines = [log_line(p, styles[i % len(styles)], i) for i, p in enumerate(secrets)]
    (root / "app.log").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "worker.log").write_text("\n".join(reversed(lines)) + "\n", encoding="utf-8")
    (root / "browser").mkdir()
    (root / "browser" / "browser.jsonl").write_text(_browser_lines(secrets), encoding="utf-8")


def _browser_lines(secrets: list[Planted]) -> str:
    """The browser capture's log source: its records as it writes them, each text through
    the capture's own cleaning (cut where the cut falls inside the secret)."""
    from servers.browser.scrub import clean_text, scrub_url

    lines = []
    for i, p in enumerate(secrets):
        limit = 40 + i
        straddling = "x" * (limit - len(p.text) // 2) + " " + p.text  # the cut halves it
        url = scrub_url(f"http://127.0.0.1:1/app/{p.text}/view?token={p.secret}#{p.text}")
        record = {
            "ts": f"2026-01-22T10:{i % 60:02d}:00Z",
            "level": "error",
            "logger": "browser.exception",
            "message": "uncaught Error: " + clean_text(straddling, limit),
            "url": url,
            "stack": clean_text(f"Error: {p.text}\n    at load ({url}:1:1)", 4000),
            "request_id": f"req-{i:04d}",
        }
        lines.append(json.dumps(record))
    return "\n".join(lines) + "\n"


def _dump(value: Any) -> str:
    if hasattr(value, "model_dump_json"):
        return str(value.model_dump_json())
    return json.dumps(value, default=str)


async def _logic_views(s: Settings) -> list[str]:
    out = [
        await logic.tail(lines=200, settings=s),
        await logic.search("2026", context=2, settings=s),
        await logic.search(r"[a-z]+", regex=True, ignore_case=True, context=1, settings=s),
        await logic.error_groups(settings=s),
        await logic.trace("req-0001", settings=s),
    ]
    return [_dump(v) for v in out]


async def _timeline_views(world: World, secrets: list[Planted]) -> list[str]:
    """Events from the log follower, breaker transitions and plain events, on the bus."""
    follower = LogFollower(world.bus, world.settings, max_per_second=1000)
    taken = 0
    stream = logic.follow(from_start=True, poll_interval=0.01, settings=world.settings)
    async for entry in stream:
        follower.handle(entry)
        taken += 1
        if taken >= len(secrets):
            break
    await stream.aclose()  # type: ignore[attr-defined]
    text = " ".join(p.text for p in secrets)
    world.bus.publish(
        breaker_event(
            BreakerTransition(
                name="payments",
                from_state=BreakerState.CLOSED,
                to_state=BreakerState.OPEN,
                at=datetime.now(UTC),
                reason="ServiceUnavailableError: " + text,
            )
        )
    )
    world.bus.publish(
        make_event(source="test", kind="notice", subject=text, summary=text, data={"x": text})
    )
    return [_dump([e.model_dump(mode="json") for e in world.bus.events()])]


async def _mcp_and_agent_views(world: World) -> list[str]:
    from fastmcp import Client
    from rich.console import Console

    from agent.report import render_diagnosis
    from tests.agent.conftest import diagnose

    server = build_aggregate_server(world.settings, bus=world.bus)
    views: list[str] = []
    async with Client(server) as client:
        for tool, args in (
            ("logs_tail", {"lines": 200}),
            ("logs_search", {"query": "2026", "context": 2}),
            ("logs_search", {"query": ".", "regex": True}),
            ("logs_errors", {}),
            ("logs_trace", {"correlation_id": "req-0001"}),
            ("timeline_recent", {}),
        ):
            result = await client.call_tool(tool, args, raise_on_error=False)
            views.append(str(result.content) + _dump(result.structured_content))
        for resource in await client.list_resources():
            if "logs" in str(resource.uri):
                views.append(str(await client.read_resource(resource.uri)))
    diagnosis = await asyncio.to_thread(diagnose, server, "why are orders failing?")
    views.append(diagnosis.model_dump_json())
    console = Console(file=io.StringIO(), width=400, record=True, color_system=None)
    render_diagnosis(diagnosis, console)
    views.append(console.export_text())
    return views


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)
@given(
    secrets=planted_lists(min_size=2, max_size=8),
    styles=st.lists(st.integers(0, LINE_STYLES - 1), min_size=1, max_size=4),
)
def test_no_planted_secret_survives_any_transforming_path(
    world: World, secrets: list[Planted], styles: list[int]
) -> None:
    _write(world.root, secrets, styles)
    views = asyncio.run(_logic_views(world.settings))
    api = world.api
    searches: list[dict[str, str | int]] = [
        {"q": "2026", "context": 2},
        {"q": ".", "regex": "true", "limit": 500},
        {"q": "failed", "ignore_case": "true"},
    ]
    for params in searches:
        r = api.get("/api/v1/logs/search", params=params)
        assert r.status_code == 200, r.text
        views.append(r.text)
    views += asyncio.run(_timeline_views(world, secrets))
    views.append(api.get("/api/v1/timeline", params={"limit": 500}).text)
    views.append(api.get("/timeline").text)
    views += asyncio.run(_mcp_and_agent_views(world))
    everything = "\n".join(views)
    assert "REDACTED" in everything  # the secrets were read, and masked
    assert leaks(everything, secrets) == []


def test_dev3000_serve_logs_no_secret_at_debug_level(tmp_path: Path) -> None:
    """A real ``dev3000 serve`` at debug level (the development default): every secret
    that reaches it (headers, query strings, a control reason, a search, an MCP call) stays
    out of its own log output, and a control reason with newlines adds no log line."""
    from websockets.sync.client import connect

    secrets = one_of_each(seed=21)
    by_kind = {p.kind: p for p in secrets}
    read_key, control_key = "serve-read-key-7777", "serve-control-key-8888"
    port = free_port()
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "app.log").write_text(
        "\n".join(log_line(p, i % LINE_STYLES, i) for i, p in enumerate(secrets)) + "\n",
        encoding="utf-8",
    )
    env = {
        "DEV3000_DATA_DIR": str(tmp_path / "data"),
        "DEV3000_LOG_PATHS": str(tmp_path / "logs"),
        "DEV3000_LOG_LEVEL": "debug",
        "DIAGNOSTIC_AUTH_REQUIRED": "true",
        "DIAGNOSTIC_API_KEYS": f"{read_key}:read,{control_key}:read+control",
        "DIAGNOSTIC_CONTROL_ENABLED": "true",
        "DIAGNOSTIC_RATE_LIMIT": "100000",
    }
    out_path, err_path = tmp_path / "serve.out", tmp_path / "serve.err"
    argv = [sys.executable, "-m", "guilde_diag.cli", "serve", "--port", str(port)]
    base = f"http://127.0.0.1:{port}"
    with (
        out_path.open("wb") as out,
        err_path.open("wb") as err,
        ManagedProcess(argv, env=env, cwd=tmp_path, stdout=out, stderr=err),
    ):
        wait_for_http(base + "/api/v1/health/ready", timeout=60, status=200)
        client = httpx.Client(base_url=base, timeout=10)
        token = by_kind["query_token"].secret
        # the stream with ?token= (as browsers do), over SSE and the WebSocket
        with client.stream("GET", f"/api/v1/diag/stream/sse?token={read_key}&replay=5") as r:
            assert r.status_code == 200
        with connect(
            f"ws://127.0.0.1:{port}/api/v1/diag/stream?replay=1&token={read_key}&access_token={token}",
            additional_headers={
                "X-API-Key": read_key,
                "Cookie": "session=" + by_kind["cookie"].secret,
                "X-Custom-Auth": by_kind["x_api_key"].secret,
            },
            proxy=None,
            open_timeout=10,
        ) as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "hello"
        # wrong keys, Bearer and cookies on plain requests; a secret in a path and a query
        client.get("/api/v1/timeline", headers={"Authorization": "Bearer " + token})
        client.get("/api/v1/timeline", headers={"X-API-Key": by_kind["sk_key"].text})
        client.get(f"/api/v1/nowhere/{by_kind['aws_key'].text}?api_key={token}")
        # a search for a secret, and a control reason carrying secrets and a forged line
        client.get(
            "/api/v1/logs/search",
            params={"q": by_kind["jwt"].text},
            headers={"X-API-Key": read_key},
        )
        reason = "rotate " + by_kind["dsn"].text + "\nCRITICAL dev3000: forged line"
        opened = client.post(
            "/api/v1/diag/circuits/openai/open",
            json={"reason": reason},
            headers={"X-API-Key": control_key},
        )
        assert opened.status_code == 200, opened.text
        # an MCP call with a key header
        client.post(
            "/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={
                "X-API-Key": read_key,
                "Accept": "application/json, text/event-stream",
                "Authorization": "Bearer " + by_kind["bearer"].secret,
            },
        )

        def logged() -> bool:
            return "forged line" in err_path.read_text(encoding="utf-8", errors="replace")

        wait_until(logged, timeout=10)
    output = out_path.read_text(errors="replace") + err_path.read_text(errors="replace")
    assert "< x-api-key: " in output.lower()  # the handshake was logged, its values masked
    for key in (read_key, control_key):
        assert key not in output
    assert leaks(output, secrets) == [], output[-3000:]
    assert "forged line" in output
    assert not any(line.startswith("CRITICAL dev3000: forged") for line in output.splitlines())
