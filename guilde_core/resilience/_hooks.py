"""Instrumentation hooks (the hynek/stamina pattern).

The core never imports logging back-ends or Prometheus: it calls the hooks registered here
with typed events (:class:`BreakerTransition` via the registry, :class:`RetryEvent` here),
and keeps plain integer counters that :mod:`guilde_core.resilience.metrics` exposes at
scrape time. A hook that raises is logged and otherwise ignored — it never replaces the
caller's result or error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from guilde_core.resilience._models import RetryEvent

__all__ = ["RetryHook", "add_retry_hook", "emit_retry", "safe_call"]

log = logging.getLogger("guilde.resilience")

RetryHook = Callable[[RetryEvent], Any]

_retry_hooks: list[RetryHook] = []


def safe_call(hook: Callable[[Any], Any], event: Any) -> None:
    """Call one hook; log and swallow whatever it raises (including BaseException
    subclasses other than cancellation and exits, which must propagate)."""
    try:
        hook(event)
    except Exception:
        log.exception("resilience hook %r raised; ignored", hook)


def add_retry_hook(hook: RetryHook) -> Callable[[], None]:
    """Register a retry hook; returns a function that removes it."""
    _retry_hooks.append(hook)

    def remove() -> None:
        if hook in _retry_hooks:
            _retry_hooks.remove(hook)

    return remove


def emit_retry(event: RetryEvent) -> None:
    log.warning(
        "retrying %s: attempt %d failed (%s); next attempt in %.3fs%s [correlation_id=%s]",
        event.service,
        event.attempt,
        event.error,
        event.delay,
        "" if event.next_timeout is None else f" with timeout {event.next_timeout:g}s",
        event.correlation_id,
    )
    for hook in tuple(_retry_hooks):
        safe_call(hook, event)
