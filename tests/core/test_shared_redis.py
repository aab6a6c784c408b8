"""The one Redis client helper: bounded pools, one outage policy, the only way to a client."""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from pathlib import Path

import pytest

from guilde_core.errors import ConnectionFailedError
from guilde_core.shared_redis import REDIS_DOWN, SharedRedis, probe
from tools.harness import PrivateRedis, free_port

ROOT = Path(__file__).resolve().parents[2]
SECRET = "pw-9f8e7d6c5b4a"


def _dead_url() -> str:
    return f"redis://ops:{SECRET}@127.0.0.1:{free_port()}/0"


async def _named_clients(url: str, name: str) -> int:
    async with probe(url, 2.0) as client:
        rows = await client.client_list()
    return sum(1 for row in rows if row.get("name") == name)


def test_a_burst_of_callers_shares_a_bounded_pool(redis_url: str, redis_prefix: str) -> None:
    name = f"guilde-test-{uuid.uuid4().hex[:8]}"
    shared = SharedRedis(
        redis_url, use="burst test", max_connections=3, client_name=name, pool_timeout=20
    )

    async def main() -> tuple[int, list[object]]:
        peak = 0
        done = asyncio.Event()

        async def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, await _named_clients(redis_url, name))
                await asyncio.sleep(0.02)

        sampler = asyncio.create_task(sample())
        # 40 callers each holding a connection ~0.1 s: unbounded, that is 40 connections
        calls = [
            shared.run(lambda r: r.blpop([f"{redis_prefix}none"], timeout=0.1)) for _ in range(40)
        ]
        results = await asyncio.gather(*calls)
        done.set()
        await sampler
        peak = max(peak, await _named_clients(redis_url, name))
        assert shared.connections() <= 3
        await shared.aclose()
        return peak, list(results)

    peak, results = asyncio.run(main())
    assert results == [None] * 40  # every caller was served, none failed
    assert 1 <= peak <= 3


def test_the_rate_limiter_holds_at_most_redis_max_connections(
    redis_url: str, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A load burst on the API limiter used to leave dozens of connections open."""
    from guilde_core.config import reset_settings_cache
    from guilde_core.resilience import ServerRateLimiter

    monkeypatch.setenv("REDIS_MAX_CONNECTIONS", "4")
    reset_settings_cache()
    limiter = ServerRateLimiter(100_000, redis_url, prefix=redis_prefix, socket_timeout=2.0)

    async def main() -> list[bool]:
        decisions = await asyncio.gather(*(limiter.hit(f"k{i % 7}") for i in range(300)))
        assert limiter._client is not None
        held = limiter._client.connections()
        await limiter.aclose()
        assert held <= 4, held
        return [d.allowed for d in decisions]

    assert all(asyncio.run(main()))
    assert limiter.backend == "redis"  # every decision came from Redis, none from the fallback


def test_an_outage_is_logged_once_with_the_url_redacted(caplog: pytest.LogCaptureFixture) -> None:
    shared = SharedRedis(_dead_url(), use="test store", policy="open", connect_timeout=0.5)

    async def main() -> int:
        failures = 0
        for _ in range(5):
            try:
                await shared.run(lambda r: r.ping())
            except REDIS_DOWN:
                failures += 1
        await shared.aclose()
        return failures

    with caplog.at_level(logging.DEBUG, logger="guilde.redis"):
        assert asyncio.run(main()) == 5  # policy open: the caller gets the error to fall back
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert "test store" in errors[0].getMessage()
    assert "unreachable" in errors[0].getMessage()
    assert SECRET not in caplog.text
    status = shared.status()
    assert status["connected"] is False
    assert status["errors"] == 5
    assert SECRET not in str(status)


def test_a_closed_use_refuses_with_a_typed_error() -> None:
    shared = SharedRedis(_dead_url(), use="registry", policy="closed", connect_timeout=0.5)

    async def main() -> None:
        with pytest.raises(ConnectionFailedError) as info:
            await shared.run(lambda r: r.ping())
        assert info.value.http_status == 503
        assert SECRET not in str(info.value)

    asyncio.run(main())


def test_the_targets_registry_fails_closed_while_redis_is_down() -> None:
    from dev3000.targets_store import RedisTargetsStore, TargetCreate

    store = RedisTargetsStore(_dead_url(), prefix="guilde-test:")

    async def main() -> None:
        with pytest.raises(ConnectionFailedError):
            await store.all()
        with pytest.raises(ConnectionFailedError):
            await store.create(TargetCreate(name="api", url="http://127.0.0.1:1"))
        await store.aclose()

    asyncio.run(main())


def test_loss_and_recovery_are_each_logged_once(
    private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    shared = SharedRedis(private_redis.url, use="recovering store", connect_timeout=0.5)

    async def call() -> bool:
        try:
            await shared.run(lambda r: r.ping())
        except REDIS_DOWN:
            return False
        return True

    async def main() -> list[bool]:
        # a fresh loop per step: the helper gives each loop its own client
        return [await call() for _ in range(3)]

    with caplog.at_level(logging.DEBUG, logger="guilde.redis"):
        assert asyncio.run(main()) == [True] * 3
        private_redis.stop()
        assert asyncio.run(main()) == [False] * 3
        private_redis.start()
        assert asyncio.run(main()) == [True] * 3
    records = [r for r in caplog.records if r.name == "guilde.redis"]
    levels = [r.levelno for r in records]
    assert levels == [logging.ERROR, logging.WARNING], [r.getMessage() for r in records]
    assert "unreachable" in records[0].getMessage()
    assert records[1].getMessage().endswith("is back")


# the one place that may build a client or a pool; everything else goes through it
_MAKERS = re.compile(
    r"Redis\.from_url|Redis\.from_pool|aioredis\.from_url|redis\.from_url|\b(?:Blocking)?ConnectionPool\b|"
    r"redis\.Redis\(|aioredis\.Redis\("
)
_PRODUCT = (
    "guilde_core",
    "dev3000",
    "servers",
    "agent",
    "console",
    "guilde_diag",
    "tools",
    "evals",
)


def test_no_other_way_to_make_a_redis_client() -> None:
    offenders = []
    for package in _PRODUCT:
        for path in (ROOT / package).rglob("*.py"):
            if path.relative_to(ROOT).as_posix() == "guilde_core/shared_redis.py":
                continue
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if _MAKERS.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert offenders == [], "make Redis clients with guilde_core.shared_redis:\n" + "\n".join(
        offenders
    )
