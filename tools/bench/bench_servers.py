"""Benchmarks of the diagnostic servers' logic, each beside a system-tool baseline.

    uv run python tools/bench/bench_servers.py                      # short default (< 60 s)
    uv run python tools/bench/bench_servers.py --tail-sizes 1024,4096 --search-size 1024

1. tail: the last 1,000 entries of generated logs of each ``--tail-sizes`` (MiB), timed in
   process (``servers.logs.logic.tail``) beside ``tail -n 1000`` on the same file;
2. literal search over a ``--search-size`` MiB log vs ``grep -c`` (throughput) with the
   search's peak traced memory (tracemalloc) and RSS growth;
3. deep health over ``--targets`` HTTP targets where one hangs: total time vs one timeout.

Files are generated in a temporary directory (``--dir`` to choose where) and removed after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import psutil

from guilde_core.config import Settings
from servers.health.logic import HealthService
from servers.logs import logic as logs

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


def timed(fn: Any, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best * 1000


def bench_tail(root: Path, sizes: list[int]) -> None:
    print("\n== tail: last 1,000 entries (best of 5) ==")
    print(f"{'size':>8} {'servers.logs.tail':>18} {'tail -n 1000':>14} {'bytes read':>12}")
    for mib in sizes:
        path = root / "tail.log"
        generate(path, mib)
        s = Settings(dev3000_log_paths=[str(root)])
        result: dict[str, Any] = {}

        def ours(s: Settings = s, result: dict[str, Any] = result) -> None:
            result["r"] = asyncio.run(logs.tail(["tail.log"], lines=1000, settings=s))

        def baseline(path: Path = path) -> None:
            subprocess.run(["tail", "-n", "1000", str(path)], check=True,
                           stdout=subprocess.DEVNULL)  # fmt: skip

        ms = timed(ours)
        base = timed(baseline)
        assert len(result["r"].entries) == 1000
        print(f"{mib:>6}MB {ms:>15.1f} ms {base:>11.1f} ms {result['r'].bytes_read:>12,}")
        path.unlink()


class RssSampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process()
        self.start_rss = self.proc.memory_info().rss
        self.peak = self.start_rss
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.01):
            self.peak = max(self.peak, self.proc.memory_info().rss)


def bench_search(root: Path, mib: int) -> None:
    print(f"\n== literal search over {mib} MiB vs grep -c ==")
    path = root / "search.log"
    size = generate(path, mib)
    s = Settings(dev3000_log_paths=[str(root)])
    subprocess.run(["cat", str(path)], stdout=subprocess.DEVNULL, check=True)  # warm cache
    started = time.perf_counter()
    out = subprocess.run(["grep", "-c", NEEDLE, str(path)], capture_output=True, check=False)
    grep_s = time.perf_counter() - started
    sampler = RssSampler()
    sampler.start()
    tracemalloc.start()
    started = time.perf_counter()
    r = asyncio.run(logs.search(NEEDLE, limit=10_000, time_budget=60, settings=s))
    ours_s = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    sampler.done.set()
    sampler.join()
    mb = size / 1e6
    print(f"grep -c:          {grep_s * 1000:8.0f} ms  {mb / grep_s:8.0f} MB/s  "
          f"(count {out.stdout.decode().strip()})")  # fmt: skip
    print(f"servers.logs.search {ours_s * 1000:6.0f} ms  {mb / ours_s:8.0f} MB/s  "
          f"(matched {r.matched}, stopped_early={r.stopped_early})")  # fmt: skip
    print(f"ratio: {grep_s / ours_s:.2f} of grep's throughput (goal >= 0.5)")
    print(f"peak traced memory {peak / 1e6:.1f} MB, RSS growth "
          f"{(sampler.peak - sampler.start_rss) / 1e6:.1f} MB (goal < 100 MB)")  # fmt: skip
    path.unlink()


def bench_health(root: Path, count: int, timeout: float) -> None:
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
        started = time.perf_counter()
        report = asyncio.run(svc.check("deep", include=include, use_cache=False))
        total = time.perf_counter() - started
        slowest_ok = max(c.latency_ms for c in report.checks if c.name != "t0")
        print(f"total {total * 1000:.0f} ms; one timeout {timeout * 1000:.0f} ms; sum of "
              f"timeouts if sequential >= {timeout * 1000:.0f} ms + {count - 1} checks; "
              f"slowest healthy check {slowest_ok:.0f} ms; status {report.status}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tail-sizes", default="64,256", help="MiB, comma-separated")
    parser.add_argument("--search-size", type=int, default=256, help="MiB")
    parser.add_argument("--targets", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=1.0)
    parser.add_argument("--dir", default=None, help="where to generate files (temp dir)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-servers-", dir=args.dir))
    try:
        bench_tail(root, [int(x) for x in args.tail_sizes.split(",") if x])
        bench_search(root, args.search_size)
        bench_health(root, args.targets, args.timeout)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
