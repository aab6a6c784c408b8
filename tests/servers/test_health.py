"""Health logic against a real HTTP target, real Redis and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest

from guilde_core.config import Settings
from guilde_core.errors import NotFoundError
from servers.health import logic
from servers.health.metrics import quantile, summarise
from servers.health.models import CheckResult, Target
from tests.servers.conftest import Behaviour
from tools.harness import PrivateRedis, free_port

BUILTIN_OFF = {"health_check_external_services": False}


def run[T](coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def service(tmp_path: Path, targets: list[dict[str, Any]], **settings: Any) -> logic.HealthService:
    path = tmp_path / "targets.yaml"
    path.write_text(json.dumps({"targets": targets}))
    s = Settings(
        dev3000_targets_file=str(path),
        dev3000_backend_url="http://127.0.0.1:9",  # nothing listens: connection refused
        health_check_timeout=2,
        **{**BUILTIN_OFF, **settings},
    )
    return logic.HealthService(s)


def by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.name: r for r in results}


def test_http_target_healthy_slow_and_failing(
    tmp_path: Path, target: tuple[str, Behaviour]
) -> None:
    url, b = target
    svc = service(
        tmp_path,
        [{"name": "api", "kind": "http", "url": url, "path": "/health", "critical": True}],
        health_warn_api_latency_ms=150,
        health_check_cache_ttl=0.01,
    )
    ok = run(svc.check_one("api"))
    assert ok.status == "healthy"
    assert ok.details["status_code"] == 200
    b.delay = 0.3
    slow = run(svc.check_one("api"))
    assert slow.status == "degraded"
    assert slow.details["latency_ms"] > 150
    b.delay, b.status = 0, 500
    bad = run(svc.check_one("api"))
    assert bad.status == "unhealthy"
    assert bad.error == "HTTP 500 (expected 200)"
    history = svc.recent("api", 10)
    assert [r.status for r in history.results] == ["healthy", "degraded", "unhealthy"]


def test_a_hanging_target_costs_one_timeout_not_the_sum(
    tmp_path: Path, target: tuple[str, Behaviour]
) -> None:
    url, b = target
    b.hang = True
    hanging = [
        {"name": f"hang{i}", "kind": "http", "url": url, "path": "/health", "timeout": 1.0}
        for i in range(4)
    ]
    svc = service(tmp_path, [*hanging, {"name": "mem", "kind": "memory", "critical": True}])
    started = time.monotonic()
    report = run(svc.check("deep", exclude=["backend", "agent", "frontend"]))
    elapsed = time.monotonic() - started
    checks = by_name(report.checks)
    assert elapsed < 2.5  # four 1 s timeouts in parallel, not 4 s
    for i in range(4):
        assert checks[f"hang{i}"].status == "unhealthy"
        assert checks[f"hang{i}"].error == "timeout after 1s"
    assert checks["mem"].status in ("healthy", "degraded")
    assert checks["mem"].latency_ms < 900  # not held up by the hanging ones
    # non-critical failures only degrade the aggregate
    assert report.status == "degraded"


def test_aggregate_rule() -> None:
    def r(status: str, critical: bool) -> CheckResult:
        return CheckResult.model_validate(
            {"name": "x", "kind": "tcp", "critical": critical, "status": status,
             "latency_ms": 1, "observed_at": "2026-01-01T00:00:00Z"}
        )  # fmt: skip

    assert logic.aggregate([r("healthy", True), r("unhealthy", False)]) == "degraded"
    assert logic.aggregate([r("unhealthy", True), r("healthy", False)]) == "unhealthy"
    assert logic.aggregate([r("degraded", True)]) == "degraded"
    assert logic.aggregate([r("healthy", True), r("healthy", False)]) == "healthy"
    assert logic.aggregate([]) == "healthy"


def test_real_redis_and_postgres(tmp_path: Path, redis_url: str, pg_dsn: str) -> None:
    svc = service(
        tmp_path, [], redis_url=redis_url, database_url=pg_dsn, health_warn_redis_latency_ms=5000
    )
    report = run(svc.check("ready", include=["redis", "database"]))
    checks = by_name(report.checks)
    redis_check, pg = checks["redis"], checks["database"]
    assert redis_check.status == "healthy", redis_check.error
    assert redis_check.details["connected_clients"] >= 1
    assert redis_check.details["memory_used_mb"] > 0
    assert pg.status in ("healthy", "degraded"), pg.error
    assert pg.details["server_version"]
    assert pg.details["connections_in_use"] >= 1
    assert pg.details["connections_available"] < pg.details["connections_max"]


def test_redis_outage_is_unhealthy_with_a_short_error(
    tmp_path: Path, private_redis: PrivateRedis
) -> None:
    svc = service(tmp_path, [], redis_url=private_redis.url)
    assert run(svc.check_one("redis")).status == "healthy"
    private_redis.stop()
    down = run(svc.check_one("redis"))
    assert down.status == "unhealthy"
    assert down.error is not None
    assert "Traceback" not in down.error
    assert len(down.error) <= 300


def test_tcp_disk_cpu_memory_and_metrics(tmp_path: Path, target: tuple[str, Behaviour]) -> None:
    url, b = target
    port = int(url.rsplit(":", 1)[1])
    b.metrics = (
        "# TYPE http_requests_total counter\n"
        'http_requests_total{status="200"} 960\n'
        'http_requests_total{status="500"} 40\n'
        "# TYPE http_request_duration_seconds histogram\n"
        'http_request_duration_seconds_bucket{le="0.05"} 500\n'
        'http_request_duration_seconds_bucket{le="0.1"} 900\n'
        'http_request_duration_seconds_bucket{le="1.0"} 1000\n'
        'http_request_duration_seconds_bucket{le="+Inf"} 1000\n'
        "http_request_duration_seconds_count 1000\n"
        "http_request_duration_seconds_sum 70\n"
    )
    svc = service(
        tmp_path,
        [
            {"name": "port", "kind": "tcp", "host": "127.0.0.1", "port": port},
            {"name": "closed", "kind": "tcp", "host": "127.0.0.1", "port": free_port()},
            {"name": "m", "kind": "metrics", "url": url},
            {"name": "root", "kind": "disk", "path": str(tmp_path)},
        ],
    )
    results = by_name(
        run(svc.run([t for t in run(svc.targets()).targets if t.source != "settings"]))
    )
    assert results["port"].status == "healthy"
    assert results["closed"].status == "unhealthy"
    assert results["root"].details["total_gb"] > 0
    assert {"cpu", "memory"} <= set(results)
    m = results["m"]
    assert m.details["requests_total"] == 1000
    assert m.details["error_rate_percent"] == 4.0
    assert m.status == "degraded"
    assert m.details["p50_latency_ms"] == pytest.approx(50.0)
    assert m.details["p99_latency_ms"] == pytest.approx(910.0)
    # a second scrape gives a rate
    again = run(svc.check_one("m"))
    assert again.details["requests_per_second"] == 0.0


def test_quantile_interpolates() -> None:
    assert quantile([(1.0, 50.0), (2.0, 100.0)], 0.75) == pytest.approx(1.5)
    assert quantile([], 0.5) is None
    assert summarise("").requests_total == 0


def test_targets_file_errors_provider_and_include_exclude(tmp_path: Path) -> None:
    svc = service(
        tmp_path,
        [{"name": "ok", "kind": "memory"}, {"name": "bad name!", "kind": "http"},
         {"name": "x", "kind": "nope"}],
    )  # fmt: skip

    async def provider() -> list[Target]:
        return [Target(name="runtime1", kind="cpu", critical=True, source="registry")]

    svc.extra_targets = provider
    listed = run(svc.targets())
    names = {t.name for t in listed.targets}
    assert {"ok", "runtime1", "backend", "disk"} <= names
    assert len(listed.errors) == 2
    assert "target #2" in listed.errors[0]
    ready = run(svc.check("ready", exclude=["backend"]))
    assert [c.name for c in ready.checks] == ["runtime1"]  # only critical targets
    only = run(svc.check("deep", include=["ok"]))
    assert [c.name for c in only.checks] == ["ok"]
    with pytest.raises(NotFoundError, match="unknown target"):
        run(svc.check("deep", include=["ghost"]))
    live = run(svc.check("live"))
    assert live.status == "healthy"
    assert live.checks == []


def test_cache_ttl_and_hidden_details(tmp_path: Path, target: tuple[str, Behaviour]) -> None:
    url, b = target
    spec = [{"name": "api", "kind": "http", "url": url, "path": "/health", "critical": True}]
    svc = service(tmp_path, spec, health_check_cache_ttl=30, health_check_include_details=False)
    first = run(svc.check("deep", include=["api"]))
    second = run(svc.check("deep", include=["api"]))
    assert not first.cached
    assert second.cached
    assert b.hits == ["/health"]  # the second answer came from the cache
    assert first.checks[0].details == {}


def test_deep_report_has_exactly_the_seed_shape(
    tmp_path: Path, redis_url: str, pg_dsn: str
) -> None:
    svc = service(tmp_path, [], redis_url=redis_url, database_url=pg_dsn)
    report = run(svc.deep_report()).model_dump(mode="json")
    assert list(report) == [
        "status", "timestamp", "service", "version", "environment", "uptime_seconds",
        "checks", "metrics", "diagnostics",
    ]  # fmt: skip
    # the seed's four, and every target with its reasons (the stack model's view)
    assert set(report["checks"]) == {
        "database", "redis", "external_apis", "observability", "targets"
    }  # fmt: skip
    assert report["checks"]["database"]["type"] == "postgresql"
    assert set(report["checks"]["database"]["pool"]) == {"size", "available", "in_use"}
    assert {"latency_ms", "memory_used_mb", "connected_clients"} <= set(report["checks"]["redis"])
    assert set(report["checks"]["observability"]) == {"logfire", "sentry"}
    assert {"status", "spans_exported", "export_errors"} <= set(
        report["checks"]["observability"]["logfire"]
    )
    assert set(report["metrics"]) == {
        "requests_total", "requests_per_second", "error_rate_percent", "p50_latency_ms",
        "p99_latency_ms",
    }  # fmt: skip
    assert set(report["diagnostics"]) == {
        "memory_mb", "cpu_percent", "open_connections", "active_tasks"
    }  # fmt: skip
    assert report["status"] == "unhealthy"  # the critical backend is down
    assert "postgres@" in json.dumps(report) or pg_dsn not in json.dumps(report)


def test_history_is_a_bounded_ring(tmp_path: Path) -> None:
    svc = service(tmp_path, [{"name": "mem", "kind": "memory"}])
    target = Target(name="mem", kind="memory")
    for _ in range(logic.HISTORY_SIZE + 5):
        run(svc.run([target]))
    assert len(svc.history["mem"]) == logic.HISTORY_SIZE
    with pytest.raises(NotFoundError):
        svc.recent("never-checked")


def test_http_target_keeps_its_own_health_report(tmp_path: Path) -> None:
    """A backend answering a JSON health report (the seed's, the sandbox's) says why it
    fails: the report is kept in details.report, redacted; a plain body adds nothing."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route

    from tools.harness import ServerThread

    async def health(request: Request) -> Response:
        report = {
            "status": "unhealthy",
            "checks": {
                "database": {
                    "status": "unhealthy",
                    "error": "connection refused (postgresql://app:s3cretpw@db/prod)",
                }
            },
        }
        return JSONResponse(report, status_code=503)

    async def plain(request: Request) -> Response:
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/api/v1/health", health), Route("/plain", plain)])
    with ServerThread(app, timeout_graceful_shutdown=1) as srv:
        svc = service(
            tmp_path,
            [
                {"name": "api", "kind": "http", "url": srv.url, "path": "/api/v1/health"},
                {"name": "web", "kind": "http", "url": srv.url, "path": "/plain"},
            ],
        )
        api = run(svc.check_one("api"))
        web = run(svc.check_one("web"))
    assert api.status == "unhealthy"
    assert api.error == "HTTP 503 (expected 200)"
    database = api.details["report"]["checks"]["database"]
    assert api.details["report"]["status"] == "unhealthy"
    assert "connection refused" in database["error"]
    assert "s3cretpw" not in json.dumps(api.details)
    assert web.status == "healthy"
    assert "report" not in web.details


