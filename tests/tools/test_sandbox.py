"""The sandbox as a backend: orders, checkout, health, metrics, logs, chaos auth."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import httpx
import pytest

from guilde_core.errors import CircuitOpenError, RateLimitedError
from guilde_core.resilience import BreakerRegistry
from tests.tools.conftest import Sandbox, SandboxFactory
from tools.harness import ServerThread
from tools.sandbox import SandboxConfig, create_app
from tools.sandbox.logs import describe_error


def test_orders_checkout_health_metrics_and_logs(sandbox: Sandbox) -> None:
    created = sandbox.post(
        "/api/v1/orders",
        json={"item": "widget", "quantity": 10, "price_cents": 250},
        headers={"x-request-id": "req-abc-123"},
    )
    assert created.status_code == 201
    order = created.json()
    assert order["total_cents"] == 2375  # 5% off from 10 items
    assert created.headers["x-request-id"] == "req-abc-123"
    assert sandbox.get(f"/api/v1/orders/{order['id']}").json()["item"] == "widget"
    listed = sandbox.get("/api/v1/orders").json()
    assert [o["id"] for o in listed["orders"]] == [order["id"]]
    missing = sandbox.get("/api/v1/orders/999999")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    bad = sandbox.post("/api/v1/orders", json={"item": "", "quantity": 0})
    assert bad.status_code == 422
    assert "quantity" in bad.json()["detail"]
    checkout = sandbox.post("/api/v1/checkout", json={"order_id": order["id"]})
    assert checkout.status_code == 200
    assert checkout.json()["summary"].startswith("echo: Summarise order")
    assert sandbox.upstream.control.count("openai") == 1

    health = sandbox.health()
    assert health["status"] == "healthy"
    checks = health["checks"]
    assert checks["database"]["type"] == "sqlite"
    assert checks["database"]["pool"] == {"size": 5, "available": 5, "in_use": 0}
    assert checks["redis"]["type"] == "memory"
    assert checks["external_apis"]["openai"]["circuit_state"] == "closed"
    assert health["metrics"]["requests_total"] >= 5
    assert sandbox.get("/api/v1/health/live").json()["status"] == "healthy"
    assert sandbox.get("/api/v1/health/ready").status_code == 200
    assert sandbox.get("/api/v1/health").json()["status"] == "healthy"

    assert (
        sandbox.metric(
            "sandbox_http_requests_total", route="/api/v1/orders", method="POST", status="201"
        )
        == 1
    )
    assert (
        sandbox.metric(
            "sandbox_http_request_duration_seconds_count", route="/api/v1/orders/{order_id}"
        )
        >= 2
    )
    assert sandbox.metric("sandbox_db_pool_size") == 5

    lines = sandbox.log_lines()
    mine = [line for line in lines if line.get("request_id") == "req-abc-123"]
    assert {line["message"] for line in mine} >= {"order created", "request"}
    assert all(line["service"] == "sandbox" for line in lines)
    assert "sk-sandbox-fake" not in (sandbox.logs / "sandbox.jsonl").read_text()


def test_chaos_endpoint_needs_the_token(sandbox: Sandbox, tmp_path: Path) -> None:
    assert sandbox.get("/_chaos/status").status_code == 401
    wrong = sandbox.get("/_chaos/status", headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.headers["content-type"] == "application/problem+json"
    ok = sandbox.get("/_chaos/status", headers={"x-chaos-token": sandbox.token})
    assert ok.json() == {"active": []}
    unknown = sandbox.post("/_chaos/faults/nope", headers={"x-chaos-token": sandbox.token}, json={})
    assert unknown.status_code == 404
    assert "known: db-unreachable" in unknown.json()["detail"]
    capped = sandbox.post(
        "/_chaos/faults/disk-fill", headers={"x-chaos-token": sandbox.token}, json={"cap_mb": 10**6}
    )
    assert capped.status_code == 422
    assert "cap_mb" in capped.json()["detail"]


def test_generated_token_is_written_0600(tmp_path: Path, llm_env: None) -> None:
    token_file = tmp_path / "token"
    cfg = SandboxConfig(logs_dir=tmp_path / "logs", chaos_token_file=token_file)
    app = create_app(cfg, registry=BreakerRegistry())
    with ServerThread(app) as server:
        token = token_file.read_text()
        assert len(token) >= 32
        assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
        response = httpx.get(
            server.url + "/_chaos/status", headers={"authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200


def test_postgres_backend(make_sandbox: SandboxFactory, pg_dsn: str, pg_schema: str) -> None:
    sb = make_sandbox(database_url=pg_dsn, pg_schema=pg_schema, pool_size=3)
    created = sb.post("/api/v1/orders", json={"item": "pg", "quantity": 2, "price_cents": 5})
    assert created.status_code == 201
    assert sb.get(f"/api/v1/orders/{created.json()['id']}").json()["item"] == "pg"
    health = sb.health()
    assert health["checks"]["database"]["type"] == "postgresql"
    assert health["checks"]["database"]["pool"]["size"] == 3
    import psycopg
    from psycopg import sql

    query = sql.SQL("SELECT count(*) FROM {}.sandbox_orders").format(sql.Identifier(pg_schema))
    with psycopg.connect(pg_dsn) as conn:
        count = conn.execute(query).fetchone()
    assert count == (1,)
    sb.chaos.inject("pool-exhaustion")
    h = sb.health()
    assert h["checks"]["database"]["status"] == "unhealthy"
    assert h["checks"]["database"]["pool"]["in_use"] == 3
    assert "pool exhausted" in h["checks"]["database"]["error"]
    assert sb.post("/api/v1/orders", json={"item": "x"}).status_code == 503
    sb.chaos.clear("pool-exhaustion")
    assert sb.health()["checks"]["database"]["status"] == "healthy"


def test_redis_backend(make_sandbox: SandboxFactory, redis_url: str, redis_prefix: str) -> None:
    import redis

    sb = make_sandbox(redis_url=redis_url, redis_prefix=redis_prefix)
    order = sb.post("/api/v1/orders", json={"item": "cached"}).json()
    assert sb.get(f"/api/v1/orders/{order['id']}").status_code == 200
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.get(f"{redis_prefix}orders:{order['id']}") is not None
    finally:
        client.close()
    health = sb.health()
    assert health["checks"]["redis"]["type"] == "redis"
    assert health["checks"]["redis"]["connected_clients"] >= 1
    sb.chaos.inject("redis-unreachable")
    degraded = sb.health()
    assert degraded["status"] == "degraded"
    assert "refused" in degraded["checks"]["redis"]["error"].lower()
    sb.chaos.clear()
    assert sb.health()["checks"]["redis"]["status"] == "healthy"


@pytest.mark.parametrize("value", ["-1", "abc"])
def test_bad_sandbox_env_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    from guilde_core.errors import ConfigurationError

    monkeypatch.setenv("SANDBOX_POOL_SIZE", value)
    with pytest.raises(ConfigurationError, match="SANDBOX_POOL_SIZE"):
        SandboxConfig.from_env()


def test_breakers_are_shared_through_redis(
    make_sandbox: SandboxFactory, redis_url: str, redis_prefix: str
) -> None:
    """The sandbox's breakers live in Redis: another process's registry (here: a second
    registry on the same Redis and prefix) sees the upstream breaker the storm opened."""
    import asyncio

    sb = make_sandbox(registry=BreakerRegistry(redis_url=redis_url, prefix=redis_prefix))
    order = sb.post("/api/v1/orders", json={"item": "shared"}).json()
    sb.chaos.inject("upstream-error-storm", kinds=["503"])
    for _ in range(2):
        assert sb.post("/api/v1/checkout", json={"order_id": order["id"]}).status_code == 503

    async def remote_state() -> str:
        other = BreakerRegistry(redis_url=redis_url, prefix=redis_prefix)
        try:
            snapshot = await other.snapshot("openai")
        finally:
            await other.aclose()
        return str(snapshot.state)

    assert asyncio.run(remote_state()) == "open"
    assert sb.health()["checks"]["external_apis"]["openai"]["circuit_state"] == "open"


def test_a_refused_call_logs_what_it_met_before_the_circuit_opened() -> None:
    met = RateLimitedError("openai answered 429: slow down", service="openai")
    refused = CircuitOpenError("openai", retry_at=None)
    refused.__cause__ = met
    text = describe_error(refused)
    assert text == (
        "CircuitOpenError: circuit 'openai' is open "
        "(after RateLimitedError: openai answered 429: slow down)"
    )
    # an open circuit met at the first attempt has no cause to name
    assert describe_error(CircuitOpenError("openai", retry_at=None)).endswith("is open")
