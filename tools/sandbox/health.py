"""Health of the sandbox (the deep-health schema of ``servers.health``, plus the checks the chaos
faults show up in). Checks run concurrently, each with a timeout; the aggregate is the worst
critical check, non-critical failures only degrade."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any

import psutil

from tools.sandbox.context import VERSION, SandboxContext
from tools.sandbox.logs import describe_error

__all__ = ["deep_health", "liveness", "readiness"]

CHECK_TIMEOUT_S = 3.0
_ORDER = {"healthy": 0, "degraded": 1, "unhealthy": 2}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _error(exc: BaseException) -> str:
    return describe_error(exc)


async def _timed(name: str, check: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    try:
        return await asyncio.wait_for(check, CHECK_TIMEOUT_S)
    except TimeoutError:
        return {"status": "unhealthy", "error": f"timeout after {CHECK_TIMEOUT_S}s"}
    except Exception as exc:
        return {"status": "unhealthy", "error": _error(exc)}


async def _database(ctx: SandboxContext) -> dict[str, Any]:
    store = ctx.store
    pool = store.pool_stats()
    ctx.metrics.pool_in_use.set(pool["in_use"])
    result: dict[str, Any] = {"type": store.kind, "critical": True, "pool": pool}
    try:
        latency = await store.ping()
    except Exception as exc:
        exhausted = pool["available"] == 0
        result.update(
            status="unhealthy",
            error=("pool exhausted: " if exhausted else "") + _error(exc),
        )
        return result
    warn = ctx.settings.health_warn_db_latency_ms
    result.update(status="degraded" if latency > warn else "healthy", latency_ms=round(latency, 2))
    if latency > warn:
        result["warning"] = f"latency {latency:.0f} ms > {warn:.0f} ms"
    return result


async def _redis(ctx: SandboxContext) -> dict[str, Any]:
    try:
        details = await ctx.cache.ping()
    except Exception as exc:
        return {
            "status": "unhealthy",
            "type": ctx.cache.kind,
            "critical": False,
            "error": _error(exc),
        }
    warn = ctx.settings.health_warn_redis_latency_ms
    status = "degraded" if details["latency_ms"] > warn else "healthy"
    result = {"status": status, "critical": False, **details}
    if status == "degraded":
        result["warning"] = f"latency {details['latency_ms']:.0f} ms > {warn:.0f} ms"
    return result


async def _external(ctx: SandboxContext) -> dict[str, Any]:
    up = ctx.upstream
    if up.base_url is None:
        return {up.provider: {"status": "healthy", "configured": False}}
    ctx.registry.breaker(up.provider)  # known before its first call: closed, no failures
    try:
        snap = await ctx.registry.snapshot(up.provider)
    except Exception as exc:
        return {up.provider: {"status": "degraded", "error": _error(exc)}}
    data = snap.model_dump(mode="json")
    state = str(data.get("state", "closed"))
    status = {"closed": "healthy", "half-open": "degraded", "half_open": "degraded"}.get(
        state, "unhealthy"
    )
    entry: dict[str, Any] = {
        "status": status,
        "circuit_state": state,
        "failure_count": data.get("failure_count", 0),
        "configured": True,
    }
    for key in ("last_failure", "last_success", "last_error"):
        value = data.get(f"{key}_at", data.get(key))
        if value is not None:
            entry[key] = value
    return {up.provider: entry}


def _window_stats(ctx: SandboxContext) -> dict[str, Any]:
    rows = ctx.recent()
    durations = sorted(d for _, d, _ in rows)
    errors = sum(1 for _, _, s in rows if s >= 500)

    def pct(q: float) -> float:
        if not durations:
            return 0.0
        return round(durations[min(len(durations) - 1, int(q * len(durations)))] * 1000, 1)

    return {
        "requests_total": ctx.requests_total,
        "requests_per_second": round(len(rows) / ctx.config.health_window_s, 2),
        "error_rate_percent": round(100 * errors / len(rows), 2) if rows else 0.0,
        "p50_latency_ms": pct(0.5),
        "p99_latency_ms": pct(0.99),
    }


def _local_checks(ctx: SandboxContext, stats: dict[str, Any]) -> dict[str, dict[str, Any]]:
    cfg = ctx.config
    checks: dict[str, dict[str, Any]] = {}
    rate = stats["error_rate_percent"]
    checks["errors"] = {
        "status": "degraded" if rate > cfg.error_rate_threshold else "healthy",
        "critical": False,
        "error_rate_percent": rate,
        "threshold_percent": cfg.error_rate_threshold,
    }
    slow_ms = ctx.runtime.slow_request_ms
    checks["latency"] = {
        "status": "degraded" if stats["p99_latency_ms"] > slow_ms else "healthy",
        "critical": False,
        "p99_latency_ms": stats["p99_latency_ms"],
        "threshold_ms": slow_ms,
    }
    used = sum(f.stat().st_size for f in ctx.scratch_dir.rglob("*") if f.is_file()) / 2**20
    usage = shutil.disk_usage(ctx.scratch_dir)
    free_pct = round(100 * usage.free / usage.total, 1) if usage.total else 100.0
    disk_bad = used > cfg.disk_budget_mb or free_pct < 5
    checks["disk"] = {
        "status": "degraded" if disk_bad else "healthy",
        "critical": False,
        "scratch_used_mb": round(used, 1),
        "budget_mb": cfg.disk_budget_mb,
        "filesystem_free_percent": free_pct,
    }
    ctx.metrics.scratch_bytes.set(used * 2**20)
    rss = psutil.Process().memory_info().rss
    ctx.metrics.rss_bytes.set(rss)
    grown = (rss - ctx.baseline_rss) / 2**20
    checks["memory"] = {
        "status": "degraded" if grown > cfg.memory_budget_mb else "healthy",
        "critical": False,
        "rss_mb": round(rss / 2**20, 1),
        "grown_mb": round(grown, 1),
        "budget_mb": cfg.memory_budget_mb,
    }
    lps = ctx.log.lines_per_second()
    checks["log_volume"] = {
        "status": "degraded" if lps > cfg.log_flood_threshold else "healthy",
        "critical": False,
        "lines_per_second": round(lps, 1),
        "threshold": cfg.log_flood_threshold,
    }
    config: dict[str, Any] = {
        "status": "degraded" if ctx.config_error else "healthy",
        "critical": False,
        "file": ctx.runtime_path.name,
    }
    if ctx.config_error:
        config["error"] = ctx.config_error
    checks["config"] = config
    return checks


def _aggregate(checks: dict[str, Any]) -> str:
    worst = "healthy"
    for name, check in checks.items():
        if name == "external_apis":
            statuses = [c.get("status", "healthy") for c in check.values()]
            critical = False
        else:
            statuses = [check.get("status", "healthy")]
            critical = bool(check.get("critical"))
        for status in statuses:
            if status != "healthy" and not critical:
                status = "degraded"
            if _ORDER.get(status, 2) > _ORDER[worst]:
                worst = status
    return worst


async def deep_health(ctx: SandboxContext, *, detailed: bool = True) -> dict[str, Any]:
    """The full health document (``detailed`` adds ``metrics`` and ``diagnostics``)."""
    database, redis, external = await asyncio.gather(
        _timed("database", _database(ctx)),
        _timed("redis", _redis(ctx)),
        _timed("external_apis", _external(ctx)),
    )
    if "status" in external and "error" in external:  # the whole group failed
        external = {ctx.upstream.provider: external}
    stats = _window_stats(ctx)
    checks: dict[str, Any] = {"database": database, "redis": redis, "external_apis": external}
    checks.update(_local_checks(ctx, stats))
    doc: dict[str, Any] = {
        "status": _aggregate(checks),
        "timestamp": _now(),
        "service": ctx.config.service_name,
        "version": VERSION,
        "environment": ctx.settings.dev3000_mode,
        "uptime_seconds": round(time.time() - ctx.started, 1),
        "checks": checks,
    }
    if detailed:
        proc = psutil.Process()
        doc["metrics"] = stats
        doc["diagnostics"] = {
            "memory_mb": round(proc.memory_info().rss / 2**20, 1),
            "cpu_percent": proc.cpu_percent(interval=None),
            "open_connections": _connections(proc),
            "active_tasks": len(asyncio.all_tasks()),
            "pid": os.getpid(),
        }
    return doc


def _connections(proc: psutil.Process) -> int:
    try:
        return len(proc.net_connections())
    except (psutil.Error, OSError):
        return 0


def liveness(ctx: SandboxContext) -> dict[str, Any]:
    """Never depends on external systems."""
    return {"status": "healthy", "timestamp": _now(), "service": ctx.config.service_name}


async def readiness(ctx: SandboxContext) -> dict[str, Any]:
    """Ready when the critical dependency (the database) answers and has a free connection."""
    database = await _timed("database", _database(ctx))
    status = "healthy" if database.get("status") != "unhealthy" else "unhealthy"
    return {"status": status, "timestamp": _now(), "checks": {"database": database}}
