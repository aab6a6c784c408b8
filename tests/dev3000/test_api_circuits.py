"""``/api/v1/diag/circuits`` and its control, over the real breaker registry."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from guilde_core.http.auth import hash_key
from guilde_core.resilience import BreakerRegistry, get_registry, reset_registry

CONTROL = "ctl-key-0123456789"
READ = "rd-key-0123456789"


@pytest.fixture
def registry() -> Iterator[BreakerRegistry]:
    reset_registry(BreakerRegistry())
    reg = get_registry()
    reg.breaker("payments")
    yield reg
    reset_registry()


@pytest.fixture
def client(make_app: object, registry: BreakerRegistry) -> Iterator[TestClient]:
    app = make_app(  # type: ignore[operator]
        diagnostic_auth_required=True, diagnostic_api_keys=f"{CONTROL}:read+control,{READ}:read"
    )
    with TestClient(app) as c:
        yield c


def test_list_circuits(client: TestClient) -> None:
    r = client.get("/api/v1/diag/circuits", headers={"X-API-Key": READ})
    assert r.status_code == 200
    circuits = {c["name"]: c for c in r.json()["circuits"]}
    assert circuits["payments"]["state"] == "closed"
    assert circuits["payments"]["failure_count"] == 0
    assert client.get("/api/v1/diag/circuits").status_code == 401


def test_open_close_reset_are_recorded(client: TestClient, registry: BreakerRegistry) -> None:
    key = {"X-API-Key": CONTROL}
    r = client.post(
        "/api/v1/diag/circuits/payments/open", json={"reason": "provider outage"}, headers=key
    )
    assert r.status_code == 200
    assert r.json()["circuit"]["state"] == "open"
    listed = client.get("/api/v1/diag/circuits", headers=key).json()["circuits"]
    assert {c["name"]: c["state"] for c in listed}["payments"] == "open"
    events = client.get("/api/v1/timeline", params={"kinds": "control_action"}, headers=key).json()[
        "items"
    ]
    assert events[0]["subject"] == "payments"
    assert events[0]["source"] == "circuits"
    assert events[0]["data"]["reason"] == "provider outage"
    assert events[0]["data"]["action"] == "circuit_open"
    assert events[0]["data"]["state"] == "open"

    closed = client.post(
        "/api/v1/diag/circuits/payments/close", json={"reason": "back"}, headers=key
    )
    assert closed.json()["circuit"]["state"] == "closed"
    reset = client.post(
        "/api/v1/diag/circuits/payments/reset", json={"reason": "recovered"}, headers=key
    )
    assert reset.status_code == 200
    assert reset.json()["circuit"]["forced"] is False


def test_control_errors(client: TestClient) -> None:
    key = {"X-API-Key": CONTROL}
    missing = client.post(
        "/api/v1/diag/circuits/nope/open", json={"reason": "testing"}, headers=key
    )
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    bad_action = client.post(
        "/api/v1/diag/circuits/payments/explode", json={"reason": "testing"}, headers=key
    )
    assert bad_action.status_code == 422
    no_reason = client.post("/api/v1/diag/circuits/payments/open", json={}, headers=key)
    assert no_reason.status_code == 422
    assert no_reason.json()["errors"][0]["field"] == "body.reason"
    forbidden = client.post(
        "/api/v1/diag/circuits/payments/open",
        json={"reason": "testing"},
        headers={"X-API-Key": READ},
    )
    assert forbidden.status_code == 403


def test_configured_breaker_can_be_forced_before_first_use(client: TestClient) -> None:
    r = client.post(
        "/api/v1/diag/circuits/openai/open",
        json={"reason": "planned maintenance"},
        headers={"X-API-Key": CONTROL},
    )
    assert r.status_code == 200
    assert r.json()["circuit"]["state"] == "open"


def test_control_follows_the_adapter_rules(client: TestClient) -> None:
    """The REST surface goes through ``servers.circuits.logic``: the reason is trimmed and
    bounded there, and the timeline event names the key that acted."""
    key = {"X-API-Key": CONTROL}
    short = client.post(
        "/api/v1/diag/circuits/payments/open", json={"reason": "  ok  "}, headers=key
    )
    assert short.status_code == 422
    assert "reason of 3-500 characters" in short.json()["detail"]
    r = client.post(
        "/api/v1/diag/circuits/payments/open", json={"reason": " card gateway down "}, headers=key
    )
    assert r.json()["reason"] == "card gateway down"
    assert r.json()["circuit"]["status"] == "unhealthy"
    (event,) = client.get(
        "/api/v1/timeline", params={"kinds": "control_action"}, headers=key
    ).json()["items"]
    key_id = hash_key(CONTROL)[:8]
    assert event["data"]["key_id"] == key_id
    assert event["data"]["surface"] == "rest"
    assert event["data"]["ok"] is True
    assert event["summary"] == (
        f"circuit_open payments by {key_id} via rest (done): card gateway down"
    )
