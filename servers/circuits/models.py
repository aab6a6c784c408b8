"""Pydantic models of the circuits area: the resilience registry's own shapes, plus what a
breaker's state means for health and who controlled it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from guilde_core.resilience import BreakerSnapshot, BreakerTransition, StoreStatus
from servers.health.models import Status

__all__ = [
    "Action",
    "Breaker",
    "BreakerList",
    "BreakerStore",
    "ControlResult",
    "OperatorAction",
    "TransitionList",
]

#: what REST and MCP may do to a breaker
Action = Literal["open", "close", "reset"]
#: what the operator at the command line may do (``disable`` besides)
OperatorAction = Literal["open", "close", "reset", "disable"]


class Breaker(BreakerSnapshot):
    """One circuit breaker as the shared registry sees it (any process, through Redis), and
    what its state means for the dependency it protects."""

    status: Status = Field(
        description="healthy: closed; degraded: half-open, forced closed or disabled (calls "
        "go through unprotected); unhealthy: open or forced open (calls fail fast)."
    )


class BreakerStore(StoreStatus):
    """Where breaker state lives, whether that store is reachable, and what that means."""

    status: Literal["healthy", "degraded"] = Field(
        description="degraded when the shared store is unreachable (memory fallback)."
    )


class BreakerList(BaseModel):
    breakers: list[Breaker]
    store: BreakerStore = Field(description="Where breaker state lives (backend, connected).")


class TransitionList(BaseModel):
    transitions: list[BreakerTransition] = Field(description="Newest last.")


class ControlResult(BaseModel):
    """An accepted control action and the breaker after it."""

    action: OperatorAction
    reason: str = Field(description="Why, as recorded (surrounding whitespace removed).")
    actor: str = Field(description="Who asked: the API key id, 'anonymous' or 'local'.")
    breaker: Breaker
