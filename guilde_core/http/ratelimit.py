"""Per-caller request rate limiting of the HTTP APIs (``DIAGNOSTIC_RATE_LIMIT`` per minute).

The resilience layer's :class:`~guilde_core.resilience.ServerRateLimiter` (a token bucket per
caller, burst = the limit; in Redis through one Lua script when a Redis URL is configured,
so several instances share one budget; in process otherwise, and while Redis is
unreachable — reported by ``status()`` and readiness — with Redis tried again after a short
pause, so an outage never takes the API down). The caller is the API key's id when a valid
key is sent, else the client address; every rate-limited path shares the caller's budget.
:meth:`~guilde_core.resilience.RateLimitDecision.headers` gives the ``RateLimit-*`` and
``Retry-After`` headers of the responses.
"""

from __future__ import annotations

from guilde_core.resilience.ratelimit import RateLimitDecision, ServerRateLimiter

__all__ = ["RateDecision", "RateLimiter", "new_limiter"]

RateDecision = RateLimitDecision
RateLimiter = ServerRateLimiter


def new_limiter(limit_per_minute: int, *, redis_url: str | None, prefix: str) -> RateLimiter:
    """An API limiter with short Redis timeouts (a slow store must not slow the API)."""
    return ServerRateLimiter(
        limit_per_minute, redis_url, prefix=prefix, socket_timeout=0.25, retry_redis_after=2.0
    )
