"""Health endpoints: ``/health`` and ``/api/v1/health{,/live,/ready,/deep}``.

* ``/health`` — dev3000's own liveness (container ``HEALTHCHECK``); no I/O.
* ``/api/v1/health`` (< 10 ms) and ``/live`` (< 50 ms) — never touch anything external.
* ``/ready`` (< 500 ms) — 503 at once while shutting down (SIGTERM) or before start-up
  finished; ``degraded`` when a shared store (Redis) is unreachable and dev3000 runs on
  its in-memory fallback.
* ``/deep`` (< 5 s) — the deep report; details need a key when
  ``DIAGNOSTIC_AUTH_REQUIRED=true`` (without one the checks are reduced to their status).

Status → HTTP: healthy and degraded → 200, unhealthy → 503.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from dev3000.api.metrics import record_deep_report
from dev3000.api.state import AppState, StateDep
from guilde_core import __version__
from guilde_core.http.auth import authenticate, extract_token
from guilde_core.http.problems import PROBLEM_RESPONSES
from guilde_core.redaction import redact
from servers.circuits import logic as circuits_logic

__all__ = ["router", "status_code"]

router = APIRouter(tags=["health"], responses=PROBLEM_RESPONSES)


def status_code(status: str) -> int:
    """healthy/degraded → 200, unhealthy → 503."""
    return 503 if status == "unhealthy" else 200


def _ts() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_HEALTH_EXAMPLE = {
    "status": "healthy",
    "service": "dev3000",
    "version": "0.1.0",
    "timestamp": "2026-01-22T10:30:00.000Z",
}


def fast_probe(path: str) -> bytes | None:
    """The JSON body of a no-I/O probe, for :class:`~guilde_core.http.middleware.ApiMiddleware`
    to answer without routing (the routes below document them and answer the same)."""
    if path == "/health":
        return b'{"status":"ok"}'
    if path == "/api/v1/health":  # the same JSON as _basic_health(), without an encoder
        return b'%s%s"}' % (_BASIC_PREFIX, _ts().encode())
    return None


_BASIC_PREFIX = (
    b'{"status":"healthy","service":"dev3000","version":%s,"timestamp":"'
    % json.dumps(__version__).encode()
)


def _basic_health() -> dict[str, Any]:
    return {"status": "healthy", "service": "dev3000", "version": __version__, "timestamp": _ts()}


@router.get(
    "/health",
    summary="dev3000's own liveness (container healthcheck)",
    responses={200: {"content": {"application/json": {"example": {"status": "ok"}}}}},
)
async def container_health() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/api/v1/health",
    summary="Basic liveness (< 10 ms, no I/O)",
    responses={200: {"content": {"application/json": {"example": _HEALTH_EXAMPLE}}}},
)
async def health() -> dict[str, Any]:
    return _basic_health()


@router.get(
    "/api/v1/health/live",
    summary="Liveness probe (< 50 ms, never depends on external systems)",
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {"status": "healthy", "uptime_seconds": 12.5, "pid": 4242}
                }
            }
        }
    },
)
async def live(state: StateDep) -> dict[str, Any]:
    import os

    return {
        "status": "healthy",
        "timestamp": _ts(),
        "uptime_seconds": round(state.uptime, 3),
        "pid": os.getpid(),
    }


def readiness(state: AppState) -> dict[str, Any]:
    """Readiness without I/O: start-up done, not draining, shared stores reachable."""
    checks: dict[str, Any] = {}
    if state.draining:
        status = "unhealthy"
        reason: str | None = "shutting down"
    elif not state.ready:
        status, reason = "unhealthy", "starting"
    else:
        status, reason = "healthy", None
    if state.limiter is not None:
        limiter = state.limiter.status()
        checks["rate_limit_store"] = {
            "status": "degraded" if limiter["degraded"] else "healthy",
            "backend": limiter["backend"],
        }
    checks["circuit_state_store"] = circuit_store_status()
    if status == "healthy" and any(c.get("status") == "degraded" for c in checks.values()):
        status = "degraded"
        reason = "a shared store is unreachable; running on in-memory fallback"
    body: dict[str, Any] = {"status": status, "timestamp": _ts(), "checks": checks}
    if reason:
        body["reason"] = reason
    return body


def circuit_store_status() -> dict[str, Any]:
    """The breakers' state store (``status`` healthy or degraded, backend, connected …)."""
    store = circuits_logic.store_status().model_dump(mode="json")
    return {"status": store.pop("status"), **store}


