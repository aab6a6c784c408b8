"""Benchmarks of the diagnostic servers' logic, A/B against the baseline and system tools.

    uv run python tools/bench/bench_servers.py                      # default (~2 min)
    uv run python tools/bench/bench_servers.py --tail-sizes 1024,4096 --search-size 1024

Every row alternates its variants for ``--rounds`` rounds (``tools.bench.ab``): this
tree's code, the baseline's (``--baseline``, the commit the hot-path work started from;
each in its own worker process, ``work_logs.py``) and the system tool, and prints medians,
min–max, spread and the load average.

1. tail: the last 1,000 entries of generated logs of each ``--tail-sizes`` (MiB) —
   ``servers.logs.logic.tail`` (median of ``--tail-calls`` calls in one event loop) beside
   ``tail -n 1000`` on the same file; goal < 20 ms;
2. literal search over a ``--search-size`` MiB log beside ``grep -c`` (page cache warm);
   goal >= 0.5x grep's throughput, then the search's peak traced memory (tracemalloc) and
   RSS growth, goal < 100 MB;
3. deep health over ``--targets`` HTTP targets where one hangs: total time vs one timeout
   (each round once; medians).

Files are generated in a temporary directory (``--dir`` to choose where) and removed after.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from guilde_core.config import Settings  # noqa: E402
from servers.health.logic import HealthService  # noqa: E402
from tools.bench import ab  # noqa: E402

LINE = (
    '{"timestamp": "2026-03-01T10:00:00Z", "level": "info", "logger": "api", '
    '"event": "handled request", "path": "/api/orders", "status": 200, "ms": 12.5, '
    '"request_id": "req-%08d"}\n'
)
NEEDLE = "needle-in-the-haystack"


def generate(path: Path, mib: int) -> int:
    """A JSON-lines log of about ``mib`` MiB; every 100,000th line carries the needle."""
    target = mib * 1024 * 1024
    block_lines = 100_000
    block = "".join(LINE % i for i in range(block_lines - 1))
    block += json.dumps({"level": "error", "event": NEEDLE}) + "\n"
    data = block.encode()
    written = 0
    with open(path, "wb") as fh:
        while written < target:
            fh.write(data)
            written += len(data)
    return written


WORKER = Path(__file__).with_name("work_logs.py")


def _wall(cmd: list[str]) -> float:
    """Seconds for ``cmd`` with its output read through a pipe (GNU grep stops at the
    first match when its output is /dev/null: that would not be a count)."""
    started = time.perf_counter()
    subprocess.run(cmd, check=False, capture_output=True)
    return time.perf_counter() - started


def _median_of(cmd: list[str], times: int = 5) -> float:
    """A system tool's time: the median of a few runs (as ours: a median of calls)."""
    return sorted(_wall(cmd) for _ in range(times))[times // 2]


def bench_tail(root: Path, sizes: list[int], base: Path, rounds: int, calls: int) -> bool:
    met = True
    for mib in sizes:
        path = root / "tail.log"
        generate(path, mib)
        load = ab.load_average()
        series = ab.alternate(
            {
                "after (this tree)": lambda: ab.worker(
                    ab.ROOT, WORKER, ["tail", str(root), str(calls)])["seconds"],
                "before (baseline)": lambda: ab.worker(
                    base, WORKER, ["tail", str(root), str(calls)])["seconds"],
                "tail -n 1000": functools.partial(_median_of, ["tail", "-n", "1000", str(path)]),
            },
            rounds=rounds,
        )  # fmt: skip
        ab.report(f"tail: last 1,000 entries of a {mib} MiB log (goal < 20 ms)", series,
                  load_before=load, baseline="before (baseline)")  # fmt: skip
        median = series["after (this tree)"].median
        met = met and median < 0.020
        print(f"   [{'met' if median < 0.020 else 'NOT met':>7}] tail < 20 ms: "
              f"{median * 1000:.1f} ms")  # fmt: skip
        path.unlink()
    return met


def bench_search(root: Path, mib: int, base: Path, rounds: int) -> bool:
    path = root / "search.log"
    size = generate(path, mib)
    subprocess.run(["cat", str(path)], stdout=subprocess.DEVNULL, check=True)  # warm cache
    out = subprocess.run(["grep", "-c", NEEDLE, str(path)], capture_output=True, check=False)
    matched: list[int] = []

    def ours(tree: Path) -> float:
        got = ab.worker(tree, WORKER, ["search", str(root), NEEDLE])
        matched.append(int(got["matched"]))
        return float(got["seconds"])

    load = ab.load_average()
    series = ab.alternate(
        {"after (this tree)": lambda: ours(ab.ROOT), "before (baseline)": lambda: ours(base),
         "grep -c": lambda: _wall(["grep", "-c", NEEDLE, str(path)])},
        rounds=rounds,
    )  # fmt: skip
    ab.report(f"literal search over {mib} MiB ({size / 1e6:.0f} MB)", series, load_before=load,
              baseline="grep -c")  # fmt: skip
    grep_s = series["grep -c"].samples
    ratios = ab.Series("ratio", [g / a for g, a in zip(grep_s, series["after (this tree)"].samples,
                                                       strict=True)])  # fmt: skip
    before = ab.Series("ratio", [g / b for g, b in zip(grep_s, series["before (baseline)"].samples,
                                                       strict=True)])  # fmt: skip
    print(f"   throughput as a share of grep's (per round, median [min–max]): after "
          f"{ratios.median:.2f} [{ratios.low:.2f}–{ratios.high:.2f}], before "
          f"{before.median:.2f} [{before.low:.2f}–{before.high:.2f}]  (goal >= 0.5)")  # fmt: skip
    print(f"   matches: grep -c {out.stdout.decode().strip()}, ours {sorted(set(matched))}")
    cost = ab.worker(ab.ROOT, WORKER, ["passes", str(root), NEEDLE])
    print(f"   where the time goes (each pass alone, one run): read {cost['read'] * 1000:.0f} ms, "
          f"read+find {cost['read+find'] * 1000:.0f} ms, read+count newlines "
          f"{cost['read+count'] * 1000:.0f} ms")  # fmt: skip
    mem = ab.worker(ab.ROOT, WORKER, ["search", str(root), NEEDLE, "--memory"])
    print(f"   after: peak traced memory {mem['traced_peak'] / 1e6:.1f} MB, RSS growth "
          f"{mem['rss_growth'] / 1e6:.1f} MB (goal < 100 MB)")  # fmt: skip
    path.unlink()
    met = ratios.median >= 0.5 and mem["rss_growth"] < 100e6
    print(f"   [{'met' if met else 'NOT met':>7}] search >= 0.5x grep with < 100 MB")
    return met


def bench_health(root: Path, count: int, timeout: float, rounds: int) -> None:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from tools.harness import ServerThread

    async def ok(request: Any) -> PlainTextResponse:
        return PlainTextResponse("ok")

    async def hang(request: Any) -> PlainTextResponse:
        await asyncio.sleep(3600)
        return PlainTextResponse("never")

    app = Starlette(routes=[Route("/health", ok), Route("/hang", hang)])
    print(f"\n== deep health over {count} targets, one hanging (timeout {timeout:g} s) ==")
    with ServerThread(app, timeout_graceful_shutdown=1, log_level="critical") as server:
        targets = [
            {"name": f"t{i}", "kind": "http", "url": server.url,
             "path": "/hang" if i == 0 else "/health", "timeout": timeout}
            for i in range(count)
        ]  # fmt: skip
        file = root / "targets.json"
        file.write_text(json.dumps(targets))
        s = Settings(dev3000_targets_file=str(file), health_check_external_services=False)
        svc = HealthService(s)
        include = [str(t["name"]) for t in targets]
        totals, slowest, statuses = ab.Series("total"), ab.Series("slowest"), set()
        for _ in range(rounds):
            started = time.perf_counter()
            report = asyncio.run(svc.check("deep", include=include, use_cache=False))
            totals.samples.append(time.perf_counter() - started)
            slowest.samples.append(max(c.latency_ms for c in report.checks if c.name != "t0"))
            statuses.add(report.status)
        print(f"   {rounds} rounds; load average {ab.load_average()}")
        print(f"   total: median {totals.median * 1000:.0f} ms [{totals.low * 1000:.0f}–"
              f"{totals.high * 1000:.0f}] for one timeout of {timeout * 1000:.0f} ms (sequential "
              f"would be >= {timeout * 1000:.0f} ms + {count - 1} checks); slowest healthy "
              f"check median {slowest.median:.0f} ms; status {sorted(statuses)}")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tail-sizes", default="64,256", help="MiB, comma-separated")
    parser.add_argument("--search-size", type=int, default=256, help="MiB")
    parser.add_argument("--targets", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=1.0)
    parser.add_argument("--dir", default=None, help="where to generate files (temp dir)")
    parser.add_argument("--rounds", type=int, default=ab.MIN_ROUNDS, help="A/B rounds (>= 5)")
    parser.add_argument("--tail-calls", type=int, default=15, help="tails per worker (median)")
    parser.add_argument("--baseline", default=ab.BASELINE_COMMIT, help="git revision")
    parser.add_argument("--only", default="tail,search,health", help="rows to run")
    args = parser.parse_args(argv)
    only = set(args.only.split(","))
    root = Path(tempfile.mkdtemp(prefix="bench-servers-", dir=args.dir))
    print(f"baseline: {args.baseline[:12]}")
    try:
        with ab.baseline_tree(args.baseline) as base:
            if "tail" in only:
                sizes = [int(x) for x in args.tail_sizes.split(",") if x]
                bench_tail(root, sizes, base, args.rounds, args.tail_calls)
            if "search" in only:
                bench_search(root, args.search_size, base, args.rounds)
        if "health" in only:
            bench_health(root, args.targets, args.timeout, args.rounds)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
