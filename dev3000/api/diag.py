"""``/api/v1/diag/*``: full status, circuit breakers and their control.

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

from fastapi import APIRouter, Body, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from dev3000.api.health import deep_body, readiness, status_code
from dev3000.api.state import StateDep
from guilde_core.http.auth import ControlKey, ReadKey
from guilde_core.http.authz import Caller
from guilde_core.http.problems import PROBLEM_RESPONSES
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
