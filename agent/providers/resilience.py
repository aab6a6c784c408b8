"""How provider calls reach the resilience layer.

:func:`get_resilient_call` returns ``guilde_core.resilience.resilient_call`` (the project's
shared layer: limiter, breaker, tenacity retries honouring Retry-After, growing timeouts,
retry budget, dead letters); ``await call(service, fn, service_type=…)`` where ``fn(timeout)``
is one attempt. :func:`reset_local_breakers` gives tests and live scenarios a fresh registry.
"""

from __future__ import annotations

from agent.providers.base import LLMCall
from guilde_core.resilience import reset_registry, resilient_call

__all__ = ["get_resilient_call", "reset_local_breakers"]


def reset_local_breakers() -> None:
    """Forget breaker state (tests, live scenarios): a fresh process-wide registry."""
    reset_registry()


def get_resilient_call() -> LLMCall:
    """The shared layer's ``resilient_call``."""
    return resilient_call
