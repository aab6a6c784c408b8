"""Worker of ``bench_servers``' A/B rows: run with the project of one tree on
``PYTHONPATH`` (see ``tools.bench.ab.worker``); imports only the project's packages.

    python tools/bench/work_logs.py tail   DIR CALLS     # ms per tail of 1,000 entries
    python tools/bench/work_logs.py search DIR NEEDLE [--memory]
    python tools/bench/work_logs.py passes DIR NEEDLE   # where a literal search's time goes

Prints one JSON line. Each call is awaited inside one event loop, as a server does
(``asyncio.run`` per call would also time CPython 3.12.1's repr of the finished task's
result, which ``signal.getsignal`` formats when the runner restores SIGINT).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import threading
import time
import tracemalloc
from typing import Any

import psutil

from guilde_core.config import Settings
from servers.logs import logic


async def tail(root: str, calls: int) -> dict[str, Any]:
    s = Settings(dev3000_log_paths=[root])
    result = await logic.tail(["tail.log"], lines=1000, settings=s)  # warm up
    assert len(result.entries) == 1000
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        result = await logic.tail(["tail.log"], lines=1000, settings=s)
        times.append(time.perf_counter() - t0)
    return {"seconds": statistics.median(times), "bytes_read": result.bytes_read}


class _Rss(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process()
        self.start_rss = self.peak = self.proc.memory_info().rss
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.01):
            self.peak = max(self.peak, self.proc.memory_info().rss)


async def search(root: str, needle: str, memory: bool) -> dict[str, Any]:
    s = Settings(dev3000_log_paths=[root])
    sampler = _Rss()
    if memory:
        sampler.start()
        tracemalloc.start()
    t0 = time.perf_counter()
    r = await logic.search(needle, limit=10_000, time_budget=60, settings=s,
                           sources=["search.log"])  # fmt: skip
    seconds = time.perf_counter() - t0
    out: dict[str, Any] = {"seconds": seconds, "matched": r.matched,
                           "stopped_early": r.stopped_early}  # fmt: skip
    if memory:
        out["traced_peak"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        sampler.done.set()
        sampler.join()
        out["rss_growth"] = sampler.peak - sampler.start_rss
    return out


def passes(root: str, needle: str) -> dict[str, Any]:
    """The cost of each pass a literal search makes over ``search.log`` in 4 MiB blocks,
    alone: reading into one buffer, ``find`` of the needle, ``count`` of the newlines."""
    from servers.logs.reader import BLOCK

    path = f"{root}/search.log"
    needle_b = needle.encode()
    out: dict[str, Any] = {}
    for name in ("read", "read+find", "read+count"):
        buf = bytearray(BLOCK)
        view = memoryview(buf)
        t0 = time.perf_counter()
        with open(path, "rb", buffering=0) as fh:
            while got := fh.readinto(view):
                if name == "read+find":
                    buf.find(needle_b, 0, got)
                elif name == "read+count":
                    buf.count(b"\n", 0, got)
        out[name] = time.perf_counter() - t0
    return out


if __name__ == "__main__":
    mode, root = sys.argv[1], sys.argv[2]
    if mode == "tail":
        answer = asyncio.run(tail(root, int(sys.argv[3])))
    elif mode == "passes":
        answer = passes(root, sys.argv[3])
    else:
        answer = asyncio.run(search(root, sys.argv[3], "--memory" in sys.argv))
    print(json.dumps(answer))
