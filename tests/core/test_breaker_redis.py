"""Shared breaker state through real Redis: processes, races, outages, round trips."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest
import redis

from guilde_core.errors import CircuitOpenError, ServiceUnavailableError
from guilde_core.resilience import BreakerRegistry, BreakerState, BreakerTransition
from tests.core.conftest import small_config
from tools.harness import PrivateRedis

ROOT = Path(__file__).resolve().parents[2]

# A second OS process using the same breaker; prints one line per step.
CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from guilde_core.config import BreakerConfig
    from guilde_core.errors import CircuitOpenError, ServiceUnavailableError
    from guilde_core.resilience import BreakerRegistry

    url, prefix, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    cfg = BreakerConfig(failure_threshold=3, recovery_timeout=30 if mode == "open" else 0.3,
                        half_open_requests=2, success_threshold=50)

    async def down():
        raise ServiceUnavailableError("503")

    async def main():
        reg = BreakerRegistry(redis_url=url, prefix=prefix)
        brk = reg.breaker("shared", cfg)
        if mode == "open":
            reg.breaker("child-only", cfg)
            await reg.reset("child-only", reason="registered by the child")
            for _ in range(3):
                try:
                    await brk.call(down)
                except ServiceUnavailableError:
                    pass
            print("opened", flush=True)
        elif mode == "trials":
            await reg.snapshot("shared")  # connected
            print("ready", flush=True)
            await asyncio.to_thread(sys.stdin.readline)  # "go"
            admitted = 0
            async def trial():
                nonlocal admitted
                admitted += 1
                await asyncio.sleep(1.0)
            results = await asyncio.gather(
                *[brk.call(trial) for _ in range(50)], return_exceptions=True
            )
            assert all(r is None or isinstance(r, CircuitOpenError) for r in results)
            print(f"admitted={admitted}", flush=True)
        await reg.aclose()

    asyncio.run(main())
    """
)


def _child(url: str, prefix: str, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, url, prefix, mode],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_two_processes_share_one_breaker(redis_url: str, redis_prefix: str) -> None:
    cfg = small_config(failure_threshold=3, recovery_timeout=30)

    async def run() -> None:
        reg = BreakerRegistry(redis_url=redis_url, prefix=redis_prefix)
        seen: list[BreakerTransition] = []
        reg.subscribe(seen.append)  # starts the watch task
        brk = reg.breaker("shared", cfg)
        assert await brk.call(_ok) == "ok"
        await asyncio.sleep(0.2)  # let the watch subscribe
        child = _child(redis_url, redis_prefix, "open")
        out, err = await asyncio.to_thread(child.communicate, timeout=60)
        assert child.returncode == 0, err
        assert out.strip() == "opened"
        # the other process's transition reached our subscriber through the channel
        for _ in range(200):
            if any(t.name == "shared" and t.to_state is BreakerState.OPEN for t in seen):
                break
            await asyncio.sleep(0.01)
        remote = [t for t in seen if t.name == "shared"]
        assert [(t.from_state, t.to_state) for t in remote] == [
            (BreakerState.CLOSED, BreakerState.OPEN)
        ]
        assert remote[0].origin is not None
        assert remote[0].origin != reg.origin
        # ... and this process now refuses calls without having seen a failure itself
        with pytest.raises(CircuitOpenError):
            await brk.call(_ok)
        snaps = {s.name: s for s in await reg.snapshots()}
        assert snaps["shared"].state is BreakerState.OPEN
        assert snaps["shared"].failure_count == 3
        assert "child-only" in snaps  # registered in Redis by the other process only
        # manual control here is seen by the shared state
        await reg.force_close("shared", reason="ops")
        other = BreakerRegistry(redis_url=redis_url, prefix=redis_prefix)
        assert (await other.snapshot("shared")).state is BreakerState.CLOSED
        await other.aclose()
        await reg.aclose()

    asyncio.run(run())
    # purgatory-compatible mirror keys
    client = redis.Redis.from_url(redis_url)
    try:
        mirror = client.get(f"{redis_prefix}cbr::shared")
        assert mirror is not None
        assert b'"state": "closed"' in mirror or b'"state":"closed"' in mirror
    finally:
        client.close()


