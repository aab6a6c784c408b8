"""Per-key request rate limiting for the dev3000 API (``DIAGNOSTIC_RATE_LIMIT`` per minute).

Fixed one-minute windows counted per caller: the API key's fingerprint when a valid key is
sent, else the client address. With a Redis URL the counters live in Redis
(``<prefix>ratelimit:<caller>:<window>``, ``INCR`` + ``EXPIRE``) so several dev3000
instances share one budget; when Redis is unreachable the limiter falls back to in-process
counters (reported by :meth:`RateLimiter.status`) and tries Redis again after a short
pause, so an outage never takes the API down.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["RateDecision", "RateLimiter"]

log = logging.getLogger("dev3000.ratelimit")
WINDOW_SECONDS = 60
_RETRY_REDIS_AFTER = 2.0


@dataclass(frozen=True)
class RateDecision:
    """Outcome of one hit: headers are derived from it."""

    allowed: bool
    limit: int
    remaining: int
    reset_after: float
    retry_after: float | None

    def headers(self) -> dict[str, str]:
        reset = max(1, math.ceil(self.reset_after))
        out = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(reset),
            "RateLimit-Policy": f"{self.limit};w={WINDOW_SECONDS}",
        }
        if not self.allowed:
            out["Retry-After"] = str(max(1, math.ceil(self.retry_after or reset)))
        return out


class RateLimiter:
    """``await limiter.hit(caller)`` → :class:`RateDecision`."""

    def __init__(
        self,
        limit_per_minute: int,
        *,
        redis_url: str | None = None,
        prefix: str = "dev3000:",
        socket_timeout: float = 0.25,
    ) -> None:
        self.limit = limit_per_minute
        self.redis_url = redis_url
        self.prefix = prefix
        self._socket_timeout = socket_timeout
        self._redis: Any = None
        self._memory: dict[tuple[str, int], int] = {}
        self._redis_down_until = 0.0
        self.redis_errors = 0
        self.last_error: str | None = None

    @property
    def backend(self) -> str:
        return "redis" if self.redis_url else "memory"

    def status(self) -> dict[str, Any]:
        degraded = bool(self.redis_url) and time.monotonic() < self._redis_down_until
        return {
            "backend": self.backend,
            "limit_per_minute": self.limit,
            "degraded": degraded,
            "redis_errors": self.redis_errors,
            "last_error": self.last_error,
        }

    def _client(self) -> Any:
        if self._redis is None:
            import redis.asyncio as aioredis

            self._redis = aioredis.Redis.from_url(
                self.redis_url or "",
                socket_timeout=self._socket_timeout,
                socket_connect_timeout=self._socket_timeout,
            )
        return self._redis

    async def hit(self, caller: str) -> RateDecision:
        now = time.time()
        window = int(now // WINDOW_SECONDS)
        reset_after = WINDOW_SECONDS - (now % WINDOW_SECONDS)
        count: int | None = None
        if self.redis_url and time.monotonic() >= self._redis_down_until:
            count = await self._redis_count(caller, window)
        if count is None:
            count = self._memory_count(caller, window)
        allowed = count <= self.limit
        return RateDecision(
            allowed=allowed,
            limit=self.limit,
            remaining=max(0, self.limit - count),
            reset_after=reset_after,
            retry_after=None if allowed else reset_after,
        )

    async def _redis_count(self, caller: str, window: int) -> int | None:
        key = f"{self.prefix}ratelimit:{caller}:{window}"
        try:
            client = self._client()
            async with client.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, WINDOW_SECONDS + 5)
                result = await asyncio.wait_for(pipe.execute(), self._socket_timeout * 2)
            return int(result[0])
        except Exception as exc:  # Redis down: count locally for a while
            self.redis_errors += 1
            self.last_error = type(exc).__name__
            self._redis_down_until = time.monotonic() + _RETRY_REDIS_AFTER
            log.warning("rate limiter: redis unavailable (%s); counting in memory", self.last_error)
            await self._reset_client()
            return None

    def _memory_count(self, caller: str, window: int) -> int:
        if len(self._memory) > 10_000:
            self._memory = {k: v for k, v in self._memory.items() if k[1] >= window}
        key = (caller, window)
        self._memory[key] = self._memory.get(key, 0) + 1
        return self._memory[key]

    async def _reset_client(self) -> None:
        client, self._redis = self._redis, None
        if client is not None:
            try:
                await client.aclose()
            except Exception as exc:  # closing a broken client may fail too
                log.debug("closing redis client: %s", exc)

    async def aclose(self) -> None:
        await self._reset_client()