def test_breaker_checks_read_breakers_through_the_circuits_adapter(tmp_path: Path) -> None:
    """``external_api`` targets and the deep report judge breakers by the adapter's rules: a
    configured service not used yet is known (closed), a forced-closed one is degraded."""
    from guilde_core.resilience import BreakerRegistry, get_registry, reset_registry

    reset_registry(BreakerRegistry())
    try:
        svc = service(
            tmp_path,
            [{"name": "openai", "kind": "external_api"}, {"name": "ghost", "kind": "external_api"}],
        )
        idle = run(svc.check_one("openai"))
        assert idle.status == "healthy", idle.error
        assert idle.details["breakers"]["openai"]["circuit_state"] == "closed"
        ghost = run(svc.check_one("ghost"))
        assert ghost.status == "unhealthy"
        assert ghost.error is not None
        assert "no circuit breaker named 'ghost'" in ghost.error
        run(get_registry().force_close("openai", reason="provider flapping"))
        forced = run(svc.check_one("openai"))
        assert forced.status == "degraded"
        assert forced.details["breakers"]["openai"]["forced"] is True
        deep = run(svc.deep_report())
        assert deep.checks.external_apis["openai"].status == "degraded"
    finally:
        reset_registry()


def test_empty_agent_and_frontend_urls_mean_not_deployed(tmp_path: Path) -> None:
    deployed = {t.name for t in logic.builtin_targets(Settings())}
    assert {"backend", "agent", "frontend"} <= deployed
    alone = logic.builtin_targets(Settings(dev3000_agent_url="", dev3000_frontend_url=" "))
    assert {t.name for t in alone} == deployed - {"agent", "frontend"}


