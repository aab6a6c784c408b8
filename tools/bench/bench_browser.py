"""Page load with and without the browser capture, alternating, on the sandbox frontend.

    uv run python tools/bench/bench_browser.py                 # 7 rounds × 5 loads each way
    uv run python tools/bench/bench_browser.py --rounds 10 --loads 8
    uv run python tools/bench/bench_browser.py --no-correlate     # capture without the ids

The sandbox (with its frontend at ``/app``) runs in process on loopback. Two headless
Chromiums, launched the same way (the system Chromium, the capture's flags):

* **A, without capture**: a bare Playwright page;
* **B, with capture**: the page of a running :class:`~servers.browser.capture.BrowserCapture`
  (its listeners, the injected script that adds correlation ids to the page's fetches, the
  timings read after each load, the events and the log file).

Each round loads the page ``--loads`` times with A then B (B then A in every other round,
so neither always runs on a warmer machine). Two figures per load: ``load`` — the page's own
navigation timing (``loadEventEnd``), and ``ready`` — wall time from ``goto`` until the
orders view has rendered (both of its API calls, tagged under capture, answered).
Printed: medians, the spread (p10–p90 and min–max), the overhead of B over A, and the load
average before and after (a busy machine makes every figure a floor).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from guilde_core.resilience import BreakerRegistry
from servers.browser.capture import CHROMIUM_ARGS, BrowserCapture, CaptureConfig, find_chromium
from tools.harness import ServerThread
from tools.sandbox import SandboxConfig, create_app

LOAD_JS = """async () => {
  const nav = () => performance.getEntriesByType('navigation')[0];
  while (!nav().loadEventEnd) await new Promise((r) => setTimeout(r, 5));
  return nav().loadEventEnd;
}"""


async def _one_load(page: Any, url: str) -> tuple[float, float]:
    start = time.perf_counter()
    await page.goto(url, wait_until="load")
    await page.wait_for_selector("#promotions", timeout=30_000)
    ready = (time.perf_counter() - start) * 1000
    load = float(await page.evaluate(LOAD_JS))
    return load, ready


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    deciles = statistics.quantiles(ordered, n=10) if len(ordered) >= 2 else ordered * 9
    return {
        "median": round(statistics.median(ordered), 1),
        "p10": round(deciles[0], 1),
        "p90": round(deciles[-1], 1),
        "min": round(ordered[0], 1),
        "max": round(ordered[-1], 1),
    }


async def run(rounds: int, loads: int, correlate: bool = True) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    executable = find_chromium()
    if executable is None:
        raise SystemExit("no Chromium found (Debian: apt-get install chromium)")
    tmp = Path(tempfile.mkdtemp(prefix="bench-browser-"))
    sandbox = ServerThread(
        create_app(
            SandboxConfig(
                logs_dir=tmp / "logs", data_dir=tmp / "data", chaos_token=secrets.token_hex(16)
            ),
            registry=BreakerRegistry(),
        )
    ).start()
    # a new query each time: a full navigation (the same URL with a #route would not reload)
    serial = iter(range(1_000_000))

    def url() -> str:
        return f"{sandbox.url}/app?n={next(serial)}"

    samples: dict[str, dict[str, list[float]]] = {
        "without": {"load": [], "ready": []},
        "with": {"load": [], "ready": []},
    }
    events = 0

    def count(_: Any) -> None:
        nonlocal events
        events += 1

    load_before = os.getloadavg()
    capture = BrowserCapture(
        CaptureConfig(
            url=sandbox.url + "/app",
            log_dir=tmp / "logs",
            origins=(sandbox.url,),
            correlate=correlate,
        ),
        sink=count,
    )
    pw = await async_playwright().start()
    try:
        bare = await pw.chromium.launch(
            executable_path=executable, headless=True, args=list(CHROMIUM_ARGS)
        )
        context = await bare.new_context(viewport={"width": 1280, "height": 800})
        plain = await context.new_page()
        capture.start()
        await capture.wait_running(60)
        for page in (plain, capture.page):  # warm both up once
            await _one_load(page, url())
        for round_no in range(rounds):
            order = ("without", "with") if round_no % 2 == 0 else ("with", "without")
            for mode in order:
                page = plain if mode == "without" else capture.page
                for _ in range(loads):
                    load, ready = await _one_load(page, url())
                    samples[mode]["load"].append(load)
                    samples[mode]["ready"].append(ready)
        await bare.close()
    finally:
        await capture.stop()
        await pw.stop()
        sandbox.stop()
    load_after = os.getloadavg()
    result: dict[str, Any] = {
        "rounds": rounds,
        "loads_per_round": loads,
        "cpus": os.cpu_count(),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in load_after],
        "capture_events": events,
        "correlate": correlate,
    }
    for metric in ("load", "ready"):
        a = _summary(samples["without"][metric])
        b = _summary(samples["with"][metric])
        result[metric] = {
            "without": a,
            "with": b,
            "overhead_percent": round((b["median"] - a["median"]) / a["median"] * 100, 1),
        }
    return result


def _print(result: dict[str, Any]) -> None:
    print(
        f"{result['rounds']} rounds × {result['loads_per_round']} loads each way, alternating; "
        f"{result['cpus']} CPUs; load average before {result['loadavg_before']}, "
        f"after {result['loadavg_after']}; {result['capture_events']} capture events; "
        f"correlation ids {'on' if result['correlate'] else 'off'}"
    )
    print(f"{'':8} {'mode':8} {'median':>8} {'p10':>8} {'p90':>8} {'min':>8} {'max':>8}  ms")
    for metric in ("load", "ready"):
        for mode in ("without", "with"):
            s = result[metric][mode]
            print(
                f"{metric:8} {mode:8} {s['median']:8.1f} {s['p10']:8.1f} {s['p90']:8.1f} "
                f"{s['min']:8.1f} {s['max']:8.1f}"
            )
        print(f"{metric:8} overhead of the capture: {result[metric]['overhead_percent']:+.1f} %")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=7, help="A/B rounds (>= 5).")
    parser.add_argument("--loads", type=int, default=5, help="Page loads per mode and round.")
    parser.add_argument(
        "--no-correlate",
        action="store_true",
        help="Capture without adding correlation ids (DEV3000_BROWSER_CORRELATE=false).",
    )
    parser.add_argument("--json", action="store_true", help="Print the result as JSON.")
    args = parser.parse_args()
    if args.rounds < 5 or args.loads < 1:
        parser.error("--rounds must be >= 5 and --loads >= 1")
    result = asyncio.run(run(args.rounds, args.loads, correlate=not args.no_correlate))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print(result)


if __name__ == "__main__":
    main()
