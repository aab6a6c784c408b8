"""Rate limits and the retry budget.

* :class:`ClientRateLimiter` — token bucket per upstream (``CLIENT_RATE_LIMIT_<SERVICE>``
  requests/second): waits for a token, or raises :class:`RateLimitExceededError` when the
  wait would be longer than allowed.
* :class:`ServerRateLimiter` — the HTTP API's limiter, per key per route, ``limit`` requests
  per minute as a token bucket (burst = the limit). With a Redis URL the bucket lives in
  Redis and is updated by one Lua script (time from Redis ``TIME``), so every instance
  shares it; without one, or while Redis is unreachable, an in-process bucket decides (after
  a Redis failure, Redis is tried again only after ``retry_redis_after`` seconds, so an
  unreachable store does not cost every request a connect timeout). The HTTP APIs use it
  (``guilde_core.http.ratelimit``); :meth:`RateLimitDecision.headers` gives the IETF
  ``RateLimit-*`` and ``Retry-After`` headers.
* :class:`RetryBudget` — gRPC-retry-throttling-style budget: retries allowed in a sliding
  window = ``min_retries + ratio × calls``; when spent, callers fail fast.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from guilde_core.errors import RateLimitExceededError

if TYPE_CHECKING:
    from guilde_core.shared_redis import SharedRedis

__all__ = ["ClientRateLimiter", "RateLimitDecision", "RetryBudget", "ServerRateLimiter"]

log = logging.getLogger("guilde.resilience.ratelimit")

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class ClientRateLimiter:
    """Token bucket: ``rate`` tokens/second, at most ``burst`` (default max(1, rate))."""

    __slots__ = ("_clock", "_sleep", "_stamp", "burst", "rate", "service", "tokens")

    def __init__(
        self,
        rate: float,
        *,
        burst: float | None = None,
        service: str | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive (requests/second)")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self.service = service
        self.tokens = self.burst
        self._clock = clock
        self._sleep = sleep
        self._stamp = clock()

    def _refill(self) -> float:
        now = self._clock()
        self.tokens = min(self.burst, self.tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        return now

    def try_acquire(self) -> float:
        """Take a token if there is one: returns 0.0, else the seconds until one is due."""
        self._refill()
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate

    async def acquire(self, max_wait: float | None = None) -> None:
        """Take a token, waiting for it if needed; raise when the wait would exceed
        ``max_wait`` seconds (None: wait as long as needed)."""
        self._refill()
        if self.tokens >= 1:
            self.tokens -= 1
            return
        wait = (1 - self.tokens) / self.rate
        if max_wait is not None and wait > max_wait:
            raise RateLimitExceededError(
                f"client rate limit of {self.rate:g}/s for {self.service or 'service'} reached",
                retry_after=wait,
                service=self.service,
            )
        self.tokens -= 1  # reserve: later callers queue behind this one
        await self._sleep(wait)


@dataclass(frozen=True, slots=True)
class RateLimitDecision:
    """Outcome of one server-side rate-limit check (``X-RateLimit-*`` header values)."""

    allowed: bool
    limit: int
    remaining: int
    reset_after: float  # seconds until the bucket is full again
    retry_after: float  # seconds until one request is allowed (0 when allowed)

    def headers(self) -> dict[str, str]:
        """``RateLimit-Limit/-Remaining/-Reset/-Policy`` (draft-ietf-httpapi-ratelimit-headers)
        and, when refused, ``Retry-After`` — whole seconds, at least 1."""
        reset = max(1, math.ceil(self.reset_after))
        out = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(reset),
            "RateLimit-Policy": f"{self.limit};w=60",
        }
        if not self.allowed:
            out["Retry-After"] = str(max(1, math.ceil(self.retry_after or reset)))
        return out


_SERVER_LUA = r"""
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local cap = tonumber(ARGV[1])
local rate = cap / 60.0
local h = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(h[1]) or cap
local ts = tonumber(h[2]) or now
tokens = math.min(cap, tokens + math.max(0, now - ts) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], 120)
return {allowed, tostring(tokens)}
"""


class ServerRateLimiter:
    """Per key per route limiter for the HTTP API (see module doc)."""

    def __init__(
        self,
        limit_per_minute: int,
        redis_url: str | None = None,
        *,
        prefix: str | None = None,
        clock: Clock = time.monotonic,
        max_keys: int = 100_000,
        socket_timeout: float = 1.0,
        retry_redis_after: float = 2.0,
    ) -> None:
        self.limit = limit_per_minute
        self.redis_url = redis_url
        if prefix is None:  # this deployment's namespace (buckets shared only inside it)
            from guilde_core.config import get_settings

            prefix = get_settings().redis_namespace if redis_url else ""
        self.prefix = prefix
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._client: SharedRedis | None = None
        if redis_url:  # redis is imported only when a store is configured
            from guilde_core.shared_redis import SharedRedis

            self._client = SharedRedis(
                redis_url,
                use="rate-limit store",
                policy="open",
                consequence="limiting in memory meanwhile",
                connect_timeout=min(0.5, socket_timeout),
                socket_timeout=socket_timeout,
                logger=log,
            )
        self._sha: str | None = None
        self._retry_redis_after = retry_redis_after
        self._redis_down_until = 0.0
        self.degraded = False
        self.redis_errors = 0
        self.last_error: str | None = None

    @property
    def limit(self) -> int:
        """Requests per minute (burst); may be changed at runtime (a configuration reload)."""
        return self._limit

    @limit.setter
    def limit(self, value: int) -> None:
        if value < 1:
            raise ValueError("limit_per_minute must be at least 1")
        self._limit = int(value)
        self.rate = self._limit / 60.0

    @property
    def backend(self) -> str:
        if self.redis_url is None:
            return "memory"
        return "memory-fallback" if self.degraded else "redis"

    def status(self) -> dict[str, Any]:
        """For readiness and ``/api/v1/diag/status``."""
        return {
            "backend": self.backend,
            "limit_per_minute": self.limit,
            "degraded": self.degraded,
            "redis_errors": self.redis_errors,
            "last_error": self.last_error,
        }

    def _decision(self, allowed: bool, tokens: float) -> RateLimitDecision:
        return RateLimitDecision(
            allowed=allowed,
            limit=self.limit,
            remaining=max(0, math.floor(tokens)),
            reset_after=max(0.0, (self.limit - tokens) / self.rate),
            retry_after=0.0 if allowed else max(0.0, (1 - tokens) / self.rate),
        )

    def _memory_hit(self, bucket: str) -> RateLimitDecision:
        now = self._clock()
        tokens, stamp = self._buckets.pop(bucket, (float(self.limit), now))
        tokens = min(float(self.limit), tokens + (now - stamp) * self.rate)
        allowed = tokens >= 1
        if allowed:
            tokens -= 1
        self._buckets[bucket] = (tokens, now)
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        return self._decision(allowed, tokens)

    async def hit(self, key: str, route: str = "*") -> RateLimitDecision:
        """Count one request of ``key`` on ``route`` and say whether it may proceed."""
        bucket = f"{route}\x00{key}"
        if self.redis_url is None or time.monotonic() < self._redis_down_until:
            return self._memory_hit(bucket)
        rkey = f"{self.prefix}ratelimit:{route}:{key}"
        import redis.exceptions as rex

        from guilde_core.shared_redis import REDIS_DOWN

        res: Any
        assert self._client is not None
        try:
            client = self._client.client()
            if self._sha is None:
                self._sha = await client.script_load(_SERVER_LUA)
            try:
                res = await client.evalsha(self._sha, 1, rkey, self.limit)
            except rex.NoScriptError:
                self._sha = await client.script_load(_SERVER_LUA)
                res = await client.evalsha(self._sha, 1, rkey, self.limit)
        except REDIS_DOWN as exc:
            self._client.outage.failed(exc)  # logged once per outage, URL redacted
            self.redis_errors += 1
            self.last_error = type(exc).__name__
            self._redis_down_until = time.monotonic() + self._retry_redis_after
            self.degraded = True
            return self._memory_hit(bucket)
        self._client.outage.ok()
        self.degraded = False
        return self._decision(int(res[0]) == 1, float(res[1]))

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()


class RetryBudget:
    """Retries allowed over a sliding ``window``: ``min_retries + ratio × calls``.

    Two fixed buckets (current and previous window, the previous one weighted by how much
    of it still overlaps the sliding window) keep ``deposit`` at a few float operations.
    """

    __slots__ = ("_prev", "_start", "calls", "min_retries", "ratio", "retries", "window")

    def __init__(self, ratio: float, window: float, min_retries: int) -> None:
        self.ratio = ratio
        self.window = window
        self.min_retries = min_retries
        self._start = -math.inf
        self.calls = 0
        self.retries = 0
        self._prev = (0, 0)

    def _roll(self, now: float) -> None:
        elapsed = now - self._start
        if elapsed >= self.window:
            self._prev = (self.calls, self.retries) if elapsed < 2 * self.window else (0, 0)
            self.calls = 0
            self.retries = 0
            self._start = now if elapsed >= 2 * self.window else self._start + self.window

    def deposit(self, now: float) -> None:
        """One call was made."""
        if now - self._start >= self.window:
            self._roll(now)
        self.calls += 1

    def available(self, now: float) -> float:
        self._roll(now)
        weight = max(0.0, 1.0 - (now - self._start) / self.window)
        calls = self.calls + self._prev[0] * weight
        retries = self.retries + self._prev[1] * weight
        return self.min_retries + self.ratio * calls - retries

    def try_spend(self, now: float) -> bool:
        """Take one retry from the budget; False when it is spent."""
        if self.available(now) < 1:
            return False
        self.retries += 1
        return True
