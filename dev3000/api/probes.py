"""Checks dev3000 runs itself: runtime targets (checked at once when added) and the
§6.2 deep report assembled from them, Redis, PostgreSQL, breakers and the host.

Every probe runs under its own timeout, concurrently with the others, and returns the
DESIGN.md check result ``{status, latency_ms, observed_at, details, error?}``; none ever
raises. Secrets in URLs never appear in results (``redact``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from dev3000.targets_store import Target
from guilde_core import __version__
from guilde_core.config import Settings
from guilde_core.redaction import redact, redact_text

__all__ = [
    "STATUS_ORDER",
    "CheckResult",
    "aggregate",
    "check_postgres",
    "check_redis",
    "check_target",
    "deep_report",
    "host_diagnostics",
    "timed",
]

CheckResult = dict[str, Any]
STATUS_ORDER = {"healthy": 0, "degraded": 1, "unhealthy": 2}


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def aggregate(statuses: list[tuple[str, bool]]) -> str:
    """Worst of the critical checks; a failing non-critical check only degrades."""
    worst = "healthy"
    for status, critical in statuses:
        effective = status if critical or status == "healthy" else "degraded"
        if STATUS_ORDER[effective] > STATUS_ORDER[worst]:
            worst = effective
    return worst


async def timed(
    probe: Callable[[], Awaitable[dict[str, Any]]],
    budget: float,
    *,
    warn_ms: float | None = None,
) -> CheckResult:
    """Run ``probe`` within ``budget`` seconds: its details, status by latency, or the error."""
    started = time.perf_counter()
    result: CheckResult
    try:
        details = await asyncio.wait_for(probe(), budget)
        latency = (time.perf_counter() - started) * 1000
        status = details.pop("_status", "healthy")
        if status == "healthy" and warn_ms is not None and latency > warn_ms:
            status = "degraded"
            details.setdefault("warning", f"latency {latency:.0f} ms over {warn_ms:.0f} ms")
        result = {"status": status, "latency_ms": round(latency, 2), **details}
        if "error" in details:
            result["error"] = redact_text(str(details["error"]))
    except TimeoutError:
        result = {
            "status": "unhealthy",
            "latency_ms": round((time.perf_counter() - started) * 1000, 2),
            "error": f"timeout after {budget:g}s",
        }
    except Exception as exc:
        result = {
            "status": "unhealthy",
            "latency_ms": round((time.perf_counter() - started) * 1000, 2),
            "error": redact_text(f"{type(exc).__name__}: {exc}"),
        }
    result["observed_at"] = _now_iso()
    out: CheckResult = redact(result)
    return out


async def _probe_tcp(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port
    if port is None:
        raise ValueError("tcp target needs a port")
    _, writer = await asyncio.open_connection(host, port)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return {"type": "tcp"}


async def _probe_http(target: Target, budget: float) -> dict[str, Any]:
    url = target.url.rstrip("/") + target.path
    async with httpx.AsyncClient(timeout=budget + 1, trust_env=False) as client:
        response = await client.get(url)
    details: dict[str, Any] = {"type": "http", "status_code": response.status_code}
    if response.status_code != target.expected_status:
        details["_status"] = "unhealthy"
        details["error"] = f"HTTP {response.status_code}, expected {target.expected_status}"
    return details


async def _probe_redis(url: str) -> dict[str, Any]:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
    try:
        await client.ping()
        info = await client.info()
    finally:
        await client.aclose()
    return {
        "type": "redis",
        "memory_used_mb": round(float(info.get("used_memory", 0)) / 1_048_576, 2),
        "connected_clients": int(info.get("connected_clients", 0)),
    }


async def _probe_postgres(dsn: str) -> dict[str, Any]:
    import psycopg

    conn = await psycopg.AsyncConnection.connect(dsn, connect_timeout=5, autocommit=True)
    try:
        cur = await conn.execute(
            "SELECT current_setting('max_connections')::int, "
            "(SELECT count(*) FROM pg_stat_activity)::int"
        )
        row = await cur.fetchone()
    finally:
        await conn.close()
    size, in_use = row or (0, 0)
    return {
        "type": "postgresql",
        "pool": {"size": size, "available": max(0, size - in_use), "in_use": in_use},
    }


async def check_target(target: Target, settings: Settings) -> CheckResult:
    """Check one registry target now."""
    timeout = target.timeout or settings.health_check_timeout
    probe: Callable[[], Awaitable[dict[str, Any]]]
    warn: float | None = None
    if target.kind == "http":
        probe, warn = (lambda: _probe_http(target, timeout)), settings.health_warn_api_latency_ms
    elif target.kind == "tcp":
        probe = lambda: _probe_tcp(target.url)  # noqa: E731
    elif target.kind == "redis":
        probe, warn = (lambda: _probe_redis(target.url)), settings.health_warn_redis_latency_ms
    else:
        probe, warn = (lambda: _probe_postgres(target.url)), settings.health_warn_db_latency_ms
    result = await timed(probe, timeout, warn_ms=warn)
    result["critical"] = target.critical
    return result


async def check_redis(url: str, settings: Settings) -> CheckResult:
    return await timed(
        lambda: _probe_redis(url),
        settings.health_check_timeout,
        warn_ms=settings.health_warn_redis_latency_ms,
    )


async def check_postgres(dsn: str, settings: Settings) -> CheckResult:
    return await timed(
        lambda: _probe_postgres(dsn),
        settings.health_check_timeout,
        warn_ms=settings.health_warn_db_latency_ms,
    )


def host_diagnostics() -> dict[str, Any]:
    """dev3000's own process figures (§6.2 ``diagnostics``)."""
    import psutil

    proc = psutil.Process(os.getpid())
    try:
        connections = len(proc.net_connections())
    except (psutil.Error, OSError):
        connections = 0
    try:
        tasks = len(asyncio.all_tasks())
    except RuntimeError:
        tasks = 0
    return {
        "memory_mb": round(proc.memory_info().rss / 1_048_576, 1),
        "cpu_percent": proc.cpu_percent(interval=None),
        "open_connections": connections,
        "active_tasks": tasks,
    }


