"""Public data shapes of the resilience layer (Pydantic, JSON-ready)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from guilde_core.config import BreakerConfig
from guilde_core.resilience._machine import BreakerState

__all__ = ["Backend", "BreakerSnapshot", "BreakerTransition", "RetryEvent", "StoreStatus", "utc"]

Backend = Literal["memory", "redis", "memory-fallback"]


def utc(ts: float | None) -> datetime | None:
    """A UNIX timestamp as an aware UTC datetime (None stays None)."""
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


class BreakerSnapshot(BaseModel):
    """Everything the registry knows about one breaker, at one moment."""

    model_config = ConfigDict(frozen=True)

    name: str
    state: BreakerState
    config: BreakerConfig
    failure_count: int = 0
    success_count: int = 0
    last_failure_at: datetime | None = None
    last_success_at: datetime | None = None
    last_error: str | None = None
    opened_at: datetime | None = None
    seconds_until_half_open: float | None = Field(
        None, description="Seconds until the next call may be a half-open trial (open only)."
    )
    forced: bool = Field(False, description="Forced open or closed by an operator.")
    disabled: bool = Field(False, description="Disabled: calls pass straight through.")
    backend: Backend = "memory"


class BreakerTransition(BaseModel):
    """A change of breaker state (or a manual action), as subscribers receive it."""

    model_config = ConfigDict(frozen=True)

    name: str
    from_state: BreakerState
    to_state: BreakerState
    at: datetime
    reason: str = ""
    manual: bool = False
    origin: str | None = Field(None, description="Id of the process that made the change.")
    id: str | None = Field(
        None,
        description="With a shared (Redis) store: the same in every process that sees this "
        "transition, so whoever relays it to a timeline gives it one event id.",
    )


class StoreStatus(BaseModel):
    """Where breaker state lives and whether that store is reachable."""

    backend: Literal["memory", "redis"]
    connected: bool
    degraded: bool
    url: str | None = None
    error: str | None = None
    since: datetime | None = None


class RetryEvent(BaseModel):
    """Emitted before each retry sleep (stamina-style hook payload)."""

    model_config = ConfigDict(frozen=True)

    service: str
    attempt: int = Field(description="The attempt that failed (1 = the first call).")
    delay: float = Field(description="Seconds slept before the next attempt.")
    next_timeout: float | None = None
    error: str
    correlation_id: str | None = None
