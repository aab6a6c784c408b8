"""agent-web: sessions CRUD with pagination/filters, bulk delete, messages, stream, auth."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from agent.web import create_app
from evals.recorded import build_recorded_server
from guilde_core.config import get_settings
from tests.agent.conftest import scenario_data


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("DIAGNOSTIC_AUTH_REQUIRED", "true")
    monkeypatch.setenv("DIAGNOSTIC_API_KEYS", "reader-key:read,admin-key:read+control")
    server, _ = build_recorded_server(scenario_data("db-unreachable"))
    app = create_app(get_settings(), mcp_target=server, checkpointer="memory")
    with TestClient(app, headers={"X-API-Key": "reader-key"}) as c:
        yield c


def test_health_is_open(client: TestClient) -> None:
    response = client.get("/health", headers={"X-API-Key": ""})
    assert response.status_code == 200
    # agent-web's own liveness, not dev3000's probes (the shared middleware answers those
    # only for the app that passes them)
    assert response.json() == {"status": "healthy", "service": "agent-web"}
    assert client.get("/api/v1/health").status_code == 404


def test_auth_required_and_problem_details(client: TestClient) -> None:
    response = client.get("/api/v1/sessions", headers={"X-API-Key": ""})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert client.get("/api/v1/sessions", headers={"X-API-Key": "wrong"}).status_code == 401
    assert "X-Request-ID" in response.headers


def test_session_lifecycle_pagination_filters_bulk_delete(client: TestClient) -> None:
    ids = []
    for i in range(3):
        r = client.post("/api/v1/sessions", json={"title": f"incident {i}"})
        assert r.status_code == 201
        ids.append(r.json()["id"])
    page = client.get("/api/v1/sessions", params={"limit": 2, "offset": 0}).json()
    assert page["total"] == 3
    assert len(page["items"]) == 2
    rest = client.get("/api/v1/sessions", params={"limit": 2, "offset": 2}).json()
    assert len(rest["items"]) == 1
    assert {i["id"] for i in page["items"] + rest["items"]} == set(ids)
    found = client.get("/api/v1/sessions", params={"q": "incident 1"}).json()
    assert [i["id"] for i in found["items"]] == [ids[1]]
    idle = client.get("/api/v1/sessions", params={"status": "idle"}).json()
    assert idle["total"] == 3
    bad = client.get("/api/v1/sessions", params={"status": "bogus", "limit": 0})
    assert bad.status_code == 422
    fields = {e["field"] for e in bad.json()["errors"]}
    assert {"query.status", "query.limit"} <= fields

    r = client.post("/api/v1/sessions/bulk-delete", json={"ids": [ids[0], ids[1], "nope"]})
    assert r.json() == {"deleted": [ids[0], ids[1]], "missing": ["nope"]}
    assert client.delete(f"/api/v1/sessions/{ids[2]}").status_code == 204
    assert client.get(f"/api/v1/sessions/{ids[2]}").status_code == 404
    assert client.get("/api/v1/sessions").json()["total"] == 0


def test_messages_and_follow_up_keep_context(client: TestClient) -> None:
    sid = client.post("/api/v1/sessions", json={"title": "checkout"}).json()["id"]
    r = client.post(
        f"/api/v1/sessions/{sid}/messages",
        params={"wait": "true"},
        json={"content": "why is checkout failing?"},
    )
    assert r.status_code == 200, r.text
    first: dict[str, Any] = r.json()
    assert first["root_cause"]["category"] == "unreachable"
    second = client.post(
        f"/api/v1/sessions/{sid}/messages", params={"wait": "true"}, json={"content": "still?"}
    ).json()
    assert [e["id"] for e in second["evidence"]] == ["E7", "E8", "E9", "E10", "E11", "E12"]
    history = client.get(f"/api/v1/sessions/{sid}/messages").json()
    assert [m["role"] for m in history] == ["user", "assistant", "user", "assistant"]
    assert history[2]["content"] == "still?"
    record = client.get(f"/api/v1/sessions/{sid}").json()
    assert record["turns"] == 2
    assert record["last_root_cause"]["component"] == "database"
    assert client.post(f"/api/v1/sessions/{sid}/messages", json={"content": ""}).status_code == 422


def test_latest_diagnosis_is_readable_after_the_run(client: TestClient) -> None:
    sid = client.post("/api/v1/sessions", json={"title": "later"}).json()["id"]
    before = client.get(f"/api/v1/sessions/{sid}/diagnosis")
    assert before.status_code == 404
    assert before.headers["content-type"].startswith("application/problem+json")
    answer = client.post(
        f"/api/v1/sessions/{sid}/messages", params={"wait": "true"}, json={"content": "why?"}
    ).json()
    latest = client.get(f"/api/v1/sessions/{sid}/diagnosis")
    assert latest.status_code == 200
    body = latest.json()
    assert body["session_id"] == sid
    assert body["root_cause"] == answer["root_cause"]
    assert [e["id"] for e in body["evidence"]] == [e["id"] for e in answer["evidence"]]
    assert client.get("/api/v1/sessions/nope/diagnosis").status_code == 404


def test_websocket_streams_progress(client: TestClient) -> None:
    sid = client.post("/api/v1/sessions", json={"title": "live"}).json()["id"]
    with client.websocket_connect(
        f"/api/v1/sessions/{sid}/stream", headers={"X-API-Key": "reader-key"}
    ) as ws:
        assert ws.receive_json() == {"type": "status", "status": "idle"}
        r = client.post(f"/api/v1/sessions/{sid}/messages", json={"content": "why?"})
        assert r.status_code == 202
        seen = []
        while True:
            event = ws.receive_json()
            seen.append(event["type"])
            if event["type"] in ("done", "failed"):
                break
    assert seen[0] == "run_started"
    assert "tool" in seen
    assert "finding" in seen
    assert "diagnosis" in seen
    assert seen[-1] == "done"


def test_websocket_requires_a_key(client: TestClient) -> None:
    from starlette.websockets import WebSocketDisconnect

    sid = client.post("/api/v1/sessions", json={"title": "x"}).json()["id"]
    with (
        pytest.raises(WebSocketDisconnect) as excinfo,
        client.websocket_connect(f"/api/v1/sessions/{sid}/stream", headers={"X-API-Key": ""}) as ws,
    ):
        ws.receive_json()
    assert excinfo.value.code == 4401


def test_openapi_documents_the_api(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    assert "/api/v1/sessions" in paths
    assert "/api/v1/sessions/bulk-delete" in paths
    assert "/api/v1/sessions/{session_id}/messages" in paths
    assert "/api/v1/sessions/{session_id}/diagnosis" in paths
    assert "/api/v1/sessions/{session_id}/approval" in paths


def test_approval_needs_control_scope_and_a_pending_action(client: TestClient) -> None:
    sid = client.post("/api/v1/sessions", json={"title": "x"}).json()["id"]
    denied = client.post(f"/api/v1/sessions/{sid}/approval", json={"approved": True})
    assert denied.status_code == 403
    nothing = client.post(
        f"/api/v1/sessions/{sid}/approval",
        json={"approved": True},
        headers={"X-API-Key": "admin-key"},
    )
    assert nothing.status_code == 409


def test_starts_and_answers_health_while_dev3000_is_unreachable() -> None:
    # agent-web's liveness must not depend on dev3000: without an MCP endpoint it starts,
    # /health answers, and session calls are a 503 problem that names the cause
    from tools.harness import free_port

    dead = f"http://127.0.0.1:{free_port()}/mcp"
    app = create_app(get_settings(), mcp_url=dead, checkpointer="memory")
    with TestClient(app) as c:
        assert c.get("/health").status_code == 200
        response = c.post("/api/v1/sessions", json={"question": "why is checkout failing?"})
        assert response.status_code == 503
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "MCP endpoint" in response.json()["detail"]
