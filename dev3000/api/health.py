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

import json
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from dev3000.api.metrics import record_deep_report
from dev3000.api.state import AppState, StateDep
from guilde_core import __version__
from guilde_core.http.auth import authenticate, extract_token
from guilde_core.http.problems import PROBLEM_RESPONSES
from guilde_core.redaction import redact
from guilde_core.stack import StackModel
from servers.circuits import logic as circuits_logic
from servers.health.topology import self_node

__all__ = ["deep_body", "router", "self_checks", "status_code", "with_shared_state"]

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
        "Checks every target (settings, targets file, runtime registry), the breakers and "
        "observability concurrently, each under HEALTH_CHECK_TIMEOUT and all within "
        "HEALTH_DEEP_CHECK_DEADLINE (a check still running then is reported unhealthy, "
        "'timeout after …'). Concurrent callers share one round, cached for "
        "HEALTH_CHECK_CACHE_TTL. `checks.database`, `checks.redis` and "
        "`checks.external_apis` come from the watched backend's own report; "
        "`checks.targets` holds every target with its status, latency, error, `reasons` "
        "and `children` (what its own report showed). A status other than healthy always "
        "comes with a check that is not healthy and says why (`reasons`). With "
        "DIAGNOSTIC_AUTH_REQUIRED=true the details need an API key (read scope); without "
        "one each check is reduced to its status and the categories of its reasons."
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
                            "targets": {
                                "backend": {
                                    "status": "healthy",
                                    "kind": "service",
                                    "component": "backend",
                                    "critical": True,
                                    "latency_ms": 12.5,
                                    "children": {
                                        "database": {
                                            "status": "healthy",
                                            "kind": "datastore",
                                            "component": "database",
                                        }
                                    },
                                }
                            },
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
async def deep(
    request: Request,
    state: StateDep,
    fresh: Annotated[
        bool, Query(description="Check now instead of reading the last round (< 2 s old).")
    ] = False,
) -> JSONResponse:
    principal = authenticate(extract_token(request.headers), state.keyring, protected=False)
    include = state.settings.health_check_include_details and not (
        state.keyring.required and principal.anonymous
    )
    body = await deep_body(state, include_details=include, fresh=fresh)
    return JSONResponse(body, status_code=status_code(body["status"]))


async def deep_body(
    state: AppState, *, include_details: bool, fresh: bool = False
) -> dict[str, Any]:
    """The deep report of the app's health service, plus dev3000's own part.

    The round behind it is shared (:meth:`~servers.health.logic.HealthService.snapshot`:
    single flight, cached for ``HEALTH_CHECK_CACHE_TTL`` from its completion, bounded by
    ``HEALTH_DEEP_CHECK_DEADLINE``). ``checks.targets`` holds every target with its reasons
    and children; ``checks.shared_state`` the stores dev3000 shares through Redis (losing
    them only degrades: dev3000 falls back to memory).
    """
    snap = await state.health.snapshot(fresh=fresh)
    body = with_shared_state(snap.report.model_dump(mode="json"), snap.model)
    record_deep_report(body)
    if not include_details:
        body["checks"] = {name: _summary(value) for name, value in body["checks"].items()}
        body.pop("diagnostics", None)
    return body


def with_shared_state(body: dict[str, Any], model: StackModel) -> dict[str, Any]:
    """The deep report ``body`` (JSON) with ``checks.shared_state`` — dev3000's node of
    ``model`` and its stores as entries — redacted."""
    shared = _shared_state(model)
    if shared:
        body = {**body, "checks": {**body["checks"], "shared_state": shared}}
    out: dict[str, Any] = redact(body)
    return out


def _shared_state(model: StackModel) -> dict[str, Any] | None:
    own = self_node(model)
    stores = [n for n in model.children(own.id) if n.source == "report"]
    if not stores:
        return None
    out: dict[str, Any] = {"status": own.status}
    if own.reasons:
        out["reasons"] = [r.model_dump(mode="json", exclude_defaults=True) for r in own.reasons]
    for node in stores:
        entry: dict[str, Any] = {"status": node.status, **node.details}
        if node.error:
            entry["error"] = node.error
        if node.reasons:
            entry["reasons"] = [
                r.model_dump(mode="json", exclude_defaults=True) for r in node.reasons
            ]
        out[node.name] = entry
    return out


def self_checks(state: AppState) -> dict[str, dict[str, Any]]:
    """dev3000's own checks for the stack model: the shared stores it runs on."""
    checks: dict[str, dict[str, Any]] = readiness(state)["checks"]
    return checks


def _summary(value: Any) -> Any:
    """A check reduced to its status, whether it is absent (never up, not counted), the
    categories of its reasons and its children's."""
    if isinstance(value, dict) and "status" in value:
        out: dict[str, Any] = {"status": value["status"]}
        if value.get("absent") is True:
            out["absent"] = True
        reasons = value.get("reasons")
        if isinstance(reasons, list) and reasons:
            out["reasons"] = [
                {"category": r.get("category")} for r in reasons if isinstance(r, dict)
            ]
        children = value.get("children")
        if isinstance(children, dict) and children:
            out["children"] = {k: _summary(v) for k, v in children.items()}
        return out
    if isinstance(value, dict):
        return {k: _summary(v) for k, v in value.items()}
    return value
