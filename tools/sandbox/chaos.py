"""The sandbox side of the chaos faults (catalogue in :mod:`tools.chaos.catalogue`).

:class:`ChaosEngine` turns a fault on (validated, bounded parameters), keeps it until it is
cleared or its ``ttl_s`` expires (a reaper task checks twice a second), and turns it off
again, undoing everything it did (files deleted, memory released, connections returned,
the good runtime config file restored).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import mmap
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from tools.chaos.catalogue import (
    BadConfigParams,
    BrokenViewParams,
    DiskParams,
    FailingFetchParams,
    FaultParams,
    FloodParams,
    LatencyParams,
    MemoryParams,
    PoolParams,
    SlowAssetParams,
    SlowParams,
    SpikeParams,
    StormParams,
    validate_params,
)
from tools.sandbox.context import SandboxContext

__all__ = ["ActiveFault", "ChaosEngine"]

MB = 1 << 20
#: the credential ``upstream-bad-credential`` sends instead of the configured one: an upstream
#: that checks keys (every real provider; the fake LLM started with ``api_key``) answers 401
REVOKED_KEY = "sk-revoked-by-chaos"
_PAGE_FILL = b"\x5a" * MB


@dataclass
class ActiveFault:
    id: str
    params: FaultParams
    started: float
    expires: float
    undo: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "params": self.params.model_dump(),
            "started": self.started,
            "expires": self.expires,
            "expires_in_s": round(max(0.0, self.expires - time.time()), 1),
            **({"info": self.info} if self.info else {}),
        }


class ChaosEngine:
    """Active faults of one sandbox."""

    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx
        self.active: dict[str, ActiveFault] = {}
        self.ballast: list[mmap.mmap] = []
        self._lock = asyncio.Lock()
        self._reaper: asyncio.Task[None] | None = None
        self.log = ctx.log.logger("chaos")

    def start(self) -> None:
        self._reaper = asyncio.create_task(self._reap())

    async def stop(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        await self.clear(None)

    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            now = time.time()
            for fault_id in [f.id for f in self.active.values() if f.expires <= now]:
                self.log.info("fault expired", extra={"fault": fault_id})
                await self.clear(fault_id)

    def status(self) -> list[dict[str, Any]]:
        return [fault.describe() for fault in self.active.values()]

    async def inject(self, fault_id: str, params: dict[str, Any] | None) -> dict[str, Any]:
        """Turn ``fault_id`` on (replacing it if already on); raise ``InvalidInputError``."""
        parsed = validate_params(fault_id, params)
        await self.clear(fault_id)
        async with self._lock:
            now = time.time()
            fault = ActiveFault(fault_id, parsed, now, now + parsed.ttl_s)
            await _APPLY[fault_id](self, fault)
            self.active[fault_id] = fault
            self.ctx.metrics.fault_active.labels(fault_id).set(1)
        self.log.warning(
            "chaos fault injected", extra={"fault": fault_id, "params": parsed.model_dump()}
        )
        return fault.describe()

    async def clear(self, fault_id: str | None) -> list[str]:
        """Turn one fault (or all) off; return the ids cleared."""
        async with self._lock:
            ids = [fault_id] if fault_id is not None else list(self.active)
            cleared: list[str] = []
            for fid in ids:
                fault = self.active.pop(fid, None)
                if fault is None:
                    continue
                for task in fault.tasks:
                    task.cancel()
                for task in fault.tasks:
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
                for undo in reversed(fault.undo):
                    try:
                        await undo()
                    except Exception:
                        self.log.exception("undoing fault failed", extra={"fault": fid})
                self.ctx.metrics.fault_active.labels(fid).set(0)
                cleared.append(fid)
        for fid in cleared:
            self.log.info("chaos fault cleared", extra={"fault": fid})
        return cleared


# --------------------------------------------------------------------------- faults
def _set(fault: ActiveFault, target: object, attr: str, value: object, off: object) -> None:
    """Set ``target.attr`` to ``value`` now and back to ``off`` when the fault clears."""
    setattr(target, attr, value)

    async def undo() -> None:
        setattr(target, attr, off)

    fault.undo.append(undo)


async def _db_unreachable(engine: ChaosEngine, fault: ActiveFault) -> None:
    _set(fault, engine.ctx.store, "unreachable", True, False)


async def _redis_unreachable(engine: ChaosEngine, fault: ActiveFault) -> None:
    _set(fault, engine.ctx.cache, "unreachable", True, False)


async def _db_latency(engine: ChaosEngine, fault: ActiveFault) -> None:
    assert isinstance(fault.params, LatencyParams)
    _set(fault, engine.ctx.store, "delay_s", fault.params.delay_ms / 1000, 0.0)


async def _redis_latency(engine: ChaosEngine, fault: ActiveFault) -> None:
    assert isinstance(fault.params, LatencyParams)
    _set(fault, engine.ctx.cache, "delay_s", fault.params.delay_ms / 1000, 0.0)


async def _storm(engine: ChaosEngine, fault: ActiveFault) -> None:
    params = fault.params
    assert isinstance(params, StormParams)
    storm = engine.ctx.upstream.storm
    storm.kinds, storm.retry_after_s = list(params.kinds), params.retry_after_s
    _set(fault, storm, "rate", params.rate, 0.0)


async def _bad_credential(engine: ChaosEngine, fault: ActiveFault) -> None:
    upstream = engine.ctx.upstream
    _set(fault, upstream, "api_key", REVOKED_KEY, upstream.api_key)


async def _pool(engine: ChaosEngine, fault: ActiveFault) -> None:
    assert isinstance(fault.params, PoolParams)
    store = engine.ctx.store
    fault.info["held"] = await store.hold(fault.params.hold)
    engine.ctx.metrics.pool_in_use.set(store.pool_stats()["in_use"])
    fault.undo.append(store.release_held)


async def _flood(engine: ChaosEngine, fault: ActiveFault) -> None:
    params = fault.params
    assert isinstance(params, FloodParams)
    flood_log = engine.ctx.log.logger("flood")
    tick = 0.05

    async def run() -> None:
        written = 0
        per_tick = max(1, round(params.lines_per_second * tick))
        while written < params.max_lines:
            for _ in range(min(per_tick, params.max_lines - written)):
                flood_log.warning(
                    "cache warmup retry: upstream cache not ready",
                    extra={"attempt": written, "component": "cache-warmer"},
                )
                written += 1
            fault.info["lines"] = written
            await asyncio.sleep(tick)

    fault.tasks.append(asyncio.create_task(run()))


async def _spike(engine: ChaosEngine, fault: ActiveFault) -> None:
    params = fault.params
    assert isinstance(params, SpikeParams)
    spike = {"rate": params.rate, "exception": params.exception, "message": params.message}
    _set(fault, engine.ctx, "spike", spike, None)


async def _slow(engine: ChaosEngine, fault: ActiveFault) -> None:
    params = fault.params
    assert isinstance(params, SlowParams)
    ctx = engine.ctx
    ctx.slow_routes[params.route] = params.delay_ms / 1000

    async def undo() -> None:
        ctx.slow_routes.pop(params.route, None)

    fault.undo.append(undo)


async def _disk(engine: ChaosEngine, fault: ActiveFault) -> None:
    params = fault.params
    assert isinstance(params, DiskParams)
    ctx = engine.ctx
    target = ctx.scratch_dir / "fill"
    target.mkdir(parents=True, exist_ok=True)
    chunk = b"\xa5" * MB

    def write(index: int) -> None:
        (target / f"fill-{index:05d}.bin").write_bytes(chunk)

    async def run() -> None:
        per_tick = max(1, params.rate_mb_s // 10)
        written = 0
        warned = False
        while written < params.cap_mb:
            for _ in range(min(per_tick, params.cap_mb - written)):
                await asyncio.to_thread(write, written)
                written += 1
            fault.info["written_mb"] = written
            ctx.metrics.scratch_bytes.set(written * MB)
            if not warned and written > ctx.config.disk_budget_mb:
                warned = True
                engine.log.warning(
                    "scratch directory over budget",
                    extra={"used_mb": written, "budget_mb": ctx.config.disk_budget_mb},
                )
            await asyncio.sleep(0.1)

    async def undo() -> None:
        await asyncio.to_thread(shutil.rmtree, target, True)
        ctx.metrics.scratch_bytes.set(0)

    fault.undo.append(undo)
    fault.tasks.append(asyncio.create_task(run()))


async def _memory(engine: ChaosEngine, fault: ActiveFault) -> None:
    params = fault.params
    assert isinstance(params, MemoryParams)
    ballast = engine.ballast

    async def run() -> None:
        per_tick = max(1, params.rate_mb_s // 10)
        warned = False
        while len(ballast) < params.cap_mb:
            for _ in range(min(per_tick, params.cap_mb - len(ballast))):
                block = mmap.mmap(-1, MB)  # its own mapping: unmapped (RSS drops) on close
                block.write(_PAGE_FILL)  # written, so resident
                ballast.append(block)
            fault.info["ballast_mb"] = len(ballast)
            engine.ctx.metrics.ballast_bytes.set(len(ballast) * MB)
            if not warned and len(ballast) > engine.ctx.config.memory_budget_mb:
                warned = True
                engine.log.warning("memory over budget", extra={"ballast_mb": len(ballast)})
            await asyncio.sleep(0.1)

    async def undo() -> None:
        for block in ballast:
            block.close()
        ballast.clear()
        engine.ctx.metrics.ballast_bytes.set(0)

    fault.undo.append(undo)
    fault.tasks.append(asyncio.create_task(run()))


async def _bad_config(engine: ChaosEngine, fault: ActiveFault) -> None:
    params = fault.params
    assert isinstance(params, BadConfigParams)
    ctx = engine.ctx
    good = ctx.runtime_path.read_text(encoding="utf-8")
    try:
        data = json.loads(good)
    except json.JSONDecodeError:
        data = ctx.runtime.model_dump()
    data[params.key] = params.value
    ctx.runtime_path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    ctx.reload_runtime()
    fault.info["reload_error"] = ctx.config_error

    async def undo() -> None:
        ctx.runtime_path.write_text(good, encoding="utf-8")
        ctx.reload_runtime()

    fault.undo.append(undo)


def _new_frontend(engine: ChaosEngine, fault: ActiveFault) -> None:
    """Tell the frontend's pages it changed, now and again once ``fault`` is undone (this
    undo step is registered first, so it runs after the others)."""
    frontend = engine.ctx.frontend

    async def undo() -> None:
        frontend.changed()

    fault.undo.insert(0, undo)


async def _broken_view(engine: ChaosEngine, fault: ActiveFault) -> None:
    assert isinstance(fault.params, BrokenViewParams)
    _new_frontend(engine, fault)
    _set(fault, engine.ctx.frontend, "broken_view", fault.params.view, None)
    engine.ctx.frontend.changed()


async def _failing_fetch(engine: ChaosEngine, fault: ActiveFault) -> None:
    assert isinstance(fault.params, FailingFetchParams)
    _new_frontend(engine, fault)
    _set(fault, engine.ctx.frontend, "failing_fetch_status", fault.params.status, None)
    engine.ctx.frontend.changed()


async def _slow_asset(engine: ChaosEngine, fault: ActiveFault) -> None:
    params = fault.params
    assert isinstance(params, SlowAssetParams)
    _new_frontend(engine, fault)
    slow = engine.ctx.frontend.slow_assets
    slow[params.asset] = params.delay_ms / 1000

    async def undo() -> None:
        slow.pop(params.asset, None)

    fault.undo.append(undo)
    engine.ctx.frontend.changed()


_APPLY: dict[str, Callable[[ChaosEngine, ActiveFault], Awaitable[None]]] = {
    "db-unreachable": _db_unreachable,
    "redis-unreachable": _redis_unreachable,
    "db-latency": _db_latency,
    "redis-latency": _redis_latency,
    "upstream-error-storm": _storm,
    "upstream-bad-credential": _bad_credential,
    "pool-exhaustion": _pool,
    "log-flood": _flood,
    "error-spike": _spike,
    "slow-endpoint": _slow,
    "disk-fill": _disk,
    "memory-pressure": _memory,
    "bad-config-reload": _bad_config,
    "frontend-js-exception": _broken_view,
    "frontend-failing-fetch": _failing_fetch,
    "frontend-slow-asset": _slow_asset,
}