async def deep_report(
    settings: Settings,
    targets: list[Target],
    *,
    uptime_seconds: float,
    external_apis: dict[str, Any] | None = None,
    observability: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    include_details: bool = True,
) -> dict[str, Any]:
    """The seed §6.2 body: everything checked concurrently, each under its timeout."""
    jobs: dict[str, Awaitable[CheckResult]] = {}
    if settings.database_url is not None:
        jobs["database"] = check_postgres(settings.database_url.get_secret_value(), settings)
    # REDIS_URL is a dependency of the stack (critical); a breaker-only Redis is dev3000's
    # shared state store: losing it falls back to memory, which only degrades.
    redis_url = settings.redis_url or settings.circuit_breaker_redis_url
    redis_critical = settings.redis_url is not None
    if redis_url:
        jobs["redis"] = check_redis(redis_url, settings)
    for target in targets:
        jobs[f"target:{target.name}"] = check_target(target, settings)
    results = dict(zip(jobs, await asyncio.gather(*jobs.values()), strict=True))

    checks: dict[str, Any] = {}
    statuses: list[tuple[str, bool]] = []
    if "database" in results:
        checks["database"] = results["database"]
        statuses.append((results["database"]["status"], True))
    if "redis" in results:
        checks["redis"] = {**results["redis"], "critical": redis_critical}
        statuses.append((results["redis"]["status"], redis_critical))
    target_checks = {k.split(":", 1)[1]: v for k, v in results.items() if k.startswith("target:")}
    for result in target_checks.values():
        statuses.append((result["status"], bool(result.get("critical"))))
    checks["external_apis"] = external_apis or {}
    for api in checks["external_apis"].values():
        if isinstance(api, dict) and api.get("status") in STATUS_ORDER:
            statuses.append((api["status"], False))
    checks["observability"] = observability or {}
    if target_checks:
        checks["targets"] = target_checks
    report: dict[str, Any] = {
        "status": aggregate(statuses),
        "timestamp": _now_iso(),
        "service": "dev3000",
        "version": __version__,
        "environment": settings.dev3000_mode,
        "uptime_seconds": round(uptime_seconds),
        "checks": checks,
        "metrics": metrics or {},
        "diagnostics": host_diagnostics(),
    }
    if not include_details:
        report["checks"] = {name: _summary(value) for name, value in checks.items()}
        report.pop("diagnostics")
    out: dict[str, Any] = redact(report)
    return out


def _summary(value: Any) -> Any:
    if isinstance(value, dict) and "status" in value:
        return {"status": value["status"]}
    if isinstance(value, dict):
        return {k: _summary(v) for k, v in value.items()}
    return value
