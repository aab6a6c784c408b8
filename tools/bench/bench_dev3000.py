"""Benchmark: dev3000's HTTP app beside a bare baseline, alternating (``tools.bench.ab``).

1. ``/api/v1/health`` throughput and p99 at ``--connections`` concurrent keep-alive
   connections, beside a bare Starlette app with one route, both under the same uvicorn
   settings (one worker, no access log). Both servers are started once; the load runs
   against each in turn for ``--rounds`` rounds (order flipped every round) and the
   medians, min–max and spread are printed with the load average. Goal: >= 80 % of the
   bare throughput, p99 <= 10 ms. The load comes from ``wrk`` when installed (Debian
   package ``wrk``), else from an asyncio raw-socket client; either runs in its own process.
2. Idle RSS of both processes.

    uv run python tools/bench/bench_dev3000.py                   # 5 rounds x 10 s x 2
    uv run python tools/bench/bench_dev3000.py --duration 3 --connections 20

The MCP ``tools/call`` through the aggregate is ``bench_mcp.py`` (A/B with the baseline
commit and the server alone); spawn to ``/health`` is ``bench_start.py``.
Loopback only; every server process is stopped at the end. On a shared 2-core machine
load client and server compete for the CPU: compare the columns of one run, not runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools.bench import ab  # noqa: E402
from tools.harness import ManagedProcess, free_port, wait_for_http  # noqa: E402

UVICORN = {"log_level": "warning", "access_log": False, "lifespan": "on"}


# --- servers (run in child processes) ------------------------------------------------------
def _bare_app() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"status": "healthy"})

    return Starlette(routes=[Route("/api/v1/health", health)])


def serve(kind: str, port: int) -> None:
    import uvicorn

    if kind == "bare":
        app = _bare_app()
    else:
        from dev3000.app import create_app

        app = create_app()
    uvicorn.run(app, host="127.0.0.1", port=port, **UVICORN)  # type: ignore[arg-type]


@contextlib.contextmanager
def server(kind: str, env: dict[str, str], ready_path: str) -> Iterator[tuple[str, int, float]]:
    port = free_port()
    argv = [sys.executable, __file__, "--serve", kind, "--port", str(port)]
    started = time.perf_counter()
    with ManagedProcess(argv, env=env, cwd=env["BENCH_DIR"]) as proc:
        wait_for_http(f"http://127.0.0.1:{port}{ready_path}", timeout=90, status=200)
        cold = time.perf_counter() - started
        yield f"http://127.0.0.1:{port}", proc.pid, cold


# --- load ------------------------------------------------------------------------------------
def wrk(url: str, connections: int, duration: float) -> tuple[float, float]:
    """(requests/s, p99 ms) from wrk."""
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{max(1, int(duration))}s", "--latency", url],
        capture_output=True,
        text=True,
        timeout=duration + 60,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    p99 = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    return rps, p99


async def _raw_load(host: str, port: int, path: str, connections: int, duration: float) -> str:
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    latencies: list[float] = []
    deadline = time.perf_counter() + duration

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"content-length: (\d+)", head.lower()).group(1))  # type: ignore[union-attr]
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - t0)
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    p99 = latencies[int(0.99 * (len(latencies) - 1))] * 1000
    return f"{len(latencies) / elapsed} {p99}"


def load(url: str, connections: int, duration: float) -> tuple[float, float, str]:
    if shutil.which("wrk"):
        return (*wrk(url, connections, duration), "wrk")
    parts = httpx.URL(url)
    out = subprocess.run(
        [sys.executable, __file__, "--load", parts.host, str(parts.port), parts.path,
         str(connections), str(duration)],
        capture_output=True, text=True, timeout=duration + 60, check=True,
    ).stdout.split()  # fmt: skip
    return float(out[0]), float(out[1]), "asyncio raw-socket client"


def rss_mb(pid: int) -> float:
    proc = psutil.Process(pid)
    total = proc.memory_info().rss
    for child in proc.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            total += child.memory_info().rss
    return total / 1_048_576


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of HTTP load")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (>= 5)")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--load", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return 0
    if args.load:
        host, port, path, conns, dur = args.load
        print(asyncio.run(_raw_load(host, int(port), path, int(conns), float(dur))))
        return 0

    work = tempfile.mkdtemp(prefix="bench-dev3000-")
    (Path(work) / "logs").mkdir()
    (Path(work) / "logs" / "app.log").write_text('{"level": "info", "message": "x"}\n')
    env = {
        "BENCH_DIR": work,
        "DEV3000_ENV_FILE": os.devnull,
        "DEV3000_DATA_DIR": str(Path(work) / "data"),
        "DEV3000_LOG_PATHS": str(Path(work) / "logs"),
        "DIAGNOSTIC_RATE_LIMIT": "1000000",
        "DEV3000_LOG_LEVEL": "warning",
        "PYTHONPATH": str(ROOT),
    }
    rows: list[tuple[str, str, str, str]] = []
    try:
        print(f"/api/v1/health, {args.connections} connections, {args.duration:g} s per run, "
              f"{args.rounds} alternating rounds")  # fmt: skip
        with contextlib.ExitStack() as stack:
            urls: dict[str, tuple[str, int]] = {}
            for kind, ready in (("bare", "/api/v1/health"), ("dev3000", "/api/v1/health/ready")):
                url, pid, _ = stack.enter_context(server(kind, env, ready))
                urls[kind] = (url, pid)
            time.sleep(1.0)
            idle = {kind: rss_mb(pid) for kind, (_, pid) in urls.items()}
            p99s: dict[str, list[float]] = {kind: [] for kind in urls}
            client = ""

            def run(kind: str) -> float:
                nonlocal client
                rps, p99, client = load(urls[kind][0] + "/api/v1/health", args.connections,
                                        args.duration)  # fmt: skip
                p99s[kind].append(p99)
                return rps

            started = ab.load_average()
            series = ab.alternate({kind: functools.partial(run, kind) for kind in urls},
                                  rounds=args.rounds)  # fmt: skip
        ab.report(f"/api/v1/health requests/s ({client})", series, unit="/s", scale=1.0,
                  load_before=started, baseline="bare", digits=0)  # fmt: skip
        ratio = series["dev3000"].median / series["bare"].median
        p99 = {kind: statistics.median(values[-args.rounds :]) for kind, values in p99s.items()}
        rows += [
            ("health req/s (dev3000)", f"{series['dev3000'].median:,.0f}",
             f"{ratio:.0%} of bare", "goal >= 80%"),
            ("health p99 ms (bare), median", f"{p99['bare']:.2f}", "", ""),
            ("health p99 ms (dev3000), median", f"{p99['dev3000']:.2f}", "", "goal <= 10 ms"),
            ("idle RSS MB (bare / dev3000)", f"{idle['bare']:.0f} / {idle['dev3000']:.0f}", "", ""),
        ]  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)

    width = max(len(r[0]) for r in rows)
    print()
    for name, value, extra, note in rows:
        print(f"{name:<{width}}  {value:>10}  {extra:<18}  {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
