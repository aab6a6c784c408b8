"""Worker of ``bench_resilience``'s A/B rejection rows: run with the project of one tree on
``PYTHONPATH`` (see ``tools.bench.ab.worker``); imports only the project's packages.

    python tools/bench/work_breaker.py CALLS

Prints one JSON line: seconds per rejection of a forced-open in-memory breaker, seconds
per plain raise/catch (same process, the anchor), both with the cyclic GC enabled as in a
server, and the objects each rejection leaves to that GC.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time

from guilde_core.config import BreakerConfig, Settings
from guilde_core.errors import CircuitOpenError
from guilde_core.resilience import BreakerRegistry

CFG = BreakerConfig(
    failure_threshold=5, recovery_timeout=3600, half_open_requests=1, success_threshold=1
)


async def _ok() -> int:
    return 1


async def main(calls: int) -> dict[str, float]:
    reg = BreakerRegistry(settings=Settings())
    brk = reg.breaker("bench", CFG)
    await reg.force_open("bench", reason="bench")

    async def reject(n: int) -> None:
        for _ in range(n):
            try:  # noqa: SIM105 - try/except, as the plain anchor (suppress() costs more)
                await brk.call(_ok)
            except CircuitOpenError:
                pass

    def plain(n: int) -> None:
        for _ in range(n):
            try:
                raise ValueError
            except ValueError:
                pass

    await reject(1000)  # warm up
    gc.collect()
    t0 = time.perf_counter()  # the collector runs as it would in a server (enabled)
    await reject(calls)
    per_reject = (time.perf_counter() - t0) / calls
    t0 = time.perf_counter()
    plain(calls)
    per_plain = (time.perf_counter() - t0) / calls
    gc.collect()
    gc.disable()  # then: what 10,000 rejections leave to the cyclic collector
    try:
        await reject(10_000)
        garbage = gc.collect() / 10_000
    finally:
        gc.enable()
    return {"reject": per_reject, "plain": per_plain, "garbage": garbage}


if __name__ == "__main__":
    import logging

    logging.disable(logging.CRITICAL)
    print(json.dumps(asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000))))