def test_two_processes_racing_in_half_open_never_exceed_the_limit(
    redis_url: str, redis_prefix: str
) -> None:
    cfg = small_config(
        failure_threshold=3, recovery_timeout=0.3, half_open_requests=2, success_threshold=50
    )

    async def run() -> tuple[int, int]:
        reg = BreakerRegistry(redis_url=redis_url, prefix=redis_prefix)
        brk = reg.breaker("shared", cfg)
        for _ in range(3):
            with pytest.raises(ServiceUnavailableError):
                await brk.call(_down)
        await asyncio.sleep(0.35)
        child = _child(redis_url, redis_prefix, "trials")
        assert child.stdin is not None
        assert child.stdout is not None
        line = await asyncio.to_thread(child.stdout.readline)
        assert line.strip() == "ready"
        admitted = 0

        async def trial() -> None:
            nonlocal admitted
            admitted += 1
            await asyncio.sleep(1.0)

        # both processes fire 50 calls at the same moment; trials are held for a second
        child.stdin.write("go\n")
        child.stdin.flush()
        results = await asyncio.gather(
            *[brk.call(trial) for _ in range(50)], return_exceptions=True
        )
        assert all(r is None or isinstance(r, CircuitOpenError) for r in results)
        out, err = await asyncio.to_thread(child.communicate, timeout=60)
        assert child.returncode == 0, err
        child_admitted = int(out.strip().split("=")[1])
        await reg.aclose()
        return admitted, child_admitted

    ours, theirs = asyncio.run(run())
    assert ours + theirs == 2  # the limit, across both processes


async def _down() -> None:
    raise ServiceUnavailableError("503")


async def _ok() -> str:
    return "ok"


