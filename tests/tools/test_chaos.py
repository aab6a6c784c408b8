"""Every chaos fault against a real sandbox: its documented symptom in the sandbox's own
health, metrics and logs while active, and gone once cleared."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from guilde_core.errors import AuthenticationError, InvalidInputError, NotFoundError
from tests.tools.conftest import Sandbox, SandboxFactory
from tools.chaos.catalogue import FAULTS
from tools.chaos.client import ChaosClient, ensure_loopback
from tools.harness import wait_until


def check(sb: Sandbox, name: str) -> dict[str, Any]:
    result: dict[str, Any] = sb.health()["checks"][name]
    return result


def logged(sb: Sandbox, message: str) -> list[dict[str, Any]]:
    return [line for line in sb.log_lines() if message in line["message"]]


def test_catalogue_has_stable_ids_and_symptoms(sandbox: Sandbox) -> None:
    listed = sandbox.chaos.catalogue()
    assert [f["id"] for f in listed] == list(FAULTS)
    assert set(FAULTS) == {
        "db-unreachable", "redis-unreachable", "db-latency", "redis-latency",
        "upstream-error-storm", "upstream-bad-credential", "pool-exhaustion", "log-flood",
        "error-spike",
        "slow-endpoint", "disk-fill", "memory-pressure", "bad-config-reload",
        "frontend-js-exception", "frontend-failing-fetch", "frontend-slow-asset",
    }  # fmt: skip
    for fault in listed:
        assert set(fault["symptoms"]) == {"health", "circuits", "logs", "metrics"}
        assert "ttl_s" in fault["params"]
    with pytest.raises(NotFoundError, match="unknown fault"):
        sandbox.chaos.inject("no-such-fault")
    with pytest.raises(InvalidInputError, match="delay_ms"):
        sandbox.chaos.inject("db-latency", delay_ms=10**9)
    with pytest.raises(InvalidInputError, match="kinds"):
        sandbox.chaos.inject("upstream-error-storm", kinds=["teapot"])
    storm = sandbox.chaos.inject("upstream-error-storm", kinds=["rate_limit", "unavailable"])
    assert storm["params"]["kinds"] == ["429", "503"]  # the fake LLM's names are aliases
    sandbox.chaos.clear("upstream-error-storm")
    with pytest.raises(AuthenticationError):
        ChaosClient(sandbox.url, "wrong").status()
    with pytest.raises(InvalidInputError, match="loopback"):
        ensure_loopback("http://10.1.2.3:8000")


def test_db_unreachable_and_db_latency(sandbox: Sandbox) -> None:
    sb = sandbox
    sb.chaos.inject("db-unreachable")
    assert sb.get("/api/v1/health/ready").status_code == 503
    health = sb.get("/api/v1/health")
    assert health.status_code == 503
    assert health.json()["status"] == "unhealthy"
    assert "unable to open database file" in health.json()["checks"]["database"]["error"]
    failed = sb.get("/api/v1/orders?limit=7")
    assert failed.status_code == 503
    rid = failed.headers["x-request-id"]
    errors = [line for line in logged(sb, "database call failed") if line["request_id"] == rid]
    assert errors
    assert errors[0]["level"] == "error"
    assert sb.metric("sandbox_http_requests_total", route="/api/v1/orders", status="503") >= 1
    assert sb.chaos.clear("db-unreachable") == ["db-unreachable"]
    assert sb.get("/api/v1/health/ready").status_code == 200
    assert sb.get("/api/v1/orders?limit=7").status_code == 200

    sb.chaos.inject("db-latency", delay_ms=150)
    db = check(sb, "database")
    assert db["status"] == "degraded"
    assert db["latency_ms"] >= 145  # timer granularity, as below
    assert sb.health()["status"] == "degraded"
    assert sb.post("/api/v1/orders", json={"item": "slow"}).status_code == 201
    assert logged(sb, "slow database call")[-1]["duration_ms"] >= 150
    sb.chaos.clear()
    assert check(sb, "database")["status"] == "healthy"
    # what still degrades is the error rate of the last minute (the 503s above)
    degraded = {n for n, c in sb.health()["checks"].items() if c.get("status") == "degraded"}
    assert degraded == {"errors"}


def test_redis_unreachable_and_latency_on_the_memory_cache(sandbox: Sandbox) -> None:
    sb = sandbox
    order = sb.post("/api/v1/orders", json={"item": "cache"}).json()
    sb.chaos.inject("redis-unreachable")
    health = sb.health()
    assert health["status"] == "degraded"
    assert "connection refused" in health["checks"]["redis"]["error"].lower()
    # orders are still served, from the database
    assert sb.get(f"/api/v1/orders/{order['id']}").status_code == 200
    warning = logged(sb, "cache unavailable")[-1]
    assert warning["level"] == "warning"
    assert "ConnectionError" in warning["message"]
    assert sb.metric("sandbox_cache_errors_total") >= 1
    sb.chaos.clear("redis-unreachable")
    assert check(sb, "redis")["status"] == "healthy"

    sb.chaos.inject("redis-latency", delay_ms=80)
    redis_check = check(sb, "redis")
    assert redis_check["status"] == "degraded"
    # the event loop's timer may wake a hair early and the figure is rounded to 0.1 ms
    assert redis_check["latency_ms"] >= 75
    sb.chaos.clear("redis-latency")
    assert check(sb, "redis")["status"] == "healthy"


def test_upstream_error_storm_opens_the_breaker(sandbox: Sandbox) -> None:
    sb = sandbox
    order = sb.post("/api/v1/orders", json={"item": "llm"}).json()
    sb.chaos.inject("upstream-error-storm", kinds=["503"], rate=1.0)
    for _ in range(2):
        failed = sb.post("/api/v1/checkout", json={"order_id": order["id"]})
        assert failed.status_code == 503
    assert sb.upstream.control.count("openai") == 0  # the storm answers before the wire
    refused = sb.post("/api/v1/checkout", json={"order_id": order["id"]})
    assert refused.json()["code"] == "circuit_open"
    openai = sb.health()["checks"]["external_apis"]["openai"]
    assert openai["circuit_state"] == "open"
    assert openai["status"] == "unhealthy"
    assert sb.health()["status"] == "degraded"
    lines = logged(sb, "upstream call failed")
    assert "ServiceUnavailableError" in lines[0]["message"]
    assert lines[-1]["message"].endswith("[circuit_open]")
    assert sb.metric("sandbox_upstream_requests_total", outcome="circuit_open") >= 1
    sb.chaos.clear("upstream-error-storm")

    def recovered() -> bool:
        # half-open trials succeed until the breaker closes again
        response = sb.post("/api/v1/checkout", json={"order_id": order["id"]})
        state = sb.health()["checks"]["external_apis"]["openai"]["circuit_state"]
        return response.status_code == 200 and state == "closed"

    wait_until(recovered, timeout=8, interval=0.3)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_upstream_bad_credential_is_a_401_that_trips_nothing(
    make_sandbox: SandboxFactory, provider: str
) -> None:
    sb = make_sandbox(upstream_key="sk-the-good-key", llm_provider=provider)
    order = sb.post("/api/v1/orders", json={"item": "key"}).json()
    good = sb.post("/api/v1/checkout", json={"order_id": order["id"]})
    assert good.status_code == 200
    assert good.json()["llm"] == provider
    sb.chaos.inject("upstream-bad-credential")
    for _ in range(4):  # more than the breaker's threshold: a rejected key is not a failure
        failed = sb.post("/api/v1/checkout", json={"order_id": order["id"]})
        assert failed.status_code == 502
        assert failed.json()["code"] == "authentication"
    assert sb.upstream.control.count(provider) == 5  # the real upstream answered each one
    line = logged(sb, "upstream call failed")[-1]
    assert line["level"] == "error"
    assert f"AuthenticationError: {provider} answered 401: invalid" in line["message"]
    assert line["message"].endswith("[authentication]")
    assert "sk-the-good-key" not in json.dumps(sb.log_lines())
    external = sb.health()["checks"]["external_apis"][provider]
    assert (external["status"], external["circuit_state"]) == ("healthy", "closed")
    assert sb.metric("sandbox_upstream_requests_total", outcome="authentication") == 4
    sb.chaos.clear("upstream-bad-credential")
    assert sb.post("/api/v1/checkout", json={"order_id": order["id"]}).status_code == 200


def test_storm_timeouts_respect_the_reloaded_upstream_timeout(sandbox: Sandbox) -> None:
    sb = sandbox
    runtime = sb.ctx.runtime_path
    runtime.write_text(json.dumps({**json.loads(runtime.read_text()), "upstream_timeout_s": 0.3}))
    assert sb.chaos.reload() == {"ok": True, "error": None}
    order = sb.post("/api/v1/orders", json={"item": "t"}).json()
    sb.chaos.inject("upstream-error-storm", kinds=["timeout"])
    started = time.monotonic()
    failed = sb.post("/api/v1/checkout", json={"order_id": order["id"]})
    assert failed.status_code == 503
    assert failed.json()["code"] == "timeout"
    assert time.monotonic() - started < 3
    assert "OperationTimeoutError" in logged(sb, "upstream call failed")[-1]["message"]


def test_pool_exhaustion_and_error_spike(make_sandbox: SandboxFactory) -> None:
    sb = make_sandbox(pool_size=2, health_window_s=2.0)
    sb.chaos.inject("pool-exhaustion")
    db = check(sb, "database")
    assert db["status"] == "unhealthy"
    assert db["pool"] == {"size": 2, "available": 0, "in_use": 2}
    assert "pool exhausted" in db["error"]
    assert sb.metric("sandbox_db_pool_in_use") == 2
    assert sb.post("/api/v1/orders", json={"item": "x"}).status_code == 503
    assert "PoolTimeout" in logged(sb, "database call failed")[-1]["message"]
    sb.chaos.clear("pool-exhaustion")
    assert check(sb, "database")["pool"]["in_use"] == 0
    assert sb.metric("sandbox_db_pool_in_use") == 0

    sb.chaos.inject("error-spike", rate=1.0, exception="KeyError", message="customer_tier")
    for _ in range(3):
        assert sb.get("/api/v1/orders").status_code == 500
    errors = logged(sb, "unhandled error")
    assert len(errors) == 3
    assert {(e["exc_type"], e["exc_message"]) for e in errors} == {("KeyError", "'customer_tier'")}
    assert "pricing.py" in errors[0]["traceback"]
    assert "price_orders" in errors[0]["traceback"]
    assert check(sb, "errors")["status"] == "degraded"
    assert sb.metric("sandbox_http_requests_total", route="/api/v1/orders", status="500") == 3
    sb.chaos.clear("error-spike")
    assert sb.get("/api/v1/orders").status_code == 200
    wait_until(lambda: check(sb, "errors")["status"] == "healthy", timeout=5, interval=0.3)


def test_slow_endpoint_and_log_flood(make_sandbox: SandboxFactory) -> None:
    sb = make_sandbox(health_window_s=2.0)
    sb.chaos.inject("slow-endpoint", route="/api/v1/orders", delay_ms=1100)
    assert sb.get("/api/v1/orders").status_code == 200
    latency = check(sb, "latency")
    assert latency["status"] == "degraded"
    assert latency["p99_latency_ms"] >= 1100
    assert logged(sb, "slow request")[-1]["route"] == "/api/v1/orders"
    total = sb.metric("sandbox_http_request_duration_seconds_count", route="/api/v1/orders")
    fast = sb.metric(
        "sandbox_http_request_duration_seconds_bucket", route="/api/v1/orders", le="1.0"
    )
    assert total - fast >= 1
    sb.chaos.clear("slow-endpoint")
    wait_until(lambda: check(sb, "latency")["status"] == "healthy", timeout=5, interval=0.3)

    sb.chaos.inject("log-flood", lines_per_second=800, max_lines=2000)
    wait_until(lambda: check(sb, "log_volume")["status"] == "degraded", timeout=5)
    wait_until(lambda: len(logged(sb, "cache warmup retry")) >= 500, timeout=5)
    assert sb.metric("sandbox_log_lines_total", level="warning") >= 500
    sb.chaos.clear("log-flood")
    count = len(logged(sb, "cache warmup retry"))
    assert count <= 2000
    wait_until(lambda: check(sb, "log_volume")["status"] == "healthy", timeout=5, interval=0.3)
    assert len(logged(sb, "cache warmup retry")) == count  # the flood stopped


def test_disk_fill_memory_pressure_and_bad_config(make_sandbox: SandboxFactory) -> None:
    sb = make_sandbox(disk_budget_mb=4, memory_budget_mb=24)
    sb.chaos.inject("disk-fill", cap_mb=6, rate_mb_s=60)
    wait_until(lambda: check(sb, "disk")["scratch_used_mb"] >= 6, timeout=10)
    assert check(sb, "disk")["status"] == "degraded"
    assert sb.metric("sandbox_scratch_bytes") >= 6 * 2**20
    assert logged(sb, "scratch directory over budget")
    sb.chaos.clear("disk-fill")
    disk = check(sb, "disk")
    assert (disk["status"], disk["scratch_used_mb"]) == ("healthy", 0)

    sb.chaos.inject("memory-pressure", cap_mb=40, rate_mb_s=200)
    wait_until(lambda: sb.metric("sandbox_memory_ballast_bytes") >= 40 * 2**20, timeout=10)
    memory = check(sb, "memory")
    assert memory["status"] == "degraded"
    assert memory["grown_mb"] > 24
    assert logged(sb, "memory over budget")
    sb.chaos.clear("memory-pressure")
    assert check(sb, "memory")["status"] == "healthy"

    before = sb.ctx.runtime_path.read_text()
    sb.chaos.inject("bad-config-reload", key="upstream_timeout_s", value=-5)
    config = check(sb, "config")
    assert config["status"] == "degraded"
    assert "upstream_timeout_s" in config["error"]
    assert sb.ctx.runtime.upstream_timeout_s == 5.0  # the last good value stays
    assert "upstream_timeout_s" in logged(sb, "config reload failed")[-1]["message"]
    assert sb.metric("sandbox_config_reload_failures_total") == 1
    sb.chaos.clear("bad-config-reload")
    assert check(sb, "config")["status"] == "healthy"
    assert sb.ctx.runtime_path.read_text() == before


def test_faults_expire_by_themselves(sandbox: Sandbox) -> None:
    sandbox.chaos.inject("db-latency", delay_ms=120, ttl_s=2)
    assert [f["id"] for f in sandbox.chaos.status()] == ["db-latency"]
    assert sandbox.metric("sandbox_chaos_fault_active", fault="db-latency") == 1
    wait_until(lambda: sandbox.chaos.status() == [], timeout=5)
    assert sandbox.metric("sandbox_chaos_fault_active", fault="db-latency") == 0
    assert logged(sandbox, "fault expired")
    assert check(sandbox, "database")["status"] == "healthy"


def test_docs_describe_every_fault() -> None:
    from pathlib import Path

    docs = (Path(__file__).parents[2] / "docs" / "sandbox.md").read_text()
    for fault in FAULTS.values():
        assert f"### `{fault.id}`" in docs
        assert fault.health in docs
        assert fault.logs in docs
