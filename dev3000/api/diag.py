"""``/api/v1/diag/*``: full status, circuit breakers and their control.

With ``DIAGNOSTIC_AUTH_REQUIRED=true`` every route here needs a key (``read``); control
(``POST …/circuits/{name}/open|close|reset``) needs ``read+control`` in any case when a key
is sent, and is recorded on the timeline as a ``circuit_control`` event.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from dev3000.api.health import deep_body, readiness, status_code
from dev3000.api.providers import circuit_control, circuit_snapshots
from dev3000.api.state import StateDep
from guilde_core.http.auth import ControlKey, ReadKey
from guilde_core.http.problems import PROBLEM_RESPONSES

__all__ = ["ControlRequest", "router"]

router = APIRouter(prefix="/api/v1/diag", tags=["diagnostics"], responses=PROBLEM_RESPONSES)


class ControlRequest(BaseModel):
    """Why the breaker is being forced (recorded on the timeline)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "openai outage, failing fast"}]}
    )

    reason: str = Field(min_length=1, max_length=500, description="Why; shown on the timeline.")


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
        circuits: list[dict[str, Any]] | dict[str, str] = await circuit_snapshots()
    except Exception as exc:
        circuits = {"error": str(exc)}
    ready = readiness(state)
    try:
        target_count: int | None = len(await state.targets.all())
    except Exception:
        target_count = None
    stream = state.extras.get("stream_manager")
    body: dict[str, Any] = {
        "status": health["status"],
        "health": health,
        "readiness": ready,
        "circuits": circuits,
        "rate_limit": state.limiter.status() if state.limiter else {"backend": "off"},
        "stream": {"clients": getattr(stream, "client_count", 0), "buffered": len(state.bus)},
        "targets": {"count": target_count, "backend": state.targets.backend},
        "config": {"mode": state.settings.dev3000_mode, "reloads": state.reloads},
    }
    return JSONResponse(body, status_code=status_code(body["status"]))


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
async def circuits(_: ReadKey) -> dict[str, Any]:
    return {"circuits": await asyncio.wait_for(circuit_snapshots(), 5.0)}


Action = Literal["open", "close", "reset"]


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
    name: Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$")],
    action: Annotated[Action, Path(description="open | close | reset")],
    request: Annotated[ControlRequest, Body()],
    state: StateDep,
    principal: ControlKey,
) -> dict[str, Any]:
    snapshot = await circuit_control(
        name, action, request.reason, configured=state.settings.breaker_services()
    )
    state.emit(
        kind="circuit_control",
        source="circuits",
        subject=name,
        severity="warning",
        summary=f"circuit {name} {action} by {principal.key_id}: {request.reason}",
        data={"action": action, "reason": request.reason, "key_id": principal.key_id},
    )
    return {"name": name, "action": action, "reason": request.reason, "circuit": snapshot}
