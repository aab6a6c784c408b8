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
from guilde_core.resilience._call import full_jitter, resilient_call
from guilde_core.resilience._hooks import add_retry_hook
from guilde_core.resilience._machine import BreakerState, Machine
from guilde_core.resilience._models import (
    BreakerSnapshot,
    BreakerTransition,
    RetryEvent,
    StoreStatus,
)
from guilde_core.resilience._registry import get_registry, reset_registry
from guilde_core.resilience.deadletter import (
    DeadLetter,
    DeadLetterStore,
    FileDeadLetterStore,
    RedisDeadLetterStore,
    get_dead_letter_store,
    list_dead_letters,
    register_replay_handler,
    replay_dead_letter,
    replayable,
    reset_dead_letter_store,
)
from guilde_core.resilience.ratelimit import (
    ClientRateLimiter,
    RateLimitDecision,
    RetryBudget,
    ServerRateLimiter,
)

__all__ = [
    "BreakerRegistry",
    "BreakerSnapshot",
    "BreakerState",
    "BreakerTransition",
    "CircuitBreaker",
    "ClientRateLimiter",
    "DeadLetter",
    "DeadLetterStore",
    "FileDeadLetterStore",
    "Machine",
    "RateLimitDecision",
    "RedisDeadLetterStore",
    "RetryBudget",
    "RetryEvent",
    "ServerRateLimiter",
    "StoreStatus",
    "add_retry_hook",
    "counts_as_failure",
    "full_jitter",
    "get_dead_letter_store",
    "get_registry",
    "list_dead_letters",
    "register_replay_handler",
    "replay_dead_letter",
    "replayable",
    "reset_dead_letter_store",
    "reset_registry",
    "resilient_call",
]
