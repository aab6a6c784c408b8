"""Client-side and server-side rate limiters."""

from __future__ import annotations

import asyncio
import time

import pytest

from guilde_core.config import Settings
from guilde_core.errors import RateLimitExceededError
from guilde_core.resilience import (
    BreakerRegistry,
    ClientRateLimiter,
    ServerRateLimiter,
    resilient_call,
)
from tests.core.conftest import FakeTime
from tools.harness import PrivateRedis


def test_client_limiter_waits_or_refuses() -> None:
    fake = FakeTime(0.0)
    limiter = ClientRateLimiter(2.0, service="api", clock=fake.clock, sleep=fake.sleep)

    async def run() -> None:
        await limiter.acquire()
        await limiter.acquire()
        assert fake.sleeps == []  # the burst
        await limiter.acquire()
        assert fake.sleeps == [pytest.approx(0.5)]
        with pytest.raises(RateLimitExceededError) as info:
            await limiter.acquire(max_wait=0.1)
        assert info.value.retry_after == pytest.approx(0.5)
        fake.now += 10
        assert limiter.try_acquire() == 0.0

    asyncio.run(run())
    with pytest.raises(ValueError, match="positive"):
        ClientRateLimiter(0)


def test_resilient_call_applies_the_configured_client_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CLIENT_RATE_LIMIT_SLOWAPI", "10")
    reg = BreakerRegistry(settings=Settings())

    async def ok(timeout: float | None) -> str:
        return "ok"

    async def run() -> float:
        started = time.monotonic()
        for _ in range(13):  # a burst of 10, then 3 more at 10/s
            await resilient_call("slowapi", ok, registry=reg)
        return time.monotonic() - started

    elapsed = asyncio.run(run())
    assert elapsed >= 0.25

    off = BreakerRegistry(settings=Settings(rate_limit_enabled=False))

    async def run_off() -> float:
        started = time.monotonic()
        for _ in range(30):
            await resilient_call("slowapi", ok, registry=off)
        return time.monotonic() - started

    assert asyncio.run(run_off()) < 0.25


def test_server_limiter_in_memory_per_key_and_route() -> None:
    fake = FakeTime(0.0)
    limiter = ServerRateLimiter(3, clock=fake.clock)

    async def run() -> None:
        decisions = [await limiter.hit("alice", "/api/v1/health") for _ in range(4)]
        assert [d.allowed for d in decisions] == [True, True, True, False]
        assert [d.remaining for d in decisions] == [2, 1, 0, 0]
        assert decisions[-1].retry_after == pytest.approx(20.0)
        assert decisions[-1].limit == 3
        assert decisions[0].reset_after == pytest.approx(20.0)
        assert (await limiter.hit("bob", "/api/v1/health")).allowed  # another key
        assert (await limiter.hit("alice", "/api/v1/logs")).allowed  # another route
        fake.now += 20
        assert (await limiter.hit("alice", "/api/v1/health")).allowed  # refilled one

    asyncio.run(run())
    assert limiter.backend == "memory"


def test_server_limiter_shared_by_two_instances_on_redis(redis_url: str, redis_prefix: str) -> None:
    async def run() -> list[bool]:
        a = ServerRateLimiter(5, redis_url, prefix=redis_prefix)
        b = ServerRateLimiter(5, redis_url, prefix=redis_prefix)
        allowed = []
        for i in range(10):
            limiter = a if i % 2 == 0 else b
            allowed.append((await limiter.hit("key-1", "/r")).allowed)
        other = await b.hit("key-2", "/r")
        assert other.allowed
        assert other.remaining == 4
        assert a.backend == "redis"
        await a.aclose()
        await b.aclose()
        return allowed

    allowed = asyncio.run(run())
    assert sum(allowed) == 5
    assert allowed[:5] == [True] * 5


def test_server_limiter_falls_back_to_memory_when_redis_is_down(
    private_redis: PrivateRedis,
) -> None:
    async def run() -> None:
        limiter = ServerRateLimiter(2, private_redis.url, prefix="rl:", retry_redis_after=0.0)
        assert (await limiter.hit("k", "/r")).allowed
        private_redis.stop()
        decisions = [await limiter.hit("k", "/r") for _ in range(3)]
        assert limiter.backend == "memory-fallback"
        assert [d.allowed for d in decisions] == [True, True, False]
        private_redis.start()
        assert (await limiter.hit("k2", "/r")).allowed
        assert limiter.backend == "redis"
        await limiter.aclose()

    asyncio.run(run())


def test_server_limiter_waits_before_trying_an_unreachable_store_again() -> None:
    """After a Redis failure the in-process bucket decides for ``retry_redis_after``
    seconds: an unreachable store costs one failed attempt, not one per request."""
    from tools.harness import free_port

    async def run(retry_after: float) -> dict[str, object]:
        dead = f"redis://127.0.0.1:{free_port()}/0"
        limiter = ServerRateLimiter(100, dead, prefix="rl:", retry_redis_after=retry_after)
        decisions = [await limiter.hit("k") for _ in range(6)]
        assert all(d.allowed for d in decisions)
        assert [d.remaining for d in decisions] == [99, 98, 97, 96, 95, 94]
        limiter.limit = 2  # a configuration reload
        assert [(await limiter.hit("k2")).allowed for _ in range(3)] == [True, True, False]
        status = limiter.status()
        await limiter.aclose()
        return status

    patient = asyncio.run(run(60.0))
    assert patient["redis_errors"] == 1
    assert patient["degraded"] is True
    assert patient["backend"] == "memory-fallback"
    assert patient["limit_per_minute"] == 2
    assert patient["last_error"] == "ConnectionError"
    eager = asyncio.run(run(0.0))
    assert eager["redis_errors"] == 9


def test_decision_headers() -> None:
    from guilde_core.resilience import RateLimitDecision

    ok = RateLimitDecision(allowed=True, limit=3, remaining=2, reset_after=20.0, retry_after=0.0)
    assert ok.headers() == {
        "RateLimit-Limit": "3",
        "RateLimit-Remaining": "2",
        "RateLimit-Reset": "20",
        "RateLimit-Policy": "3;w=60",
    }
    no = RateLimitDecision(allowed=False, limit=3, remaining=0, reset_after=59.2, retry_after=19.4)
    assert no.headers()["Retry-After"] == "20"
    assert no.headers()["RateLimit-Reset"] == "60"
