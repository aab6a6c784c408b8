"""Breaker behaviour through the registry, on the memory store and on real Redis."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
import tracemalloc
from typing import Any

import pytest

from guilde_core.errors import (
    AuthenticationError,
    CircuitOpenError,
    ServiceUnavailableError,
)
from guilde_core.resilience import BreakerRegistry, BreakerState, BreakerTransition
from tests.core.conftest import RegistryFactory, small_config


async def _ok() -> str:
    return "ok"


async def _down() -> str:
    raise ServiceUnavailableError("503 from upstream")


async def _fail(registry: BreakerRegistry, name: str, times: int) -> None:
    brk = registry.breaker(name)
    for _ in range(times):
        with pytest.raises(ServiceUnavailableError):
            await brk.call(_down)


async def _until_half_open(registry: BreakerRegistry, name: str) -> None:
    snap = await registry.snapshot(name)
    assert snap.state is BreakerState.OPEN
    await asyncio.sleep((snap.seconds_until_half_open or 0) + 0.02)


def test_opens_after_threshold_and_rejects_with_fresh_errors(
    make_registry: RegistryFactory,
) -> None:
    async def run() -> None:
        reg = make_registry()
        brk = reg.breaker("svc", small_config(recovery_timeout=30))
        await _fail(reg, "svc", 3)
        errors = []
        for _ in range(3):
            with pytest.raises(CircuitOpenError) as info:
                await brk.call(_ok)
            errors.append(info.value)
        assert len({id(e) for e in errors}) == 3  # a fresh error each time
        assert all((e.retry_after or 0) > 25 for e in errors)
        # no traceback growth: each error carries only its own short traceback
        depths = []
        for err in errors:
            tb, n = err.__traceback__, 0
            while tb is not None:
                n, tb = n + 1, tb.tb_next
            depths.append(n)
        assert len(set(depths)) == 1
        assert depths[0] <= 3
        assert (
            await brk.call(_ok, fallback=lambda e: f"fallback:{type(e).__name__}")
            == "fallback:CircuitOpenError"
        )
        snap = await reg.snapshot("svc")
        assert snap.state is BreakerState.OPEN
        assert snap.failure_count == 3
        assert snap.last_error is not None
        assert "503" in snap.last_error
        assert snap.seconds_until_half_open is not None
        assert 25 < snap.seconds_until_half_open <= 30
        assert brk.calls == [0, 3, 0, 4]  # successful, failed, ignored, not_permitted
        await reg.aclose()

    asyncio.run(run())


@pytest.mark.parametrize("limit", [1, 3])
def test_half_open_admits_exactly_n_of_100_concurrent_calls(
    make_registry: RegistryFactory, limit: int
) -> None:
    async def run() -> None:
        reg = make_registry()
        brk = reg.breaker("svc", small_config(half_open_requests=limit, success_threshold=50))
        await _fail(reg, "svc", 3)
        await _until_half_open(reg, "svc")
        gate = asyncio.Event()
        entered = 0

        async def trial() -> str:
            nonlocal entered
            entered += 1
            await gate.wait()
            return "ok"

        tasks = [asyncio.ensure_future(brk.call(trial)) for _ in range(100)]
        # hold the admitted trials until every call has been decided
        for _ in range(1000):
            if entered + sum(t.done() for t in tasks) == 100:
                break
            await asyncio.sleep(0.01)
        gate.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert entered == limit
        assert sum(r == "ok" for r in results) == limit
        rejected = [r for r in results if isinstance(r, CircuitOpenError)]
        assert len(rejected) == 100 - limit
        assert all(r.state == "half-open" for r in rejected)
        await reg.aclose()

    asyncio.run(run())


def test_success_threshold_closes_and_half_open_failure_reopens(
    make_registry: RegistryFactory,
) -> None:
    async def run() -> None:
        reg = make_registry()
        seen: list[BreakerTransition] = []
        reg.subscribe(seen.append)
        brk = reg.breaker("svc", small_config(success_threshold=2))
        await _fail(reg, "svc", 3)
        await _until_half_open(reg, "svc")
        assert await brk.call(_ok) == "ok"
        assert (await reg.snapshot("svc")).state is BreakerState.HALF_OPEN
        assert await brk.call(_ok) == "ok"
        assert (await reg.snapshot("svc")).state is BreakerState.CLOSED

        await _fail(reg, "svc", 3)
        await _until_half_open(reg, "svc")
        await _fail(reg, "svc", 1)
        snap = await reg.snapshot("svc")
        assert snap.state is BreakerState.OPEN
        with pytest.raises(CircuitOpenError):
            await brk.call(_ok)
        path = [(t.from_state.value, t.to_state.value) for t in seen if t.name == "svc"]
        assert path == [
            ("closed", "open"),
            ("open", "half-open"),
            ("half-open", "closed"),
            ("closed", "open"),
            ("open", "half-open"),
            ("half-open", "open"),
        ]
        assert all(not t.manual for t in seen)
        assert [t.to_state for t in reg.recent_transitions(2)] == [
            BreakerState.HALF_OPEN,
            BreakerState.OPEN,
        ]
        await reg.aclose()

    asyncio.run(run())


def test_permanent_errors_and_cancellation_count_neither_way(
    make_registry: RegistryFactory,
) -> None:
    async def run() -> None:
        reg = make_registry()
        brk = reg.breaker("svc", small_config(failure_threshold=2, half_open_requests=1))

        async def unauthorized() -> None:
            raise AuthenticationError("401", status_code=401)

        async def hang() -> None:
            await asyncio.sleep(30)

        for _ in range(5):
            with pytest.raises(AuthenticationError):
                await brk.call(unauthorized)
        for _ in range(5):
            task = asyncio.ensure_future(brk.call(hang))
            await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        snap = await reg.snapshot("svc")
        assert (snap.state, snap.failure_count) == (BreakerState.CLOSED, 0)
        assert brk.calls[2] == 10  # ignored

        # in half-open a cancelled trial frees its slot instead of reopening the breaker
        await _fail(reg, "svc", 2)
        await _until_half_open(reg, "svc")
        task = asyncio.ensure_future(brk.call(hang))
        await asyncio.sleep(0.05)
        with pytest.raises(CircuitOpenError):  # the only slot is taken
            await brk.call(_ok)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await reg.snapshot("svc")).state is BreakerState.HALF_OPEN
        assert await brk.call(_ok) == "ok"
        await reg.aclose()

    asyncio.run(run())


def test_subscriber_exception_never_replaces_result_or_error(
    make_registry: RegistryFactory, caplog: pytest.LogCaptureFixture
) -> None:
    async def run() -> None:
        reg = make_registry()
        calls: list[str] = []

        def bad(t: BreakerTransition) -> None:
            calls.append(t.to_state.value)
            raise RuntimeError("subscriber bug")

        reg.subscribe(bad)
        brk = reg.breaker("svc", small_config(failure_threshold=1, success_threshold=1))
        with pytest.raises(ServiceUnavailableError):  # the caller's own error, not the bug
            await brk.call(_down)
        await _until_half_open(reg, "svc")
        assert await brk.call(_ok) == "ok"  # the caller's own result
        assert calls == ["open", "half-open", "closed"]
        await reg.aclose()

    asyncio.run(run())
    assert "subscriber bug" in caplog.text


def test_manual_control_is_recorded_and_emitted(make_registry: RegistryFactory) -> None:
    async def run() -> None:
        reg = make_registry()
        seen: list[BreakerTransition] = []
        reg.subscribe(seen.append)
        brk = reg.breaker("svc", small_config(failure_threshold=1, recovery_timeout=0.05))
        snap = await reg.force_open("svc", reason="upstream maintenance")
        assert snap.state is BreakerState.OPEN
        assert snap.forced
        await asyncio.sleep(0.1)
        with pytest.raises(CircuitOpenError):  # forced open: no half-open
            await brk.call(_ok)
        snap = await reg.force_close("svc", reason="trust me")
        assert snap.state is BreakerState.CLOSED
        assert snap.forced
        for _ in range(3):
            with pytest.raises(ServiceUnavailableError):
                await brk.call(_down)
        assert (await reg.snapshot("svc")).state is BreakerState.CLOSED
        snap = await reg.disable("svc", reason="debugging")
        assert snap.disabled
        assert await brk.call(_ok) == "ok"
        snap = await reg.reset("svc", reason="done")
        assert (snap.state, snap.forced, snap.disabled) == (BreakerState.CLOSED, False, False)
        manual = [t for t in seen if t.manual]
        assert [t.reason for t in manual] == [
            "force open: upstream maintenance",
            "force close: trust me",
            "disable: debugging",
            "reset: done",
        ]
        assert all(t.at.tzinfo is not None for t in manual)
        await reg.aclose()

    asyncio.run(run())


def test_disabled_by_settings_is_pass_through(make_registry: RegistryFactory) -> None:
    async def run() -> None:
        reg = make_registry(circuit_breaker_enabled=False)
        brk = reg.breaker("svc", small_config(failure_threshold=1))
        for _ in range(3):
            with pytest.raises(ServiceUnavailableError):
                await brk.call(_down)
        assert await brk.call(_ok) == "ok"
        assert brk.calls == [0, 0, 0, 0]
        await reg.aclose()

    asyncio.run(run())


def test_settings_changes_apply_without_deleting_keys(
    make_registry: RegistryFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from guilde_core.config import reset_settings_cache

    async def run() -> None:
        reg = make_registry(follow_settings=True)
        brk = reg.breaker("payments")
        monkeypatch.setenv("CB_PAYMENTS_FAILURE_THRESHOLD", "2")
        reset_settings_cache()
        assert brk.config.failure_threshold == 2
        await _fail(reg, "payments", 1)
        monkeypatch.setenv("CB_PAYMENTS_FAILURE_THRESHOLD", "4")
        reset_settings_cache()  # a reload: the next call uses the new threshold
        await _fail(reg, "payments", 2)
        assert (await reg.snapshot("payments")).state is BreakerState.CLOSED
        if reg.remote is not None:  # the shared state was kept, not deleted
            assert (await reg.snapshot("payments")).failure_count == 3
        await _fail(reg, "payments", 1)
        snap = await reg.snapshot("payments")
        assert snap.state is BreakerState.OPEN
        assert snap.config.failure_threshold == 4
        await reg.aclose()

    asyncio.run(run())


def test_snapshots_list_every_breaker_with_config(make_registry: RegistryFactory) -> None:
    async def run() -> None:
        reg = make_registry()
        await reg.breaker("openai").call(_ok)
        await _fail(reg, "anthropic", 1)
        snaps = {s.name: s for s in await reg.snapshots()}
        assert {"openai", "anthropic"} <= set(snaps)
        assert snaps["openai"].config.failure_threshold == 3  # built-in for openai
        assert snaps["anthropic"].failure_count == 1
        assert snaps["anthropic"].last_failure_at is not None
        assert snaps["openai"].backend == ("memory" if reg.remote is None else "redis")
        status = reg.store_status()
        assert (status.connected, status.degraded) == (True, False)
        await reg.aclose()

    asyncio.run(run())


def test_metrics_collector_reports_state_and_calls(make_registry: RegistryFactory) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from guilde_core.resilience.metrics import ResilienceCollector

    async def run() -> BreakerRegistry:
        reg = make_registry()
        await reg.breaker("svc", small_config(failure_threshold=1)).call(_ok)
        with pytest.raises(ServiceUnavailableError):
            await reg.breaker("svc").call(_down)
        with pytest.raises(CircuitOpenError):
            await reg.breaker("svc").call(_ok)
        await reg.aclose()
        return reg

    reg = asyncio.run(run())
    prom = CollectorRegistry()
    prom.register(ResilienceCollector(reg))
    text = generate_latest(prom).decode()
    assert 'circuit_breaker_state{name="svc",state="open"} 1.0' in text
    assert 'circuit_breaker_state{name="svc",state="closed"} 0.0' in text
    assert 'circuit_breaker_calls_total{kind="successful",name="svc"} 1.0' in text
    assert 'circuit_breaker_calls_total{kind="failed",name="svc"} 1.0' in text
    assert 'circuit_breaker_calls_total{kind="not_permitted",name="svc"} 1.0' in text


def test_rejections_retain_no_memory() -> None:
    async def run() -> tuple[int, int]:
        reg = BreakerRegistry()
        brk = reg.breaker("svc", small_config(failure_threshold=1, recovery_timeout=60))
        await _fail(reg, "svc", 1)

        async def reject(n: int) -> None:
            for _ in range(n):
                with contextlib.suppress(CircuitOpenError):
                    await brk.call(_ok)

        await reject(1000)
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        await reject(5000)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        return before, after

    before, after = asyncio.run(run())
    assert after - before < 20_000, f"{after - before} bytes retained by 5000 rejections"


@pytest.mark.parametrize("forced", [True, False])
def test_rejections_leave_no_garbage_for_the_cyclic_gc(forced: bool) -> None:
    """A rejection is freed by reference counting alone: no error -> traceback -> frame ->
    error cycle left for the cyclic GC (it was 5 objects per rejection)."""
    reg = BreakerRegistry()
    brk = reg.breaker("svc", small_config(failure_threshold=1, recovery_timeout=60))
    if forced:
        asyncio.run(reg.force_open("svc"))
    else:
        asyncio.run(_fail(reg, "svc", 1))
    seen: list[tuple[str, float | None, str, str | None]] = []
    gc.collect()
    gc.disable()
    try:
        for _ in range(1000):
            co = brk.call(_ok)
            try:
                co.send(None)  # the rejection never awaits: no event loop needed
            except CircuitOpenError as exc:
                if not seen:
                    seen.append((exc.name, exc.retry_at, exc.state, exc.service))
        garbage = gc.collect()
    finally:
        gc.enable()
    assert garbage == 0, f"{garbage} objects left to the cyclic GC by 1000 rejections"
    name, retry_at, state, service = seen[0]
    assert (name, state, service) == ("svc", "open", "svc")
    assert (retry_at is None) is forced
    assert brk.calls[3] == 1000


def test_call_kwargs_and_sync_fallback() -> None:
    async def run() -> Any:
        reg = BreakerRegistry()

        async def echo(a: int, *, b: int) -> int:
            return a + b

        return await reg.breaker("svc").call(echo, 1, b=2)

    assert asyncio.run(run()) == 3
    assert sys.getrefcount(BreakerRegistry) > 0
