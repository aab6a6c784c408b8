"""``resilient_call``: client rate limit + breaker + timeout + retries (+ budget, deadline,
dead letter) around one outbound operation.

Fast path. tenacity costs tens of µs per call even when nothing is retried, so the first
attempt runs directly (limiter check, budget deposit, breaker, cheap timeout); only when it
fails with an error worth retrying is a *fresh* ``AsyncRetrying`` built for this call (a
shared one is unsafe under concurrency and shares its statistics). Its first "attempt"
replays the first failure, so every retry decision goes through the same predicate:

retryable (``classify``)? attempts left? delay (full jitter, or Retry-After capped by
``max_delay``) + elapsed within the deadline? budget token available? — in that order, so a
budget token is only spent on a retry that will really happen.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tenacity import AsyncRetrying, RetryCallState, stop_never

from guilde_core.config import RetryPolicy, ServiceType, Settings, get_settings
from guilde_core.correlation import get_correlation_id
from guilde_core.errors import (
    CircuitOpenError,
    GuildeError,
    OperationTimeoutError,
    RateLimitedError,
    RetryBudgetExhaustedError,
    classify,
)
from guilde_core.redaction import redact_text
from guilde_core.resilience._breaker import BreakerRegistry, CircuitBreaker
from guilde_core.resilience._hooks import emit_retry
from guilde_core.resilience._models import RetryEvent
from guilde_core.resilience._registry import get_registry
from guilde_core.resilience._timeout import call_with_timeout
from guilde_core.resilience.deadletter import Reason, get_dead_letter_store, make_dead_letter
from guilde_core.resilience.ratelimit import ClientRateLimiter, RetryBudget

__all__ = ["RETRY_KINDS", "full_jitter", "resilient_call"]

log = logging.getLogger("guilde.resilience.retry")

T = TypeVar("T")
Attempt = Callable[[float | None], Awaitable[T]]

#: retry counter slots (``retry_calls_total{kind}``)
RETRY_KINDS = (
    "successful_without_retry",
    "successful_with_retry",
    "failed_without_retry",
    "failed_with_retry",
)


def full_jitter(
    attempt: int, policy: RetryPolicy, rng: Callable[[float, float], float] = random.uniform
) -> float:
    """Delay after failed attempt ``attempt`` (1-based): uniform in
    ``[0, min(max_delay, base_delay × multiplier^(attempt-1))]`` (AWS "full jitter")."""
    cap = min(policy.max_delay, policy.base_delay * policy.multiplier ** (attempt - 1))
    return rng(0.0, cap)


@dataclass(slots=True)
class _Service:
    """Per (service, service type) runtime, rebuilt when the settings object changes."""

    settings: Settings
    policy: RetryPolicy
    breaker: CircuitBreaker
    limiter: ClientRateLimiter | None
    budget: RetryBudget
    first_timeout: float
    stats: list[int] = field(default_factory=lambda: [0, 0, 0, 0])


def _service(reg: BreakerRegistry, settings: Settings, service: str, stype: str) -> _Service:
    key = (service, stype)
    svc: _Service | None = reg.services.get(key)
    if svc is not None and svc.settings is settings:
        return svc
    rate = settings.client_rate_limit(service)
    limiter = None
    if rate is not None and rate > 0:
        old = svc.limiter if svc is not None else None
        limiter = (
            old
            if old is not None and old.rate == rate
            else ClientRateLimiter(rate, service=service)
        )
    budget = RetryBudget(
        settings.retry_budget_ratio,
        settings.retry_budget_window_seconds,
        settings.retry_budget_min_retries,
    )
    policy = settings.retry_policy(stype)
    new = _Service(
        settings=settings,
        policy=policy,
        first_timeout=min(policy.timeout, policy.deadline),
        breaker=reg.breaker(service),
        limiter=limiter,
        budget=budget if svc is None else _carry_budget(svc.budget, budget),
        stats=svc.stats if svc is not None else [0, 0, 0, 0],
    )
    reg.services[key] = new
    return new


def _carry_budget(old: RetryBudget, new: RetryBudget) -> RetryBudget:
    old.ratio, old.window, old.min_retries = new.ratio, new.window, new.min_retries
    return old


class _Retrier:
    """Per-call retry state: the predicate, wait and hooks given to tenacity."""

    __slots__ = (
        "attempts",
        "clock",
        "delay",
        "fn",
        "last_failure",
        "policy",
        "reason",
        "rng",
        "service",
        "settings",
        "start",
        "svc",
        "timeout",
    )

    def __init__(
        self,
        service: str,
        svc: _Service,
        settings: Settings,
        fn: Attempt[Any],
        start: float,
        timeout: float | None,
        clock: Callable[[], float],
        rng: Callable[[float, float], float],
    ) -> None:
        self.service = service
        self.svc = svc
        self.settings = settings
        self.policy = svc.policy
        self.fn = fn
        self.start = start
        self.timeout = timeout
        self.clock = clock
        self.rng = rng
        self.delay = 0.0
        self.attempts = 1
        self.reason: Reason = "non_retryable"
        #: the last error an attempt of this call met (not a refusal: open circuit, budget)
        self.last_failure: GuildeError | None = None

    def should_retry(self, state: RetryCallState) -> bool:
        assert state.outcome is not None
        exc = state.outcome.exception()
        if exc is None:
            return False
        n = state.attempt_number
        err = classify(exc, service=self.service)
        if err.counts_as_failure:
            self.last_failure = err
        if not self.settings.retry_enabled or not err.retryable:
            self.reason = "non_retryable"
            return False
        policy = self.policy
        if n >= policy.max_attempts:
            self.reason = "retries_exhausted"
            return False
        if isinstance(err, RateLimitedError) and err.retry_after is not None:
            delay = min(err.retry_after, policy.max_delay)
        else:
            delay = full_jitter(n, policy, self.rng)
        now = self.clock()
        remaining = policy.deadline - (now - self.start)
        if delay >= remaining:
            self.reason = "deadline"
            return False
        if self.settings.retry_budget_enabled and not self.svc.budget.try_spend(now):
            self.reason = "budget_exhausted"
            return False
        if self.timeout is not None and isinstance(err, OperationTimeoutError):
            self.timeout = min(policy.max_timeout, self.timeout * policy.timeout_multiplier)
        self.delay = delay
        return True

    def wait(self, state: RetryCallState) -> float:
        return self.delay

    def before_sleep(self, state: RetryCallState) -> None:
        assert state.outcome is not None
        exc = state.outcome.exception()
        emit_retry(
            RetryEvent(
                service=self.service,
                attempt=state.attempt_number,
                delay=self.delay,
                next_timeout=self.timeout,
                error=redact_text(f"{type(exc).__name__}: {exc}")[:300],
                correlation_id=get_correlation_id(),
            )
        )

    async def attempt(self) -> Any:
        """One more attempt within what is left of the deadline."""
        self.attempts += 1
        remaining = self.policy.deadline - (self.clock() - self.start)
        brk = self.svc.breaker
        if self.timeout is None:
            return await brk.call(self.fn, None)
        return await brk.call(
            call_with_timeout, self.fn, max(0.001, min(self.timeout, remaining)), self.service
        )


async def resilient_call[T](
    service: str,
    fn: Attempt[T],
    *,
    service_type: ServiceType | str = ServiceType.THIRD_PARTY_API,
    fallback: Callable[[GuildeError], Awaitable[T]] | None = None,
    payload: Any = None,
    operation: str | None = None,
    registry: BreakerRegistry | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rng: Callable[[float, float], float] = random.uniform,
) -> T:
    """Call ``fn(timeout)`` — one attempt — with the resilience policy of ``service``.

    Errors surface as the project's typed errors (``classify``): the last attempt's error,
    :class:`CircuitOpenError` when the breaker refuses, :class:`RetryBudgetExhaustedError`
    when a retry was refused by the budget, :class:`RateLimitExceededError` when the client
    limit would make it wait past the deadline. ``fallback(error)`` replaces any of them.
    With ``payload`` (and optionally ``operation``, a replay handler) a permanent failure
    is recorded as a dead letter. ``clock``/``sleep``/``rng`` are injectable for tests.
    """
    reg = registry or get_registry()
    settings = reg._settings or get_settings()
    svc = reg.services.get((service, service_type))
    if svc is None or svc.settings is not settings:
        svc = _service(reg, settings, service, service_type)
    policy = svc.policy
    start = clock()
    timeout = svc.first_timeout if settings.timeouts_enabled else None
    try:
        if svc.limiter is not None and settings.rate_limit_enabled:
            await svc.limiter.acquire(max_wait=policy.deadline)
        if settings.retry_budget_enabled:
            budget = svc.budget
            if start - budget._start >= budget.window:
                budget._roll(start)
            budget.calls += 1
        if timeout is None:
            result = await svc.breaker.call(fn, None)
        else:
            result = await svc.breaker.call(call_with_timeout, fn, timeout, service)
    except Exception as exc:
        retrier = _Retrier(service, svc, settings, fn, start, timeout, clock, rng)
        return await _retry(retrier, exc, service_type, fallback, payload, operation, sleep)
    svc.stats[0] += 1
    return result


async def _retry[T](
    r: _Retrier,
    first: Exception,
    service_type: str,
    fallback: Callable[[GuildeError], Awaitable[T]] | None,
    payload: Any,
    operation: str | None,
    sleep: Callable[[float], Awaitable[None]],
) -> T:
    retrying = AsyncRetrying(
        stop=stop_never,
        retry=r.should_retry,
        wait=r.wait,
        sleep=sleep,
        before_sleep=r.before_sleep,
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                if attempt.retry_state.attempt_number == 1:
                    raise first
                result: T = await r.attempt()
    except Exception as exc:
        final = classify(exc, service=r.service)
        if r.reason == "budget_exhausted":
            final = RetryBudgetExhaustedError(
                f"retry budget of {r.service} spent after {r.attempts} attempt(s): {final.message}",
                service=r.service,
                cause=exc,
            )
        r.svc.stats[3 if r.attempts > 1 else 2] += 1
        # the breaker opened between this call's attempts: the refusal is what it ends with,
        # what its own attempts met is why (kept as the cause, said in the log)
        met = r.last_failure if isinstance(final, CircuitOpenError) else None
        if met is not None and final.__cause__ is None:
            final.__cause__ = met
        if r.attempts > 1:
            log.warning(
                "%s failed after %d attempt(s) (%s): %s%s [correlation_id=%s]",
                r.service,
                r.attempts,
                r.reason,
                type(final).__name__,
                "" if met is None else f" after {type(met).__name__}",
                get_correlation_id(),
            )
        if payload is not None and r.settings.dead_letter_enabled:
            await _dead_letter(r, service_type, payload, operation, final)
        if fallback is not None:
            return await fallback(final)
        if final is exc:
            raise
        raise final from exc
    r.svc.stats[1] += 1
    log.info(
        "%s succeeded after %d attempt(s) [correlation_id=%s]",
        r.service,
        r.attempts,
        get_correlation_id(),
    )
    return result


async def _dead_letter(
    r: _Retrier, service_type: str, payload: Any, operation: str | None, error: BaseException
) -> None:
    try:
        letter = make_dead_letter(
            service=r.service,
            service_type=str(service_type),
            operation=operation,
            payload=payload,
            reason=r.reason,
            error=error,
            attempts=r.attempts,
            correlation_id=get_correlation_id(),
        )
        await get_dead_letter_store().add(letter)
    except Exception:  # never replace the caller's error
        log.exception("could not record a dead letter for %s", r.service)
