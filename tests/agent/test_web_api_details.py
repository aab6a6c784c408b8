"""agent-web API details: ISO 8601 times and ``Location`` on create, a follow-up asked the
moment the diagnosis frame arrives is accepted, and the 401 problem's hint reads whole."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from websockets.sync.client import connect as ws_connect

from agent.web import create_app
from evals.recorded import build_recorded_server
from guilde_core.config import get_settings
from tests.agent.conftest import scenario_data
from tools.harness import ServerThread


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("DIAGNOSTIC_AUTH_REQUIRED", "true")
    monkeypatch.setenv("DIAGNOSTIC_API_KEYS", "reader-key:read")
    server, _ = build_recorded_server(scenario_data("db-unreachable"))
    app = create_app(get_settings(), mcp_target=server, checkpointer="memory")
    with TestClient(app, headers={"X-API-Key": "reader-key"}) as c:
        yield c


def _utc(text: str) -> datetime:
    parsed = datetime.fromisoformat(text)
    assert parsed.tzinfo is not None, f"{text!r} has no time zone"
    return parsed.astimezone(UTC)


def test_create_answers_location_and_iso_8601_times(client: TestClient) -> None:
    before = datetime.now(UTC)
    created = client.post("/api/v1/sessions", json={"title": "checkout"})
    assert created.status_code == 201
    record = created.json()
    assert created.headers["Location"] == f"/api/v1/sessions/{record['id']}"
    assert isinstance(record["created_at"], str)
    created_at, updated_at = _utc(record["created_at"]), _utc(record["updated_at"])
    assert abs((created_at - before).total_seconds()) < 60
    assert updated_at >= created_at
    fetched = client.get(created.headers["Location"])
    assert fetched.status_code == 200
    assert fetched.json()["created_at"] == record["created_at"]
    listed = client.get("/api/v1/sessions").json()["items"][0]
    assert _utc(listed["created_at"]) == created_at


def test_a_follow_up_right_after_the_diagnosis_frame_is_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client acting on the diagnosis frame at once must not find the session still
    'running' (409): the frame is sent once the run's end is recorded. A real server with
    the SQLite session store, as agent-web runs by default."""
    monkeypatch.setenv("DEV3000_DATA_DIR", str(tmp_path))
    server, _ = build_recorded_server(scenario_data("db-unreachable"))
    app = create_app(get_settings(), mcp_target=server, checkpointer="sqlite")
    with ServerThread(app) as srv, httpx.Client(base_url=srv.url, timeout=30) as http:
        sid = http.post("/api/v1/sessions", json={"title": "race"}).json()["id"]
        ws_url = srv.url.replace("http://", "ws://") + f"/api/v1/sessions/{sid}/stream"
        with ws_connect(ws_url) as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "status"
            answer = http.post(f"/api/v1/sessions/{sid}/messages", json={"content": "why?"})
            assert answer.status_code == 202
            for turn in range(5):
                while (event := json.loads(ws.recv(timeout=30)))["type"] != "diagnosis":
                    assert event["type"] != "failed", event
                follow_up = http.post(
                    f"/api/v1/sessions/{sid}/messages", json={"content": f"and now ({turn})?"}
                )
                assert follow_up.status_code == 202, (turn, follow_up.text)
            while json.loads(ws.recv(timeout=30))["type"] != "done":
                pass


def test_the_401_hint_is_not_redacted(client: TestClient) -> None:
    refused = client.get("/api/v1/sessions", headers={"X-API-Key": ""})
    assert refused.status_code == 401
    detail = refused.json()["detail"]
    assert "REDACTED" not in detail
    assert "X-API-Key header" in detail
    assert "Bearer" in detail
    assert "Authorization header" in detail
