"""Hostile input answered with a problem (or a close code), never a 500 or a dropped socket."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from guilde_core.config import Settings
from guilde_core.events import make_event

from .conftest import StreamFactory, recv_json, recv_until


def test_replay_larger_than_the_buffered_events_replays_what_there_is(
    stream_server: StreamFactory,
) -> None:
    srv = stream_server(buffer_size=100)
    published = []
    for i in range(3):
        event = make_event(source="test", kind="notice", subject=f"s{i}", summary=f"event {i}")
        srv.bus.publish(event)
        published.append(event.id)
    # SSE: the whole buffer (3 events) instead of an IndexError and a 500
    with (
        httpx.Client(timeout=10) as client,
        client.stream("GET", srv.url + "/api/v1/diag/stream/sse", params={"replay": 50}) as resp,
    ):
        assert resp.status_code == 200
        ids: list[str] = []
        event_id = None
        for line in resp.iter_lines():
            if line.startswith("id:"):
                event_id = line[3:].strip()
            elif line.startswith("event:") and line[6:].strip() == "timeline":
                ids.append(str(event_id))
            if len(ids) == 3:
                break
        assert ids == published
    # WebSocket: the same three events, not a dropped connection with a traceback
    with srv.ws("replay=50") as ws:
        assert recv_json(ws)["type"] == "hello"
        got = [recv_until(ws, "event")["event"]["id"] for _ in published]
        assert got == published
        ws.send(json.dumps({"type": "ping"}))
        assert recv_until(ws, "pong")["type"] == "pong"


def test_an_over_long_source_name_is_a_problem_without_the_server_path(
    make_app: Callable[..., FastAPI], tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "app.log").write_text("ERROR boom\n", encoding="utf-8")
    with TestClient(make_app(dev3000_log_paths=[str(logs)])) as client:
        for sources in ("0" * 300, "a/" + "b" * 256, "app.log," + "x" * 400):
            r = client.get("/api/v1/logs/search", params={"q": "boom", "sources": sources})
            assert r.status_code == 422, r.text
            assert r.headers["content-type"].startswith("application/problem+json")
            assert str(tmp_path) not in r.text


def test_tool_errors_name_no_absolute_path() -> None:
    from fastmcp.exceptions import ToolError

    from servers.common import as_tool_errors

    @as_tool_errors
    async def opens(name: str) -> None:
        raise OSError(36, "File name too long", "/srv/secret-place/logs/" + name)

    async def call() -> None:
        await opens("0" * 300)

    with pytest.raises(ToolError) as info:
        asyncio.run(call())
    assert "/srv/secret-place" not in str(info.value)
    assert "File name too long" in str(info.value)


def test_mcp_tail_with_an_over_long_source_name_is_a_tool_error(tmp_path: Path) -> None:
    from fastmcp import Client
    from fastmcp.exceptions import ToolError

    from servers.logs.server import build_server

    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "app.log").write_text("ERROR boom\n", encoding="utf-8")
    server = build_server(Settings(dev3000_log_paths=[str(logs)]))

    async def call() -> None:
        async with Client(server) as client:
            await client.call_tool("logs_tail", {"sources": ["0" * 300]})

    with pytest.raises(ToolError) as info:
        asyncio.run(call())
    assert str(tmp_path) not in str(info.value)


def test_a_bad_cursor_is_a_400_problem(api: TestClient) -> None:
    for params in ({"before": "zzz"}, {"after": "1' OR 1=1"}, {"before": "9" * 13}):
        r = api.get("/api/v1/timeline", params=params)
        assert r.status_code == 400, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["type"].endswith("/invalid_cursor")
    event = make_event(source="test", kind="notice", subject="s", summary="x")
    assert api.get("/api/v1/timeline", params={"before": event.id}).status_code == 200


def test_a_bad_resume_point_is_refused_on_both_stream_transports(
    stream_server: StreamFactory,
) -> None:
    from .conftest import closed_with

    srv = stream_server()
    r = httpx.get(
        srv.url + "/api/v1/diag/stream/sse", headers={"Last-Event-ID": "not-an-id"}, timeout=10
    )
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/problem+json")
    with srv.ws("resume_from=../../etc") as ws:
        code, reason = closed_with(ws)
    assert code == 4400
    assert "resume_from" in reason


def test_target_urls_that_cannot_be_parsed_are_a_422(api: TestClient) -> None:
    """Found by the live schemathesis run: a tcp target's URL was parsed only by its check."""
    bad = ("http://[", "tcp://[::1", "redis://[x]:1", "https://a]b", "tcp://a:b", "tcp://h:99999")
    for kind in ("http", "tcp", "redis", "postgres"):
        for url in (*bad, "http://:80"):
            r = api.post("/api/v1/targets", json={"name": "t1", "kind": kind, "url": url})
            assert r.status_code == 422, (kind, url, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
    ok = api.post("/api/v1/targets", json={"name": "t2", "kind": "tcp", "url": "tcp://127.0.0.1:1"})
    assert ok.status_code == 201
    assert api.patch("/api/v1/targets/t2", json={"url": "tcp://a:b"}).status_code == 422


def test_browser_resources_without_a_capture_are_a_404_not_a_503(api: TestClient) -> None:
    """Found by the live schemathesis run: a dev3000 started without --browser answered
    its browser resources with 503 Service Unavailable."""
    assert api.get("/api/v1/browser/status").json()["state"] == "off"
    for path in (
        "/api/v1/browser/errors",
        "/api/v1/browser/screenshots/latest",
        "/api/v1/browser/screenshots/0123456789abcdef",
    ):
        r = api.get(path)
        assert r.status_code == 404, (path, r.text)
        assert "--browser" in r.json()["detail"]