def test_redis_outage_is_invisible_to_callers_and_state_resyncs(
    private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = small_config(failure_threshold=3, recovery_timeout=30)

    async def run() -> None:
        reg = BreakerRegistry(redis_url=private_redis.url, prefix="t:")
        brk = reg.breaker("svc", cfg)
        assert await brk.call(_ok) == "ok"
        assert reg.store_status().degraded is False

        private_redis.stop()
        # callers only ever see their own errors and the breaker's
        with pytest.raises(ServiceUnavailableError):
            await brk.call(_down)
        assert reg.store_status().degraded is True
        assert reg.store_status().connected is False
        for _ in range(2):
            with pytest.raises(ServiceUnavailableError):
                await brk.call(_down)
        with pytest.raises(CircuitOpenError):
            await brk.call(_ok)
        snap = await reg.snapshot("svc")
        assert (snap.state, snap.backend) == (BreakerState.OPEN, "memory-fallback")
        assert len(await reg.snapshots()) == 1

        private_redis.start()  # an empty Redis: the outage lost everything
        for _ in range(300):
            if not reg.store_status().degraded:
                break
            await asyncio.sleep(0.02)
        assert reg.store_status().connected is True
        # resynced: the open state reached the restarted Redis, seen by another registry
        other = BreakerRegistry(redis_url=private_redis.url, prefix="t:")
        snap = await other.snapshot("svc")
        assert (snap.state, snap.backend) == (BreakerState.OPEN, "redis")
        assert snap.failure_count == 3
        await other.reset("svc", reason="recovered")
        await asyncio.sleep(0)
        await reg.aclose()
        await other.aclose()

    asyncio.run(run())
    assert sum("unreachable" in r.getMessage() for r in caplog.records) == 1  # logged once


class _RoundTrips:
    """Counts commands sent by redis-py's asyncio connections (one per round trip)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from redis.asyncio.connection import AbstractConnection

        self.count = 0
        original = AbstractConnection.send_packed_command

        async def counted(conn: AbstractConnection, *args: object, **kwargs: object) -> None:
            self.count += 1
            await original(conn, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(AbstractConnection, "send_packed_command", counted)


def test_closed_state_costs_at_most_one_round_trip_per_call(
    private_redis: PrivateRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    trips = _RoundTrips(monkeypatch)

    async def run() -> tuple[int, int]:
        reg = BreakerRegistry(redis_url=private_redis.url, prefix="rt:", cache_ttl=0.0)
        brk = reg.breaker("svc", small_config(failure_threshold=1000))
        await brk.call(_ok)  # connect, load scripts, sync the cache, start the watch
        with pytest.raises(ServiceUnavailableError):
            await brk.call(_down)
        await asyncio.sleep(0.3)  # the watch is subscribed and idle
        start = trips.count
        for _ in range(100):  # cache_ttl=0: every success is recorded in Redis
            await brk.call(_ok)
        oks = trips.count - start
        start = trips.count
        for _ in range(100):
            with pytest.raises(ServiceUnavailableError):
                await brk.call(_down)
        fails = trips.count - start
        await reg.aclose()
        return oks, fails

    oks, fails = asyncio.run(run())
    assert oks <= 100
    assert fails <= 100
    assert fails >= 100  # failures are really recorded in the shared state


def test_fresh_cache_makes_closed_successes_free(
    private_redis: PrivateRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    trips = _RoundTrips(monkeypatch)

    async def run() -> int:
        reg = BreakerRegistry(redis_url=private_redis.url, prefix="rt:", cache_ttl=60.0)
        brk = reg.breaker("svc", small_config())
        await brk.call(_ok)
        await asyncio.sleep(0.3)
        before = trips.count
        for _ in range(200):
            await brk.call(_ok)
        used = trips.count - before
        await reg.aclose()
        return used

    assert asyncio.run(run()) == 0


@pytest.mark.parametrize("store", ["memory", "redis"])
def test_control_from_another_loop_than_the_one_driving_the_breaker(
    store: str, redis_url: str, redis_prefix: str
) -> None:
    """A server drives a breaker on its own loop (in a thread); an operator's command runs
    on another loop (``asyncio.run`` in the main thread): control works and the server sees it."""
    import threading

    reg = BreakerRegistry(
        redis_url=redis_url if store == "redis" else None, prefix=f"{redis_prefix}xloop:"
    )
    brk = reg.breaker("svc", small_config(failure_threshold=2, recovery_timeout=60))
    server_loop = asyncio.new_event_loop()
    thread = threading.Thread(target=server_loop.run_forever, daemon=True)
    thread.start()

    def on_server[T](coro: Coroutine[Any, Any, T]) -> T:
        result: T = asyncio.run_coroutine_threadsafe(coro, server_loop).result(30)
        return result

    async def fail_twice() -> BreakerState:
        for _ in range(2):
            with pytest.raises(ServiceUnavailableError):
                await brk.call(_down)
        return (await reg.snapshot("svc")).state

    async def operator() -> tuple[BreakerState, BreakerState]:
        closed = (await reg.reset("svc", reason="operator")).state
        forced = (await reg.force_open("svc", reason="maintenance")).state
        return closed, forced

    async def server_call() -> str:
        try:
            return await brk.call(_ok)
        except CircuitOpenError:
            return "rejected"

    try:
        assert on_server(fail_twice()) == BreakerState.OPEN
        assert asyncio.run(operator()) == (BreakerState.CLOSED, BreakerState.OPEN)
        assert on_server(server_call()) == "rejected"
        asyncio.run(reg.reset("svc", reason="done"))
        assert on_server(server_call()) == "ok"
    finally:
        on_server(reg.aclose())
        server_loop.call_soon_threadsafe(server_loop.stop)
        thread.join(10)
        server_loop.close()


def test_a_transition_has_one_id_in_every_process_that_sees_it(
    redis_url: str, redis_prefix: str
) -> None:
    """The process that makes a transition (from its script's reply) and the ones that
    learn of it (from the channel) give it the same id: relays of it to a timeline collapse
    into one event."""
    cfg = small_config(failure_threshold=2, recovery_timeout=30)

    async def run() -> tuple[list[BreakerTransition], list[BreakerTransition]]:
        maker = BreakerRegistry(redis_url=redis_url, prefix=redis_prefix)
        watcher = BreakerRegistry(redis_url=redis_url, prefix=redis_prefix)
        made: list[BreakerTransition] = []
        seen: list[BreakerTransition] = []
        maker.subscribe(made.append)
        watcher.subscribe(seen.append)
        channel = f"{redis_prefix}cbr::__transitions__"
        probe = redis.Redis.from_url(redis_url)
        for _ in range(200):  # both watch the channel
            if probe.pubsub_numsub(channel)[0][1] == 2:
                break
            await asyncio.sleep(0.02)
        probe.close()
        brk = maker.breaker("svc", cfg)
        for _ in range(2):  # automatic: closed -> open
            with pytest.raises(ServiceUnavailableError):
                await brk.call(_down)
        await maker.reset("svc", reason="drill")  # manual: open -> closed
        for _ in range(200):
            if len(seen) == 2:
                break
            await asyncio.sleep(0.02)
        await maker.aclose()
        await watcher.aclose()
        return made, seen

    made, seen = asyncio.run(run())
    assert [(t.from_state, t.to_state) for t in made] == [
        (BreakerState.CLOSED, BreakerState.OPEN),
        (BreakerState.OPEN, BreakerState.CLOSED),
    ]
    assert [t.id for t in seen] == [t.id for t in made]
    assert all(t.id for t in made)
    assert made[0].id != made[1].id
