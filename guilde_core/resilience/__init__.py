"""The resilience layer: circuit breakers, retries, budgets, timeouts, rate limits and
dead letters for every outbound call of guilde-diag.

Public surface (everything else is private)::

    from guilde_core.resilience import get_registry, resilient_call

    registry = get_registry()                  # Redis-backed if CIRCUIT_BREAKER_REDIS_URL
    await registry.breaker("openai").call(fn, *args, fallback=None)
    await resilient_call("openai", attempt, service_type=ServiceType.LLM, payload={...})

Instrumentation follows hynek/stamina: the core emits typed events (``BreakerTransition``
to ``registry.subscribe`` callbacks, ``RetryEvent`` to ``add_retry_hook`` hooks) and keeps
plain counters; :mod:`guilde_core.resilience.metrics` (Prometheus) reads them. The core
imports neither Prometheus nor any logging back-end. See ``docs/resilience.md``.
"""

from __future__ import annotations

from guilde_core.resilience._breaker import BreakerRegistry, CircuitBreaker, counts_as_failure
from guilde_core.resilience._hooks import add_retry_hook
from guilde_core.resilience._machine import BreakerState, Machine
from guilde_core.resilience._models import (
    BreakerSnapshot,
    BreakerTransition,
    RetryEvent,
    StoreStatus,
)
from guilde_core.resilience._registry import get_registry, reset_registry

__all__ = [
    "BreakerRegistry",
    "BreakerSnapshot",
    "BreakerState",
    "BreakerTransition",
    "CircuitBreaker",
    "Machine",
    "RetryEvent",
    "StoreStatus",
    "add_retry_hook",
    "counts_as_failure",
    "get_registry",
    "reset_registry",
]
