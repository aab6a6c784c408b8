"""``/api/v1/diag/*``: full status, the stack model, circuit breakers and their control.

With ``DIAGNOSTIC_AUTH_REQUIRED=true`` every route here needs a key (``read``); control
(``POST …/circuits/{name}/open|close|reset``) is the one decision's ``control`` action
(a key with ``read+control``; anonymous only in development on loopback with auth
optional). Breakers are read and controlled through the circuits adapter
(:mod:`servers.circuits.logic`), whose rules apply here as to the MCP tools; every control
action is recorded on the timeline as a ``control_action`` event naming the key.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from dev3000.api.health import deep_body, readiness, status_code
from dev3000.api.state import StateDep
from guilde_core.http.auth import ControlKey, ReadKey
from guilde_core.http.authz import Caller
from guilde_core.http.problems import PROBLEM_RESPONSES
from guilde_core.redaction import redact
from guilde_core.stack import StackModel, compact
from servers.circuits import logic as circuits_logic

__all__ = ["ControlRequest", "router"]

router = APIRouter(prefix="/api/v1/diag", tags=["diagnostics"], responses=PROBLEM_RESPONSES)


class ControlRequest(BaseModel):
    """Why the breaker is being forced (recorded on the timeline)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "openai outage, failing fast"}]}
    )

    reason: str = Field(
        min_length=circuits_logic.REASON_MIN,
        max_length=circuits_logic.REASON_MAX,
        description="Why; shown on the timeline.",
    )


@router.get(
    "/status",
    summary="Full system status (< 10 s)",
    description="Deep health with details, circuits, rate limiting, stream clients, targets.",
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "status": "degraded",
                        "health": {"status": "degraded", "checks": {}},
                        "readiness": {"status": "healthy"},
                        "circuits": [{"name": "openai", "state": "half-open"}],
                        "rate_limit": {"backend": "redis", "limit_per_minute": 100},
                        "stream": {"clients": 2},
                        "targets": {"count": 3, "backend": "sqlite"},
                    }
                }
            }
        },
        503: {"description": "Unhealthy: the same body, status unhealthy"},
    },
)
async def status(
    *,
    state: StateDep,
    _: ReadKey,
) -> JSONResponse:
    health = await asyncio.wait_for(deep_body(state, include_details=True), 9.0)
    try:
        circuits: list[dict[str, Any]] | dict[str, str] = await _circuits(state)
    except Exception as exc:
        circuits = {"error": type(exc).__name__}
    ready = readiness(state)
    try:
        target_count: int | None = len(await state.targets.all())
    except Exception:
        target_count = None
    body: dict[str, Any] = {
        "status": health["status"],
        "health": health,
        "readiness": ready,
        "circuits": circuits,
        "rate_limit": state.limiter.status() if state.limiter else {"backend": "off"},
        "stream": {
            "clients": state.stream.client_count if state.stream is not None else 0,
            "buffered": len(state.bus),
        },
        "targets": {"count": target_count, "backend": state.targets.backend},
        "config": {"mode": state.settings.dev3000_mode, "reloads": state.reloads},
    }
    return JSONResponse(body, status_code=status_code(body["status"]))


