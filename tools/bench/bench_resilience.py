"""Benchmark of the resilience layer against the libraries it replaces or wraps.

    uv run python -m tools.bench.bench_resilience [--calls N] [--repeat R] [--redis-url URL]

Prints, in one run, per-call cost (best of R runs of N calls) of:

* a closed breaker: bare call, ours in memory, ours on Redis (with its measured Redis round
  trips per call), purgatory 3.0.1 (in memory), pybreaker (sync, its native API);
* an open breaker's rejection: ours vs purgatory, with the memory retained (tracemalloc);
* a retry wrapper on a call that succeeds first time: ours (``resilient_call``: limiter +
  breaker + timeout + retry + budget) vs a bare tenacity ``@retry`` and ``stamina.retry``;

then the goals of issue 2 and whether each is met. Redis keys live under a unique prefix and
are deleted at the end; Redis rows are skipped when it is unreachable.

Last, the rejection A/B of issue 15 (``tools.bench.ab``): the rejection of a forced-open
breaker with this tree's code and with the baseline's (``--baseline``, default the commit
the hot-path work started from), each in its own worker process (``work_breaker.py``),
alternating for ``--rounds`` rounds, beside a plain raise/catch timed in the same worker:
medians, spread, load average, and the objects each rejection leaves to the cyclic GC.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import time
import tracemalloc
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from guilde_core.config import BreakerConfig, Settings
from guilde_core.errors import CircuitOpenError, ServiceUnavailableError
from guilde_core.resilience import BreakerRegistry, resilient_call
from tools.bench import ab

#: tenacity's first-try overhead on the machines the issue's goals were set on (36-47 µs)
TENACITY_REFERENCE = 41.5e-6

CFG = BreakerConfig(
    failure_threshold=5, recovery_timeout=3600, half_open_requests=1, success_threshold=1
)


async def _ok(*_: Any) -> int:
    return 1


def _ok_sync() -> int:
    return 1


async def _best(fn: Callable[[int], Awaitable[None]], calls: int, repeat: int) -> float:
    """Best per-call seconds over ``repeat`` runs of ``calls`` calls."""
    await fn(min(calls, 1000))  # warm up
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        await fn(calls)
        best = min(best, (time.perf_counter() - t0) / calls)
    return best


def _best_sync(fn: Callable[[int], None], calls: int, repeat: int) -> float:
    fn(min(calls, 1000))
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(calls)
        best = min(best, (time.perf_counter() - t0) / calls)
    return best


async def _retained(reject: Callable[[int], Awaitable[None]], n: int) -> float:
    """Bytes still allocated per rejection after ``n`` rejections (tracemalloc)."""
    await reject(min(n, 1000))
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    await reject(n)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return max(0.0, (after - before) / n)


class _RoundTrips:
    """Counts commands sent by redis-py's asyncio connections."""

    def __init__(self) -> None:
        from redis.asyncio.connection import AbstractConnection

        self.count = 0
        self._cls = AbstractConnection
        self._orig = AbstractConnection.send_packed_command
        orig = self._orig

        async def counted(conn: Any, *args: Any, **kwargs: Any) -> None:
            self.count += 1
            await orig(conn, *args, **kwargs)

        AbstractConnection.send_packed_command = counted  # type: ignore[method-assign,assignment]

    def restore(self) -> None:
        self._cls.send_packed_command = self._orig  # type: ignore[method-assign]


async def _redis_ok(url: str) -> bool:
    from guilde_core.shared_redis import probe

    try:
        async with probe(url, 0.5) as client:
            return bool(await client.ping())
    except Exception:
        return False


async def _cleanup(url: str, prefix: str) -> None:
    from tools.harness import delete_keys

    await asyncio.to_thread(delete_keys, url, prefix)


