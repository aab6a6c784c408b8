"""Pydantic models of the circuits area."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

State = Literal["closed", "open", "half-open"]


class Breaker(BaseModel):
    """One circuit breaker as the shared registry sees it (any process, through Redis)."""

    model_config = ConfigDict(extra="ignore")

    name: str
    state: State
    config: dict[str, Any] = Field(default_factory=dict)
    failure_count: int = 0
    success_count: int = 0
    last_failure_at: datetime | None = None
    last_success_at: datetime | None = None
    last_error: str | None = None
    opened_at: datetime | None = None
    seconds_until_half_open: float | None = None
    forced: bool = False
    disabled: bool = False
    backend: str = "memory"


class BreakerList(BaseModel):
    breakers: list[Breaker]
    store: dict[str, Any] = Field(description="Where breaker state lives (backend, connected).")


class Transition(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str
    from_state: State
    to_state: State
    at: datetime
    reason: str = ""
    manual: bool = False
    origin: str | None = None


class TransitionList(BaseModel):
    transitions: list[Transition] = Field(description="Newest last.")


class ControlResult(BaseModel):
    action: Literal["open", "close", "reset"]
    reason: str
    breaker: Breaker
