"""Connection state and the reconnect back-off (no I/O, no Textual)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

__all__ = ["Backoff", "ConnectionInfo", "ConnectionState"]


class ConnectionState(StrEnum):
    """What the console knows about its link to dev3000."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """A snapshot for the status bar: state, attempt, next retry, since when data is stale."""

    state: ConnectionState = ConnectionState.CONNECTING
    attempt: int = 0
    retry_in: float | None = None
    stale_since: datetime | None = None
    error: str | None = None

    @property
    def stale(self) -> bool:
        """Data on screen is the last known, not current."""
        return self.state is not ConnectionState.CONNECTED

    def failed(self, error: str, delay: float) -> ConnectionInfo:
        return ConnectionInfo(
            state=ConnectionState.RECONNECTING,
            attempt=self.attempt + 1,
            retry_in=delay,
            stale_since=self.stale_since or datetime.now(UTC),
            error=error,
        )

    @staticmethod
    def ok() -> ConnectionInfo:
        return ConnectionInfo(state=ConnectionState.CONNECTED)


class Backoff:
    """Exponential back-off with full jitter: ``initial * factor**n`` capped at ``maximum``."""

    def __init__(
        self,
        initial: float = 0.5,
        factor: float = 2.0,
        maximum: float = 30.0,
        *,
        jitter: bool = True,
    ) -> None:
        if initial <= 0 or factor < 1 or maximum < initial:
            raise ValueError("backoff needs initial > 0, factor >= 1, maximum >= initial")
        self.initial = initial
        self.factor = factor
        self.maximum = maximum
        self.jitter = jitter
        self.attempt = 0

    def next_delay(self) -> float:
        """The delay before the next attempt (grows until :meth:`reset`)."""
        ceiling = min(self.maximum, self.initial * self.factor**self.attempt)
        self.attempt += 1
        if self.jitter:
            return random.uniform(ceiling / 2, ceiling)
        return ceiling

    def reset(self) -> None:
        self.attempt = 0