def test_disk_watches_the_log_and_data_directories(tmp_path: Path) -> None:
    logs, data = tmp_path / "logs", tmp_path / "data"
    (logs / "app").mkdir(parents=True)
    data.mkdir()
    (logs / "app" / "api.log").write_bytes(b"x" * 3 * 2**20)
    (data / "state.sqlite3").write_bytes(b"y" * 2**20)
    svc = service(
        tmp_path,
        [{"name": "scratch", "kind": "disk", "path": str(data)}],
        dev3000_log_paths=[str(logs / "app" / "*.log"), str(tmp_path / "missing")],
        dev3000_data_dir=str(data),
        health_warn_logs_dir_mb=2,
        health_warn_data_dir_mb=5,
    )
    disk = run(svc.check_one("disk"))
    by_role = {(d["role"], Path(d["path"]).name): d for d in disk.details["directories"]}
    logs_dir = by_role[("logs", "app")]  # a glob is watched as the directory it lives in
    assert logs_dir["used_mb"] == 3.0
    assert logs_dir["files"] == 1
    assert logs_dir["status"] == "degraded"  # 3 MB over the 2 MB warning size
    assert logs_dir["warn_mb"] == 2
    assert by_role[("logs", "missing")] == {
        "role": "logs", "path": str(tmp_path / "missing"), "exists": False, "status": "healthy"
    }  # fmt: skip
    data_dir = by_role[("data", "data")]
    assert (data_dir["used_mb"], data_dir["status"], data_dir["warn_mb"]) == (1.0, "healthy", 5)
    assert disk.status == "degraded"
    assert disk.details["total_gb"] > 0
    # a target with a path: that path alone, no warning size
    scratch = run(svc.check_one("scratch"))
    assert [d["role"] for d in scratch.details["directories"]] == ["path"]
    assert scratch.details["directories"][0]["used_mb"] == 1.0
    assert "warn_mb" not in scratch.details["directories"][0]


def test_disk_walk_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from servers.health import disk

    for i in range(30):
        (tmp_path / f"f{i}.log").write_bytes(b"z" * 1024)
    monkeypatch.setattr(disk, "MAX_ENTRIES", 10)
    _, details = disk.disk_report(Settings(), str(tmp_path))
    entry = details["directories"][0]
    assert entry["truncated"] is True
    assert entry["files"] == 10