@router.get(
    "/api/v1/health/ready",
    summary="Readiness probe (< 500 ms); 503 at once while shutting down",
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "status": "healthy",
                        "timestamp": "2026-01-22T10:30:00.000Z",
                        "checks": {"rate_limit_store": {"status": "healthy", "backend": "redis"}},
                    }
                }
            }
        },
        503: {"description": "Not ready (starting or shutting down)"},
    },
)
async def ready(state: StateDep) -> JSONResponse:
    body = readiness(state)
    return JSONResponse(body, status_code=status_code(body["status"]))


@router.get(
    "/api/v1/health/deep",
    summary="Deep diagnostics (< 5 s): the deep report",
    description=(
        "Checks PostgreSQL, Redis, the runtime targets, external APIs (through their "
        "circuit breakers) and observability concurrently, each under "
        "HEALTH_CHECK_TIMEOUT. With DIAGNOSTIC_AUTH_REQUIRED=true the details need an API "
        "key (read scope); without one each check is reduced to its status."
    ),
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "status": "healthy",
                        "timestamp": "2026-01-22T10:30:00Z",
                        "service": "dev3000",
                        "version": "0.1.0",
                        "environment": "development",
                        "uptime_seconds": 3600,
                        "checks": {
                            "database": {"status": "healthy", "latency_ms": 5.2},
                            "redis": {"status": "healthy", "latency_ms": 1.1},
                            "external_apis": {
                                "openai": {"status": "healthy", "circuit_state": "closed"}
                            },
                            "observability": {"logfire": {"status": "healthy"}},
                        },
                        "metrics": {"requests_total": 50000},
                        "diagnostics": {"memory_mb": 80.5},
                    }
                }
            }
        },
        503: {"description": "Unhealthy (a critical check failed)"},
    },
)
async def deep(request: Request, state: StateDep) -> JSONResponse:
    principal = authenticate(
        extract_token(request.headers), state.keyring, scope="read", protected=False
    )
    include = state.settings.health_check_include_details and not (
        state.keyring.required and principal.anonymous
    )
    body = await deep_body(state, include_details=include)
    return JSONResponse(body, status_code=status_code(body["status"]))


async def deep_body(state: AppState, *, include_details: bool) -> dict[str, Any]:
    """The deep report from the health logic, plus dev3000's own parts.

    ``checks.targets`` holds the latest result of each runtime target and
    ``checks.shared_state`` the reachability of the stores dev3000 shares through Redis
    (losing them only degrades: dev3000 falls back to memory). Cached for
    ``HEALTH_CHECK_CACHE_TTL`` seconds.
    """
    ttl = state.settings.health_check_cache_ttl
    deep = state.deep
    cached = deep.fresh(ttl)
    if cached is None:
        async with deep.lock:
            cached = deep.fresh(ttl)
            if cached is None:
                cached = await _full_report(state)
                deep.store(cached)
    body: dict[str, Any] = copy.deepcopy(cached)
    if not include_details:
        body["checks"] = {name: _summary(value) for name, value in body["checks"].items()}
        body.pop("diagnostics", None)
    return body


async def _full_report(state: AppState) -> dict[str, Any]:
    report = await state.health.deep_report()
    body: dict[str, Any] = report.model_dump(mode="json")
    checks: dict[str, Any] = body["checks"]
    runtime = await _runtime_names(state)
    targets: dict[str, Any] = {}
    for name in runtime:
        ring = state.health.history.get(name)
        if ring:
            targets[name] = ring[-1].model_dump(mode="json")
    if targets:
        checks["targets"] = targets
    shared = readiness(state)["checks"]
    if shared:
        worst = "degraded" if any(c["status"] != "healthy" for c in shared.values()) else "healthy"
        checks["shared_state"] = {"status": worst, **shared}
        if worst != "healthy" and body["status"] == "healthy":
            body["status"] = "degraded"
    out: dict[str, Any] = redact(body)
    record_deep_report(out)
    return out


async def _runtime_names(state: AppState) -> list[str]:
    try:
        return [t.name for t in await state.targets.all()]
    except Exception:  # registry store down: the deep report still answers
        return []


def _summary(value: Any) -> Any:
    if isinstance(value, dict) and "status" in value:
        return {"status": value["status"]}
    if isinstance(value, dict):
        return {k: _summary(v) for k, v in value.items()}
    return value
