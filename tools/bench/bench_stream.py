"""Benchmark: the timeline stream under fan-out load, beside a bare Starlette broadcast.

Each system runs in its own server process on a free loopback port; this process opens
``--clients`` WebSocket clients (one asyncio loop, no compression), the server then
publishes ``--rate`` events per second for ``--duration`` seconds, and every client
measures each event's delivery latency (receive time minus the time the event was due,
so a server that falls behind is charged for it). Reported per system: events delivered
out of those due, gap notices, p50/p99/max latency, server RSS at start, peak and end.

Systems:

* ``dev3000``       — :class:`dev3000.timeline.stream.StreamManager`, one frame per event;
* ``dev3000-batch`` — the same with ``batch=200&linger_ms=25`` (events waiting, or
  arriving within 25 ms, share a frame);
* ``baseline``      — a bare Starlette WebSocket endpoint broadcasting each event with a
  loop of ``send_text`` to every client (no queues, no filters, no auth).

    uv run python tools/bench/bench_stream.py                  # 500 clients, 1000 ev/s, ~4 min
    uv run python tools/bench/bench_stream.py --clients 50 --rate 200 --duration 3
    uv run python tools/bench/bench_stream.py --systems dev3000-batch,baseline

The systems alternate for ``--rounds`` rounds (``tools.bench.ab``: the order flips every
round; each run is a fresh server process); the table gives each system's median over the
rounds, then the p99 latency's median, min–max and spread with the load average.

Loopback only; every server process is stopped at the end. On a 2-core machine the
clients and the server share the CPU, so the figures are a floor, not a capacity.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import re
import statistics
import sys
import time
from array import array
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools.bench import ab  # noqa: E402
from tools.harness import ManagedProcess, free_port, wait_for_http  # noqa: E402

SYSTEMS = ("dev3000", "dev3000-batch", "baseline")
_T = re.compile(rb'"t":([0-9.]+)')
_GAP = b'"type":"gap"'


# --- server side (runs in a subprocess) ------------------------------------------------------
async def _publish(publish: Any, count: Any, clients: int, rate: float, duration: float) -> None:
    """Wait for the clients, then publish ``rate`` events/s for ``duration`` s."""
    from guilde_core.events import make_event

    while count() < clients:  # noqa: ASYNC110 - polling a counter another part owns
        await asyncio.sleep(0.02)
    start = time.time()
    sent = 0
    total = int(rate * duration)
    while sent < total:
        due = min(total, int((time.time() - start) * rate) + 1)
        batch = [
            make_event(source="bench", kind="notice", subject="bench", summary="tick",
                       data={"seq": i, "t": start + i / rate})
            for i in range(sent, due)
        ]  # fmt: skip
        sent = due
        await publish(batch)
        await asyncio.sleep(0.002)


def _dev3000_app(clients: int, rate: float, duration: float) -> Any:
    from fastapi import FastAPI

    from dev3000.timeline.bus import EventBus
    from dev3000.timeline.stream import StreamConfig, StreamManager

    bus = EventBus(10_000)
    manager = StreamManager(
        bus, config=StreamConfig(queue_size=1000, heartbeat_interval=30, idle_timeout=0)
    )

    async def publish(batch: list[Any]) -> None:
        bus.publish_many(batch)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        bus.bind_loop()
        task = asyncio.create_task(
            _publish(publish, lambda: manager.client_count, clients, rate, duration)
        )
        yield
        task.cancel()

    app = FastAPI(lifespan=lifespan)
    app.include_router(manager.router())

    @app.get("/ready")
    async def ready() -> dict[str, int]:
        return {"clients": manager.client_count}

    return app


def _baseline_app(clients: int, rate: float, duration: float) -> Any:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect

    connected: set[WebSocket] = set()

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        connected.add(websocket)
        try:
            while True:
                await websocket.receive_text()
        except WebSocketDisconnect:
            pass
        finally:
            connected.discard(websocket)

    async def publish(batch: list[Any]) -> None:
        for event in batch:
            text = '{"type":"event","event":' + event.model_dump_json() + "}"
            for ws in list(connected):
                try:
                    await ws.send_text(text)
                except Exception:
                    connected.discard(ws)

    async def ready(request: Any) -> JSONResponse:
        return JSONResponse({"clients": len(connected)})

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> Any:
        task = asyncio.create_task(
            _publish(publish, lambda: len(connected), clients, rate, duration)
        )
        yield
        task.cancel()

    return Starlette(
        routes=[WebSocketRoute("/api/v1/diag/stream", endpoint), Route("/ready", ready)],
        lifespan=lifespan,
    )


def serve(system: str, port: int, clients: int, rate: float, duration: float) -> None:
    import uvicorn

    make = _baseline_app if system == "baseline" else _dev3000_app
    uvicorn.run(
        make(clients, rate, duration), host="127.0.0.1", port=port, log_level="warning",
        access_log=False, ws_ping_interval=None, ws_per_message_deflate=False,
    )  # fmt: skip


# --- client side -----------------------------------------------------------------------------
class Stats:
    def __init__(self) -> None:
        self.latencies = array("d")
        self.events = 0
        self.gaps = 0
        self.connected = 0
        self.errors = 0


async def _client(url: str, stats: Stats, stop: asyncio.Event, limit: asyncio.Semaphore) -> None:
    from websockets.asyncio.client import connect

    try:
        async with limit:  # at most a few handshakes at once
            ws = await connect(
                url, compression=None, ping_interval=None, max_queue=None, proxy=None,
                open_timeout=30, max_size=2**24,
            )  # fmt: skip
        async with ws:
            stats.connected += 1
            while not stop.is_set():
                try:
                    message = await asyncio.wait_for(ws.recv(decode=False), 0.5)
                except TimeoutError:
                    continue
                now = time.time()
                if _GAP in message:
                    stats.gaps += 1
                due = _T.findall(message)
                stats.latencies.extend([now - float(t) for t in due])
                stats.events += len(due)
    except Exception:
        stats.errors += 1


def _percentile(values: array[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run_system(system: str, clients: int, rate: float, duration: float) -> dict[str, Any]:
    port = free_port()
    argv = [sys.executable, __file__, "--serve", system, "--port", str(port),
            "--clients", str(clients), "--rate", str(rate), "--duration", str(duration)]  # fmt: skip
    with ManagedProcess(argv, cwd=ROOT, stderr=None) as server:
        wait_for_http(f"http://127.0.0.1:{port}/ready", timeout=30)
        proc = psutil.Process(server.pid)
        url = f"ws://127.0.0.1:{port}/api/v1/diag/stream"
        if system == "dev3000-batch":
            url += "?batch=200&linger_ms=25"
        stats, stop = Stats(), asyncio.Event()
        rss: list[int] = [proc.memory_info().rss]
        limit = asyncio.Semaphore(50)
        tasks = [asyncio.create_task(_client(url, stats, stop, limit)) for _ in range(clients)]
        deadline = time.monotonic() + 60
        while stats.connected + stats.errors < clients and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        started = time.monotonic()
        drain = min(3.0, 0.5 + duration)  # time for the last events to arrive
        while time.monotonic() - started < duration + drain:
            await asyncio.sleep(0.5)
            with contextlib.suppress(psutil.Error):
                rss.append(proc.memory_info().rss)
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    due = int(rate * duration) * clients
    return {
        "system": system,
        "clients": stats.connected,
        "delivered": stats.events,
        "due": due,
        "delivered_pct": 100.0 * stats.events / due if due else 0.0,
        "gaps": stats.gaps,
        "p50_ms": _percentile(stats.latencies, 0.50) * 1000,
        "p99_ms": _percentile(stats.latencies, 0.99) * 1000,
        "max_ms": max(stats.latencies, default=float("nan")) * 1000,
        "rss_start_mb": rss[0] / 2**20,
        "rss_peak_mb": max(rss) / 2**20,
        "rss_end_mb": rss[-1] / 2**20,
        "errors": stats.errors,
    }


def _print(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(
        f"\nstream fan-out: {args.clients} clients, {args.rate:g} events/s, "
        f"{args.duration:g} s, median of {args.rounds} rounds (goal: p99 ≤ 100 ms, flat memory)"
    )
    header = (f"{'system':<15}{'clients':>8}{'delivered':>12}{'%':>8}{'gaps':>7}"
              f"{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}{'RSS MB start/peak/end':>24}")  # fmt: skip
    print(header)
    print("-" * len(header))
    for r in results:
        rss = f"{r['rss_start_mb']:.0f}/{r['rss_peak_mb']:.0f}/{r['rss_end_mb']:.0f}"
        print(
            f"{r['system']:<15}{r['clients']:>8}{r['delivered']:>12}{r['delivered_pct']:>8.1f}"
            f"{r['gaps']:>7}{r['p50_ms']:>10.1f}{r['p99_ms']:>10.1f}{r['max_ms']:>10.1f}"
            f"{rss:>24}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--rate", type=float, default=1000.0, help="events per second")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of publishing")
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--json", action="store_true", help="print JSON results too")
    parser.add_argument("--rounds", type=int, default=ab.MIN_ROUNDS, help="alternating rounds")
    parser.add_argument("--serve", choices=SYSTEMS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not (1 <= args.clients <= 2000 and 0 < args.rate <= 20_000 and 0 < args.duration <= 120):
        parser.error("bounded: 1-2000 clients, rate ≤ 20000/s, duration ≤ 120 s")
    if args.serve:
        serve(args.serve, args.port, args.clients, args.rate, args.duration)
        return 0
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = set(systems) - set(SYSTEMS)
    if unknown:
        parser.error(f"unknown systems: {sorted(unknown)}")
    runs: dict[str, list[dict[str, Any]]] = {system: [] for system in systems}

    def one(system: str) -> float:
        result = asyncio.run(run_system(system, args.clients, args.rate, args.duration))
        runs[system].append(result)
        return float(result["p99_ms"]) / 1000

    load = ab.load_average()
    series = ab.alternate({system: functools.partial(one, system) for system in systems},
                          rounds=args.rounds, warmup=0)  # fmt: skip
    medians = [
        {key: (statistics.median_low(r[key] for r in runs[system])
               if key != "system" else system) for key in runs[system][0]}
        for system in systems
    ]  # fmt: skip
    _print(medians, args)
    ab.report("p99 delivery latency", series, load_before=load)
    if args.json:
        print(json.dumps(runs, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
