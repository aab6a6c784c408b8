"""Contracts of the dev3000 HTTP endpoints (health, diag, timeline, metrics, errors, ids)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dev3000.api.state import AppState
from guilde_core.events import make_event

PROBLEM = "application/problem+json"


def test_container_health_is_plain_ok(api: TestClient) -> None:
    r = api.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_basic_health_and_live_bodies(api: TestClient) -> None:
    r = api.get("/api/v1/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "healthy"
    assert body["service"] == "dev3000"
    assert re.match(r"^\d{4}-\d\d-\d\dT", body["timestamp"])
    live = api.get("/api/v1/health/live").json()
    assert live["status"] == "healthy"
    assert live["uptime_seconds"] >= 0
    assert isinstance(live["pid"], int)


def test_ready_is_healthy_after_start_and_503_while_draining(api: TestClient) -> None:
    r = api.get("/api/v1/health/ready")
    assert r.status_code == 200
    assert r.json()["status"] == "healthy"
    state: AppState = api.app.state.dev3000  # type: ignore[attr-defined]
    state.drain()
    r = api.get("/api/v1/health/ready")
    assert r.status_code == 503
    assert r.json()["status"] == "unhealthy"
    assert r.json()["reason"] == "shutting down"
    # liveness is unaffected by draining
    assert api.get("/api/v1/health/live").status_code == 200


def test_deep_health_has_the_seed_shape(api: TestClient) -> None:
    r = api.get("/api/v1/health/deep")
    assert r.status_code == 200
    body = r.json()
    for key in (
        "status",
        "timestamp",
        "service",
        "version",
        "environment",
        "uptime_seconds",
        "checks",
        "metrics",
        "diagnostics",
    ):
        assert key in body, key
    assert body["status"] in ("healthy", "degraded", "unhealthy")
    assert {"external_apis", "observability"} <= set(body["checks"])
    assert {"memory_mb", "cpu_percent", "open_connections", "active_tasks"} <= set(
        body["diagnostics"]
    )
    assert "requests_total" in body["metrics"]


def test_deep_health_checks_database_and_redis(
    make_app: Callable[..., FastAPI], pg_dsn: str, redis_url: str
) -> None:
    with TestClient(make_app(database_url=pg_dsn, redis_url=redis_url)) as client:
        body = client.get("/api/v1/health/deep").json()
    db = body["checks"]["database"]
    assert db["status"] in ("healthy", "degraded")
    assert db["type"] == "postgresql"
    assert db["pool"]["size"] >= db["pool"]["in_use"] >= 1
    redis = body["checks"]["redis"]
    assert redis["connected_clients"] >= 1
    assert "memory_used_mb" in redis


def test_deep_health_is_503_when_a_critical_dependency_is_down(
    make_app: Callable[..., FastAPI],
) -> None:
    from tools.harness import free_port

    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/test"
    with TestClient(make_app(database_url=dead, health_check_timeout=2)) as client:
        r = client.get("/api/v1/health/deep")
    assert r.status_code == 503
    assert r.json()["status"] == "unhealthy"
    assert r.json()["checks"]["database"]["status"] == "unhealthy"
    assert (
        "127.0.0.1" in r.json()["checks"]["database"]["error"]
        or r.json()["checks"]["database"]["error"]
    )


def test_deep_health_redacts_dsn_passwords(make_app: Callable[..., FastAPI]) -> None:
    from tools.harness import free_port

    dead = f"postgresql://postgres:hunter2secret@127.0.0.1:{free_port()}/test"
    with TestClient(make_app(database_url=dead, health_check_timeout=1)) as client:
        text = client.get("/api/v1/health/deep").text
    assert "hunter2secret" not in text


def test_request_id_is_echoed_or_generated(api: TestClient) -> None:
    r = api.get("/api/v1/health", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    generated = api.get("/api/v1/health").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    # an unsafe incoming id is replaced, never reflected
    r = api.get("/api/v1/health", headers={"X-Request-ID": "bad id\twith spaces"})
    assert r.headers["x-request-id"] != "bad id\twith spaces"


def test_request_id_is_the_correlation_id_of_events(api: TestClient) -> None:
    r = api.post(
        "/api/v1/targets",
        json={"name": "corr", "url": "tcp://127.0.0.1:1", "kind": "tcp"},
        headers={"X-Request-ID": "req-corr-1"},
    )
    assert r.status_code == 201
    state: AppState = api.app.state.dev3000  # type: ignore[attr-defined]
    events = [e for e in state.bus.events() if e.subject == "corr"]
    assert events
    assert events[-1].correlation_id == "req-corr-1"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/does/not/exist", 404),
        ("DELETE", "/api/v1/health", 405),
        ("GET", "/api/v1/timeline?limit=0", 422),
        ("GET", "/api/v1/targets/NOT_A_VALID_NAME", 422),
        ("GET", "/api/v1/targets/missing", 404),
    ],
)
def test_errors_are_problem_details_with_request_id(
    api: TestClient, method: str, path: str, status: int
) -> None:
    r = api.request(method, path, headers={"X-Request-ID": "rid-err"})
    assert r.status_code == status
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["status"] == status
    assert body["title"]
    assert body["type"].startswith("https://")
    assert body["request_id"] == "rid-err"
    assert r.headers["x-request-id"] == "rid-err"


def test_validation_problem_names_each_field(api: TestClient) -> None:
    r = api.post("/api/v1/targets", json={"name": "Bad Name", "url": "nope", "expected_status": 7})
    assert r.status_code == 422
    fields = {e["field"] for e in r.json()["errors"]}
    assert {"body.name", "body.url", "body.expected_status"} <= fields


def test_unexpected_exception_is_a_500_problem_without_traceback(
    make_app: Callable[..., FastAPI],
) -> None:
    app = make_app()

    @app.get("/boom")
    async def boom() -> dict[str, Any]:
        raise RuntimeError("secret internals sk-abcdefghijklmnopqrstuvwxyz123456")

    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/boom", headers={"X-Request-ID": "rid-500"})
    assert r.status_code == 500
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.headers["x-request-id"] == "rid-500"
    assert "Traceback" not in r.text
    assert "sk-abcdef" not in r.text
    assert r.json()["request_id"] == "rid-500"


def test_timeline_pagination_and_filters(api: TestClient) -> None:
    state: AppState = api.app.state.dev3000  # type: ignore[attr-defined]
    for i in range(7):
        state.bus.publish(
            make_event(
                source="logs",
                kind="error_log",
                severity="error" if i % 2 else "info",
                subject=f"svc-{i}",
                summary=f"line {i}",
            )
        )
    page1 = api.get("/api/v1/timeline", params={"kinds": "error_log", "limit": 3}).json()
    assert [e["subject"] for e in page1["items"]] == ["svc-6", "svc-5", "svc-4"]
    assert page1["next_cursor"] == page1["items"][-1]["id"]
    page2 = api.get(
        "/api/v1/timeline",
        params={"kinds": "error_log", "limit": 3, "before": page1["next_cursor"]},
    ).json()
    assert [e["subject"] for e in page2["items"]] == ["svc-3", "svc-2", "svc-1"]
    errors = api.get("/api/v1/timeline", params={"severity": "error", "kinds": "error_log"}).json()
    assert {e["subject"] for e in errors["items"]} == {"svc-1", "svc-3", "svc-5"}
    bad = api.get("/api/v1/timeline", params={"severity": "loud"})
    assert bad.status_code == 422
    assert "severity" in bad.json()["detail"]


def test_metrics_expose_request_counters(api: TestClient) -> None:
    api.get("/api/v1/health")
    text = api.get("/metrics").text
    assert 'dev3000_http_requests_total{method="GET",route="/api/v1/health",status="200"}' in text
    assert "dev3000_http_request_duration_seconds_bucket" in text
    assert "dev3000_stream_clients" in text


def test_openapi_has_examples_and_docs_page(api: TestClient) -> None:
    spec = api.get("/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/api/v1/health",
        "/api/v1/health/deep",
        "/api/v1/diag/status",
        "/api/v1/diag/circuits",
        "/api/v1/timeline",
        "/api/v1/targets",
        "/api/v1/logs/search",
    ):
        assert path in paths, path
    deep = paths["/api/v1/health/deep"]["get"]["responses"]["200"]["content"]["application/json"]
    assert deep["example"]["checks"]["database"]["status"] == "healthy"
    assert "examples" in spec["components"]["schemas"]["TargetCreate"]
    docs = api.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


def test_diag_status_summarises_everything(api: TestClient) -> None:
    r = api.get("/api/v1/diag/status")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == body["health"]["status"]
    assert body["readiness"]["status"] == "healthy"
    assert body["rate_limit"]["backend"] == "memory"
    assert body["targets"]["backend"] == "sqlite"
    assert body["stream"]["clients"] == 0


def test_app_runs_the_timeline_service_fed_by_its_deep_report(
    make_app: Callable[..., FastAPI],
) -> None:
    with TestClient(make_app(timeline_sources=True)) as client:
        state: AppState = client.app.state.dev3000  # type: ignore[attr-defined]
        service = state.timeline
        assert service is not None
        assert service.started
        assert service.poller is not None
        assert client.portal is not None
        report = client.portal.call(service.poller.check)
        assert report["status"] in ("healthy", "degraded")
        assert "shared_state" in report["checks"]  # the app's own report, not a bare one
        client.portal.call(service.poller.poll_once)
        assert service.poller.last["overall"] == report["status"]


def test_state_holds_typed_parts_and_a_reload_keeps_the_runtime_targets(
    make_app: Callable[..., FastAPI], stack_service: Any
) -> None:
    from dev3000.app import reload_config

    app = make_app()
    with TestClient(app) as client:
        state: AppState = app.state.dev3000
        assert state.stream is not None
        assert state.stream.bus is state.bus
        with pytest.raises(AttributeError):
            state.extras = {}  # type: ignore[attr-defined]  # no bag of string keys
        added = client.post("/api/v1/targets", json={"name": "web", "url": stack_service.url})
        assert added.status_code == 201
        assert "web" in client.get("/api/v1/health/deep").json()["checks"]["targets"]
        before = state.health
        assert client.portal is not None
        assert client.portal.call(before.snapshot) is client.portal.call(before.snapshot)
        reload_config(app)
        assert state.health is not before
        assert "web" in state.health.ever_up  # what was seen up before still counts
        # the next deep report is built anew, by the new service
        assert client.portal.call(state.health.snapshot) is not client.portal.call(before.snapshot)
        targets = client.portal.call(state.health.target_list).targets
        assert {t.name: t.source for t in targets}["web"] == "registry"