_TOPOLOGY_EXAMPLE = {
    "status": "degraded",
    "observed_at": "2026-01-22T10:30:00Z",
    "nodes": [
        {"id": "dev3000", "name": "dev3000", "kind": "service", "component": "dev3000",
         "status": "healthy", "ever_up": True, "source": "builtin"},
        {"id": "backend", "name": "backend", "kind": "service", "component": "backend",
         "critical": True, "status": "degraded", "ever_up": True, "latency_ms": 948.1,
         "reasons": [{"category": "latency", "summary": "reports degraded: database — "
                      "latency 801 ms > 100 ms", "field": "report.status",
                      "value": "degraded"}]},
        {"id": "backend/database", "name": "database", "kind": "datastore",
         "component": "database", "parent": "backend", "critical": True,
         "status": "degraded", "ever_up": True, "latency_ms": 801.2, "source": "report",
         "reasons": [{"category": "latency", "summary": "latency 801 ms > 100 ms",
                      "field": "checks.database.latency_ms", "value": 801.2,
                      "threshold": 100.0}]},
        {"id": "agent", "name": "agent", "kind": "service", "component": "agent",
         "status": "unhealthy", "absent": True, "reasons": [
             {"category": "unreachable", "summary": "ConnectError: All connection attempts "
              "failed", "field": "targets.agent.error"}]},
    ],
    "edges": [
        {"source": "backend", "target": "backend/database", "origin": "report"},
        {"source": "agent", "target": "dev3000", "origin": "declared"},
    ],
}  # fmt: skip


@router.get(
    "/topology",
    summary="The model of the watched stack (< 5 s)",
    description=(
        "Every component dev3000 watches — services (targets), datastores, upstream "
        "providers, host resources and what each target's own health report shows — with "
        "its status and WHY (`reasons`, read from structured fields, the cause first), "
        "`ever_up`, `absent` (a non-critical target that never answered: shown, not an "
        "incident), and the edges (`source` depends on `target`). Built from the same "
        "deep round as `/api/v1/health/deep` (single flight, cached for "
        "HEALTH_CHECK_CACHE_TTL); redacted. `compact=true` leaves out fields at their "
        "default (the MCP tool's form). Needs a key (read) when DIAGNOSTIC_AUTH_REQUIRED."
    ),
    responses={200: {"content": {"application/json": {"example": _TOPOLOGY_EXAMPLE}}}},
)
async def topology(
    *,
    state: StateDep,
    _: ReadKey,
    fresh: Annotated[
        bool, Query(description="Check now instead of reading the last round.")
    ] = False,
    compact_form: Annotated[
        bool, Query(alias="compact", description="Leave out fields at their default.")
    ] = False,
) -> dict[str, Any]:
    model: StackModel = (await state.health.snapshot(fresh=fresh)).model
    data = compact(model) if compact_form else model.model_dump(mode="json")
    out: dict[str, Any] = redact(data)
    return out


@router.get(
    "/circuits",
    summary="Circuit breaker states (< 100 ms)",
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "circuits": [
                            {"name": "openai", "state": "closed", "failure_count": 0},
                            {"name": "anthropic", "state": "half-open", "failure_count": 3},
                        ]
                    }
                }
            }
        }
    },
)
async def circuits(state: StateDep, _: ReadKey) -> dict[str, Any]:
    return {"circuits": await asyncio.wait_for(_circuits(state), 5.0)}


async def _circuits(state: StateDep) -> list[dict[str, Any]]:
    listed = await circuits_logic.list_breakers(state.settings)
    return [b.model_dump(mode="json") for b in listed.breakers]


@router.post(
    "/circuits/{name}/{action}",
    summary="Force a breaker open/closed or reset it (control scope)",
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "name": "openai",
                        "action": "open",
                        "reason": "openai outage",
                        "circuit": {"name": "openai", "state": "open"},
                    }
                }
            }
        }
    },
)
async def control(
    *,
    name: Annotated[
        str,
        Path(min_length=1, max_length=circuits_logic.NAME_MAX, pattern=circuits_logic.NAME_PATTERN),
    ],
    action: Annotated[circuits_logic.Action, Path(description="open | close | reset")],
    request: Annotated[ControlRequest, Body()],
    state: StateDep,
    principal: ControlKey,
) -> dict[str, Any]:
    result = await circuits_logic.control(
        name,
        action,
        caller=Caller(principal, "rest", state.keyring.posture),
        reason=request.reason,
        settings=state.settings,
        audit=state.bus.publish,
    )
    return {
        "name": name,
        "action": action,
        "reason": result.reason,
        "circuit": result.breaker.model_dump(mode="json"),
    }