async def bench(calls: int, repeat: int, redis_url: str | None) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    settings = Settings(retry_budget_enabled=True)

    # --- closed breakers --------------------------------------------------------------
    async def bare(n: int) -> None:
        for _ in range(n):
            await _ok()

    rows["bare"] = await _best(bare, calls, repeat)

    reg = BreakerRegistry(settings=settings)
    brk = reg.breaker("bench", CFG)

    async def ours(n: int) -> None:
        for _ in range(n):
            await brk.call(_ok)

    rows["ours_memory"] = await _best(ours, calls, repeat)

    from purgatory import AsyncCircuitBreakerFactory

    factory = AsyncCircuitBreakerFactory(default_threshold=5, default_ttl=3600)

    @factory("bench")  # type: ignore[untyped-decorator]
    async def guarded() -> int:
        return 1

    async def purg(n: int) -> None:
        for _ in range(n):
            await guarded()

    rows["purgatory"] = await _best(purg, calls, repeat)

    import pybreaker

    pyb = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=3600)

    def bare_sync(n: int) -> None:
        for _ in range(n):
            _ok_sync()

    def pyb_call(n: int) -> None:
        for _ in range(n):
            pyb.call(_ok_sync)

    rows["bare_sync"] = _best_sync(bare_sync, calls, repeat)
    rows["pybreaker"] = _best_sync(pyb_call, calls, repeat)

    # --- Redis-backed breaker ------------------------------------------------------------
    if redis_url and await _redis_ok(redis_url):
        prefix = f"guilde-bench:{uuid.uuid4().hex[:8]}:"
        try:
            for label, ttl in (("ours_redis", 1.0), ("ours_redis_nocache", 0.0)):
                rreg = BreakerRegistry(
                    redis_url=redis_url, prefix=prefix, settings=settings, cache_ttl=ttl
                )
                rbrk = rreg.breaker(f"bench-{label}", CFG)
                await rbrk.call(_ok)
                trips = _RoundTrips()

                async def on_redis(n: int, b: Any = rbrk) -> None:
                    for _ in range(n):
                        await b.call(_ok)

                try:
                    start = trips.count
                    n_calls = max(200, calls // 20)
                    rows[label] = await _best(on_redis, n_calls, repeat)
                    done = n_calls * repeat + min(n_calls, 1000)
                    rows[label + "_trips"] = (trips.count - start) / done
                finally:
                    trips.restore()
                await rreg.aclose()
        finally:
            await _cleanup(redis_url, prefix)

    # --- open breaker: rejection cost and memory ---------------------------------------
    open_reg = BreakerRegistry(settings=settings)
    open_brk = open_reg.breaker("open", CFG)
    await open_reg.force_open("open", reason="bench")

    async def reject_ours(n: int) -> None:
        for _ in range(n):
            with contextlib.suppress(CircuitOpenError):
                await open_brk.call(_ok)

    rows["reject_ours"] = await _best(reject_ours, calls, repeat)
    rows["reject_ours_bytes"] = await _retained(reject_ours, calls)

    pfactory = AsyncCircuitBreakerFactory(default_threshold=1, default_ttl=3600)

    @pfactory("open")  # type: ignore[untyped-decorator]
    async def failing() -> int:
        raise ServiceUnavailableError("down")

    with contextlib.suppress(ServiceUnavailableError):
        await failing()

    async def reject_purg(n: int) -> None:
        for _ in range(n):
            with contextlib.suppress(Exception):  # purgatory re-raises its shared error
                await failing()

    n_reject = max(50, calls // 10)  # purgatory's rejections get slower as they grow
    rows["reject_purgatory"] = await _best(reject_purg, n_reject, 1)
    rows["reject_purgatory_bytes"] = await _retained(reject_purg, n_reject)

    # --- retry wrappers, first-try success -------------------------------------------------
    import stamina
    from tenacity import retry, stop_after_attempt, wait_random_exponential

    @retry(stop=stop_after_attempt(3), wait=wait_random_exponential(multiplier=0.1, max=1))
    async def with_tenacity() -> int:
        return 1

    @stamina.retry(on=ServiceUnavailableError, attempts=3)
    async def with_stamina() -> int:
        return 1

    async def ten(n: int) -> None:
        for _ in range(n):
            await with_tenacity()

    async def sta(n: int) -> None:
        for _ in range(n):
            await with_stamina()

    rc_reg = BreakerRegistry(settings=settings)

    async def full(n: int) -> None:
        for _ in range(n):
            await resilient_call("bench", _ok, registry=rc_reg)

    rows["tenacity"] = await _best(ten, max(100, calls // 5), repeat)
    rows["stamina"] = await _best(sta, max(100, calls // 5), repeat)
    rows["resilient_call"] = await _best(full, calls, repeat)
    return rows


def report(rows: dict[str, Any]) -> list[tuple[str, bool]]:
    us = 1e6
    bare, bare_sync = rows["bare"], rows["bare_sync"]

    def line(label: str, key: str, base: float, extra: str = "") -> None:
        if key not in rows:
            print(f"  {label:<44} {'skipped (Redis unreachable)':>24}")
            return
        cost = rows[key]
        print(f"  {label:<44} {cost * us:9.2f} µs  {max(0.0, cost - base) * us:9.2f} µs  {extra}")

    print(f"\n  {'closed breaker, per call':<44} {'total':>12}  {'overhead':>12}")
    line("bare await (baseline)", "bare", bare)
    line("guilde breaker, memory", "ours_memory", bare)
    if "ours_redis" in rows:
        line("guilde breaker, Redis (cache 1 s)", "ours_redis", bare,
             f"{rows['ours_redis_trips']:.3f} round trips/call")  # fmt: skip
        line("guilde breaker, Redis (no cache)", "ours_redis_nocache", bare,
             f"{rows['ours_redis_nocache_trips']:.3f} round trips/call")  # fmt: skip
    else:
        line("guilde breaker, Redis", "ours_redis", bare)
    line("purgatory 3.0.1, memory", "purgatory", bare)
    line("bare sync call (baseline)", "bare_sync", bare_sync)
    line("pybreaker 1.4 (sync call)", "pybreaker", bare_sync)

    print(f"\n  {'open breaker, per rejection':<44} {'total':>12}  {'retained':>12}")
    for label, key in (("guilde", "reject_ours"), ("purgatory 3.0.1", "reject_purgatory")):
        print(f"  {label:<44} {rows[key] * us:9.2f} µs  {rows[key + '_bytes']:8.1f} B/rej")

    print(f"\n  {'retry wrapper, first-try success':<44} {'total':>12}  {'overhead':>12}")
    line("tenacity @retry", "tenacity", bare)
    line("stamina.retry", "stamina", bare)
    line("guilde resilient_call (limiter+breaker+", "resilient_call", bare)
    print("    timeout+retry+budget)")

    over = {k: max(0.0, rows[k] - bare) for k in ("ours_memory", "purgatory", "resilient_call",
                                                   "tenacity", "stamina")}  # fmt: skip
    pyb_over = max(0.0, rows["pybreaker"] - bare_sync)
    goals: list[tuple[str, bool]] = [
        ("in-memory breaker overhead <= purgatory's", over["ours_memory"] <= over["purgatory"]),
        ("rejection < 2 µs (best run)", rows["reject_ours"] < 2e-6),
        ("rejection retains no memory (< 1 B/rejection)", rows["reject_ours_bytes"] < 1.0),
    ]
    if "ours_redis_nocache_trips" in rows:
        goals.append(
            ("Redis breaker, closed: <= 1 round trip/call",
             rows["ours_redis_nocache_trips"] <= 1.0 and rows["ours_redis_trips"] <= 1.0)
        )  # fmt: skip
    goals += [
        ("resilient_call overhead < 5 µs", over["resilient_call"] < 5e-6),
        (
            "resilient_call ahead of purgatory, pybreaker, tenacity, stamina",
            over["resilient_call"]
            < min(over["purgatory"], pyb_over, over["tenacity"], over["stamina"]),
        ),
    ]
    print("\n  goals (issue 2)")
    for text, met in goals:
        print(f"  [{'met' if met else 'NOT met':>7}] {text}")
    # The absolute goals (2 µs, 5 µs) were set on machines where tenacity's first-try
    # overhead is 36-47 µs. Say how loaded this run's machine was by that yardstick.
    factor = over["tenacity"] / TENACITY_REFERENCE
    print(
        f"\n  machine factor: tenacity overhead here / {TENACITY_REFERENCE * us:.0f} µs "
        f"(issue's reference) = {factor:.1f}x"
    )
    if factor > 1.2:
        print(
            f"  scaled to the reference machine: rejection {rows['reject_ours'] / factor * us:.2f}"
            f" µs, resilient_call overhead {over['resilient_call'] / factor * us:.2f} µs"
        )
    return goals


def ab_rejection(rounds: int, calls: int, baseline: str) -> list[tuple[str, bool]]:
    """Rejection cost, this tree vs ``baseline``, alternating worker processes."""
    script = Path(__file__).with_name("work_breaker.py")
    extra: dict[str, list[float]] = {"plain": [], "garbage_after": [], "garbage_before": []}
    load = ab.load_average()
    with ab.baseline_tree(baseline) as base:

        def run(tree: Path, tag: str) -> float:
            out = ab.worker(tree, script, [str(calls)])
            extra["garbage_" + tag].append(out["garbage"])
            if tag == "after":
                extra["plain"].append(out["plain"])
            return out["reject"]

        series = ab.alternate(
            {"after (this tree)": lambda: run(ab.ROOT, "after"),
             f"before ({baseline[:7]})": lambda: run(base, "before")},
            rounds=rounds,
        )  # fmt: skip
    plain = ab.Series("plain raise/catch", extra["plain"][-rounds:])
    series[plain.name] = plain
    ab.report(
        f"open breaker, per rejection ({calls:,} rejections per round)",
        series, unit="µs", scale=1e6, load_before=load, baseline=f"before ({baseline[:7]})",
    )  # fmt: skip
    after = series["after (this tree)"]
    garbage_after = max(extra["garbage_after"][-rounds:])
    garbage_before = max(extra["garbage_before"][-rounds:])
    print(f"   objects left to the cyclic GC per rejection: after {garbage_after:g}, "
          f"before {garbage_before:g}")  # fmt: skip
    goals = [
        ("rejection < 2 µs (median of the rounds)", after.median < 2e-6),
        ("rejection leaves nothing to the cyclic GC", garbage_after == 0),
    ]
    print("\n  goals (issue 15, item 5)")
    for text, met in goals:
        print(f"  [{'met' if met else 'NOT met':>7}] {text}")
    print(f"  rejection / plain raise-catch: {after.median / plain.median:.1f}x "
          "(the absolute goal assumes a plain raise/catch of ~1.0 µs)")  # fmt: skip
    return goals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20000, help="calls per timed run")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs (best is kept)")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("CIRCUIT_BREAKER_REDIS_URL", "redis://127.0.0.1:6379/0"),
        help="Redis for the shared-breaker rows ('' to skip)",
    )
    parser.add_argument("--rounds", type=int, default=ab.MIN_ROUNDS,
                        help="alternating A/B rounds of the rejection rows (>= 5)")  # fmt: skip
    parser.add_argument("--ab-calls", type=int, default=200_000,
                        help="rejections per A/B round")  # fmt: skip
    parser.add_argument("--baseline", default=ab.BASELINE_COMMIT,
                        help="git revision of the A/B baseline")  # fmt: skip
    args = parser.parse_args(argv)
    started = time.perf_counter()
    rows = asyncio.run(bench(args.calls, args.repeat, args.redis_url or None))
    print(f"guilde-diag resilience benchmark — {args.calls} calls x {args.repeat} runs, best run")
    report(rows)
    ab_rejection(args.rounds, args.ab_calls, args.baseline)
    print(f"\n  ({time.perf_counter() - started:.1f} s; CPU load affects absolute numbers, "
          "compare rows of the same run)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
