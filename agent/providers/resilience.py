"""How provider calls reach the resilience layer.

:func:`get_resilient_call` returns ``guilde_core.resilience.resilient_call`` (the project's
shared layer: limiter, breaker, tenacity retries honouring Retry-After, growing timeouts,
retry budget, dead letters). Until that package is importable, a small local equivalent is
used — per-service breakers from ``settings.breaker_config`` and the ``ServiceType.LLM``
retry policy — with the same call shape: ``await call(service, fn, service_type=…)`` where
``fn(timeout)`` is one attempt.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from guilde_core.config import ServiceType, get_settings
from guilde_core.errors import (
    CircuitOpenError,
    GuildeError,
    OperationTimeoutError,
    RateLimitedError,
    classify,
)

__all__ = ["get_resilient_call", "local_resilient_call", "reset_local_breakers"]


@dataclass
class _Breaker:
    failures: int = 0
    opened_at: float | None = None


_BREAKERS: dict[str, _Breaker] = {}


def reset_local_breakers() -> None:
    """Forget breaker state (tests): the local breakers and the shared layer's registry."""
    _BREAKERS.clear()
    try:
        from guilde_core.resilience import reset_registry  # type: ignore[import-untyped,attr-defined,unused-ignore]
    except ImportError:
        return
    reset_registry()


async def local_resilient_call(
    service: str,
    fn: Callable[[float | None], Awaitable[Any]],
    *,
    service_type: ServiceType = ServiceType.LLM,
    fallback: Callable[[GuildeError], Awaitable[Any]] | None = None,
) -> Any:
    """Breaker + retries (Retry-After, exponential backoff with jitter, growing timeout)."""
    settings = get_settings()
    policy = settings.retry_policy(service_type)
    config = settings.breaker_config(service)
    breaker = _BREAKERS.setdefault(service, _Breaker())
    started = time.monotonic()
    timeout = policy.timeout
    last: GuildeError | None = None
    for attempt in range(1, policy.max_attempts + 1):
        if settings.circuit_breaker_enabled and breaker.opened_at is not None:
            retry_at = breaker.opened_at + config.recovery_timeout
            if time.time() < retry_at:
                err: GuildeError = CircuitOpenError(service, retry_at=retry_at)
                if fallback is not None:
                    return await fallback(err)
                raise err
        try:
            async with asyncio.timeout(timeout if settings.timeouts_enabled else None):
                result = await fn(timeout)
        except Exception as exc:
            last = classify(exc, service=service)
            if isinstance(exc, TimeoutError) and not isinstance(last, OperationTimeoutError):
                last = OperationTimeoutError(f"timeout after {timeout:.1f}s", service=service)
            if last.counts_as_failure:
                breaker.failures += 1
                if breaker.failures >= config.failure_threshold:
                    breaker.opened_at = time.time()
            if not (settings.retry_enabled and last.retryable) or attempt == policy.max_attempts:
                break
            delay = min(policy.max_delay, policy.base_delay * policy.multiplier ** (attempt - 1))
            delay *= random.uniform(0.5, 1.0)
            if isinstance(last, RateLimitedError) and last.retry_after is not None:
                delay = max(delay, min(last.retry_after, policy.max_delay))
            if isinstance(last, OperationTimeoutError):
                timeout = min(policy.max_timeout, timeout * policy.timeout_multiplier)
            if time.monotonic() - started + delay > policy.deadline:
                break
            await asyncio.sleep(delay)
            continue
        breaker.failures = 0
        breaker.opened_at = None
        return result
    assert last is not None
    if fallback is not None:
        return await fallback(last)
    raise last


def get_resilient_call() -> Callable[..., Awaitable[Any]]:
    """The shared layer's ``resilient_call`` when installed, else the local one."""
    try:
        from guilde_core.resilience import resilient_call  # type: ignore[import-untyped,attr-defined,unused-ignore]
    except ImportError:
        return local_resilient_call
    return resilient_call  # type: ignore[no-any-return,unused-ignore]
