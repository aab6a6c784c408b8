"""Rate limiting: headers, 429 problem, per key/address, two instances sharing Redis,
and Redis going away during a run (memory fallback, degraded readiness, recovery)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tools.harness import PrivateRedis, ServerThread, wait_until

KEYS = "alpha-key-123456:read,beta-key-654321:read"


def test_headers_then_429_with_retry_after(make_app: Callable[..., FastAPI]) -> None:
    with TestClient(make_app(diagnostic_rate_limit=3)) as client:
        seen = []
        for _ in range(3):
            r = client.get("/api/v1/timeline")
            assert r.status_code == 200
            assert r.headers["ratelimit-limit"] == "3"
            assert r.headers["ratelimit-policy"] == "3;w=60"
            seen.append(int(r.headers["ratelimit-remaining"]))
        assert seen == [2, 1, 0]
        blocked = client.get("/api/v1/timeline", headers={"X-Request-ID": "rl-1"})
        assert blocked.status_code == 429
        assert blocked.headers["content-type"].startswith("application/problem+json")
        assert 1 <= int(blocked.headers["retry-after"]) <= 60
        assert blocked.headers["ratelimit-remaining"] == "0"
        assert 1 <= int(blocked.headers["ratelimit-reset"]) <= 60
        assert blocked.headers["x-request-id"] == "rl-1"
        assert blocked.json()["status"] == 429
        # the problem body carries it too, for clients that read bodies, not headers
        assert blocked.json()["retry_after"] == int(blocked.headers["retry-after"])
        # probes are never limited
        assert client.get("/api/v1/health").status_code == 200
        assert client.get("/api/v1/health/ready").status_code == 200


def test_each_key_has_its_own_budget(make_app: Callable[..., FastAPI]) -> None:
    with TestClient(make_app(diagnostic_rate_limit=2, diagnostic_api_keys=KEYS)) as client:
        alpha = {"X-API-Key": "alpha-key-123456"}
        beta = {"Authorization": "Bearer beta-key-654321"}
        assert client.get("/api/v1/timeline", headers=alpha).status_code == 200
        assert client.get("/api/v1/timeline", headers=alpha).status_code == 200
        assert client.get("/api/v1/timeline", headers=alpha).status_code == 429
        assert client.get("/api/v1/timeline", headers=beta).status_code == 200
        # anonymous callers are counted per address, separately from keys
        assert client.get("/api/v1/timeline").status_code == 200


def test_two_instances_share_one_budget_through_redis(
    make_app: Callable[..., FastAPI], redis_url: str, redis_prefix: str
) -> None:
    app_a = make_app(diagnostic_rate_limit=4, redis_url=redis_url, redis_prefix=redis_prefix)
    app_b = make_app(diagnostic_rate_limit=4, redis_url=redis_url, redis_prefix=redis_prefix)
    with ServerThread(app_a) as a, ServerThread(app_b) as b:
        statuses = []
        for i in range(6):
            url = (a if i % 2 == 0 else b).url + "/api/v1/timeline"
            statuses.append(httpx.get(url, timeout=5).status_code)
    assert statuses[:4] == [200, 200, 200, 200]
    assert statuses[4:] == [429, 429]


def test_redis_outage_serves_degraded_and_recovers(
    make_app: Callable[..., FastAPI], private_redis: PrivateRedis
) -> None:
    app = make_app(diagnostic_rate_limit=1000, circuit_breaker_redis_url=private_redis.url)
    with ServerThread(app) as srv:
        client = httpx.Client(base_url=srv.url, timeout=5)
        assert client.get("/api/v1/timeline").status_code == 200
        assert client.get("/api/v1/health/ready").json()["status"] == "healthy"
        deep = client.get("/api/v1/health/deep").json()
        assert deep["checks"]["shared_state"]["rate_limit_store"]["status"] == "healthy"

        private_redis.stop()
        # keeps serving: the rate limiter counts in memory
        r = client.get("/api/v1/timeline")
        assert r.status_code == 200
        assert "ratelimit-remaining" in r.headers
        ready = client.get("/api/v1/health/ready")
        assert ready.status_code == 200
        assert ready.json()["status"] == "degraded"
        assert ready.json()["checks"]["rate_limit_store"]["status"] == "degraded"
        state = app.state.dev3000
        state.health.forget()
        deep = client.get("/api/v1/health/deep")
        assert deep.status_code == 200  # the shared store is not critical: degraded only
        assert deep.json()["status"] == "degraded"
        assert deep.json()["checks"]["shared_state"]["status"] == "degraded"

        private_redis.start()

        def recovered() -> bool:
            client.get("/api/v1/timeline")
            return bool(client.get("/api/v1/health/ready").json()["status"] == "healthy")

        wait_until(recovered, timeout=15, interval=0.3)
        client.close()
