"""The circuit-breaker state machine: small, pure, no I/O, no clock of its own.

Every method takes ``now`` (seconds; wall-clock for the memory store, Redis ``TIME`` for the
Redis store's Lua twin in :mod:`._redis_scripts`) and the effective :class:`BreakerConfig`,
so tests drive it with plain numbers and settings changes apply on the next call.

Semantics — written here rather than taken from purgatory, whose
model lets every caller through in half-open and closes on the first success:

* closed → open after ``failure_threshold`` consecutive failures (a success resets them);
* open → half-open once ``recovery_timeout`` has passed since it opened (on the next call);
* half-open admits at most ``half_open_requests`` trial calls at once; the others are
  rejected as if open;
* ``success_threshold`` trial successes close it; any trial failure reopens it;
* "ignored" outcomes (errors with ``counts_as_failure = False``, cancellations) release a
  trial slot and count neither way;
* manual control: forced open (stays open, never half-opens), forced closed (never opens),
  disabled (pass-through, no accounting) and reset.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from guilde_core.config import BreakerConfig

__all__ = ["Admission", "BreakerState", "Change", "Machine"]


class BreakerState(StrEnum):
    """State of a circuit breaker (the design's vocabulary: ``closed | open | half-open``)."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


CLOSED = BreakerState.CLOSED
OPEN = BreakerState.OPEN
HALF_OPEN = BreakerState.HALF_OPEN

#: (from_state, to_state, reason) — the breaker turns it into a ``BreakerTransition``
Change = tuple[BreakerState, BreakerState, str]


@dataclass(slots=True)
class Admission:
    """Result of asking to make a call: admitted (maybe as a half-open trial) or not."""

    admitted: bool
    trial: bool = False
    retry_at: float | None = None
    change: Change | None = None
    token: str | None = None  # Redis store: the trial slot held by this call


ADMIT = Admission(True)
ADMIT_TRIAL = Admission(True, trial=True)


@dataclass(slots=True)
class Machine:
    """Mutable state of one breaker plus the pure transition rules."""

    state: BreakerState = CLOSED
    failure_count: int = 0
    success_count: int = 0
    opened_at: float | None = None
    inflight: int = 0  # half-open trial calls running
    forced: BreakerState | None = None  # OPEN or CLOSED when forced manually
    disabled: bool = False
    last_failure_at: float | None = None
    last_success_at: float | None = None
    last_error: str | None = None

    # --- admission ----------------------------------------------------------------------
    def admit(self, now: float, cfg: BreakerConfig) -> Admission:
        """May a call go ahead now? Moves open → half-open when the timeout has passed."""
        if self.state is CLOSED or self.disabled:
            return ADMIT
        change: Change | None = None
        if self.state is OPEN:
            if self.forced is OPEN:
                return Admission(False)
            assert self.opened_at is not None
            retry_at = self.opened_at + cfg.recovery_timeout
            if now < retry_at:
                return Admission(False, retry_at=retry_at)
            self.state = HALF_OPEN
            self.success_count = 0
            self.inflight = 0
            change = (OPEN, HALF_OPEN, f"recovery timeout of {cfg.recovery_timeout:g}s elapsed")
        if self.inflight < cfg.half_open_requests:
            self.inflight += 1
            return ADMIT_TRIAL if change is None else Admission(True, True, None, change)
        return Admission(False, retry_at=now, change=change)

    # --- outcomes -----------------------------------------------------------------------
    def success(self, now: float, cfg: BreakerConfig, trial: bool) -> Change | None:
        self.last_success_at = now
        if self.state is CLOSED:
            self.failure_count = 0
            return None
        if self.state is HALF_OPEN and trial:
            self.inflight = max(0, self.inflight - 1)
            self.success_count += 1
            if self.success_count >= cfg.success_threshold:
                n = self.success_count
                self._close()
                return (HALF_OPEN, CLOSED, f"{n} successful trial call(s)")
        return None

    def failure(self, now: float, cfg: BreakerConfig, trial: bool, error: str) -> Change | None:
        self.last_failure_at = now
        self.last_error = error
        if self.state is CLOSED:
            self.failure_count += 1
            if self.failure_count >= cfg.failure_threshold and self.forced is not CLOSED:
                self._open(now)
                return (CLOSED, OPEN, f"{self.failure_count} failure(s): {error}")
            return None
        if self.state is HALF_OPEN and trial:
            self.inflight = max(0, self.inflight - 1)
            self.failure_count += 1
            self._open(now)
            return (HALF_OPEN, OPEN, f"trial call failed: {error}")
        return None

    def ignored(self, trial: bool) -> None:
        """An outcome that counts neither way: only frees the trial slot."""
        if trial and self.state is HALF_OPEN:
            self.inflight = max(0, self.inflight - 1)

    # --- manual control -----------------------------------------------------------------
    def force_open(self, now: float) -> Change:
        before = self.state
        self._open(now)
        self.forced = OPEN
        self.disabled = False
        return (before, OPEN, "forced open")

    def force_close(self) -> Change:
        before = self.state
        self._close()
        self.forced = CLOSED
        self.disabled = False
        return (before, CLOSED, "forced closed")

    def reset(self) -> Change:
        before = self.state
        self._close()
        self.forced = None
        self.disabled = False
        return (before, CLOSED, "reset")

    def disable(self) -> Change:
        before = self.state
        self._close()
        self.forced = None
        self.disabled = True
        return (before, CLOSED, "disabled")

    # --- helpers ------------------------------------------------------------------------
    def _open(self, now: float) -> None:
        self.state = OPEN
        self.opened_at = now
        self.success_count = 0
        self.inflight = 0

    def _close(self) -> None:
        self.state = CLOSED
        self.failure_count = 0
        self.success_count = 0
        self.opened_at = None
        self.inflight = 0

    def retry_at(self, cfg: BreakerConfig) -> float | None:
        if self.state is OPEN and self.opened_at is not None and self.forced is not OPEN:
            return self.opened_at + cfg.recovery_timeout
        return None
