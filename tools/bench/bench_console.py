"""Benchmark: the Textual console — first paint, log ingestion and filtering, idle CPU.

Every figure is printed beside a baseline measured in the same run:

* **first paint** — start → first frame: a new ``python`` process running the console
  headless against a real dev3000, from spawning it to the first frame of the dashboard
  handed to the driver (interpreter start, imports, app start — what a user waits for;
  goal 1.5 s), with this interpreter's bytecode setting and with compiled bytecode (a
  temporary ``PYTHONPYCACHEPREFIX``, as an installed package has). In this process:
  construction → the dashboard's first frame and → the first health report on screen,
  beside a bare Textual ``App`` with a ``Footer``; and the import time of ``console.app``
  in a fresh interpreter.
* **log ingestion** — ``--lines`` lines fed in pages of ``--page`` (as the log tail does)
  into the Logs screen's virtualised view: the first half waiting for the app to go idle
  after each page (``pilot.pause``: dominated by Textual's 20 ms idle detection), the
  second half as fast as the event loop turns (one ``sleep(0)`` between pages, as a tail
  awaiting a ready response) until all lines are shown, with the worst event-loop lag
  meanwhile (how long a keypress would wait) — both scaled to all the lines.
  Then a regex filter, its inverse, and a page-up, each timed until the screen has
  settled. The
  baseline is Textual's own ``Log`` widget (``write_lines`` per page; a "filter" is
  ``clear`` + ``write_lines`` of the matching lines) and ``RichLog`` (``write`` per line).
* **idle CPU** — CPU seconds of the app's thread while it watches a quiet dev3000 for
  ``--idle`` seconds at the default 2 s refresh, beside the bare App idling as long.

    uv run python tools/bench/bench_console.py                 # 100,000 lines, ~30-60 s
    uv run python tools/bench/bench_console.py --lines 20000 --idle 2
    uv run python tools/bench/bench_console.py --no-richlog    # skip the slow baseline

Loopback only: dev3000 runs in a thread of this process on a free port (its CPU is not
counted in the console's idle figure, which reads the app thread's own CPU clock).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from textual.app import App, ComposeResult  # noqa: E402
from textual.screen import Screen  # noqa: E402
from textual.widgets import Footer, Log, RichLog, Static  # noqa: E402

from console.app import ConsoleApp  # noqa: E402
from console.logbuffer import LogFilter  # noqa: E402
from console.models import LogLine  # noqa: E402
from console.screens.dashboard import DashboardScreen  # noqa: E402
from console.widgets.log_view import LogView  # noqa: E402

SIZE = (120, 40)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


class BareApp(App[None]):
    """The baseline: a Textual app with a line of text and a footer."""

    def compose(self) -> ComposeResult:
        yield Static("baseline")
        yield Footer()


class LogApp(App[None]):
    """Baseline host for Textual's ``Log`` / ``RichLog``."""

    def __init__(self, widget: Log | RichLog) -> None:
        super().__init__()
        self.widget = widget

    def compose(self) -> ComposeResult:
        yield self.widget


def make_lines(count: int) -> list[LogLine]:
    lines = []
    for i in range(count):
        if i % 10 == 0:
            text = f'{{"msg": "payment timeout", "order": {i}, "request_id": "req-{i % 97}"}}'
            level = "error"
        else:
            text = f"GET /orders/{i} 200 in {i % 50}ms user={i % 1000}"
            level = "info"
        lines.append(
            LogLine(
                ts=T0 + timedelta(milliseconds=i),
                source=("orders", "payments", "gateway")[i % 3],
                level=level,
                text=text,
                correlation_id=f"req-{i % 97}",
            )
        )
    return lines


class LagProbe:
    """The worst event-loop lag (how late a 5 ms timer fires) while the block runs: how
    long a keypress would wait for the app during ingestion."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(0.005)
            self.worst = max(self.worst, time.perf_counter() - start - 0.005)

    async def __aenter__(self) -> LagProbe:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def timed(action: Callable[[], Awaitable[None]]) -> float:
    start = time.perf_counter()
    await action()
    return time.perf_counter() - start


# ------------------------------------------------------------------------ first paint


def import_time(env: dict[str, str] | None = None, module: str = "console.app") -> float:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True, env=env
    )
    return float(out.stdout.strip())


_START_CODE = """
import sys, time
if sys.argv[2] == "cli":
    import guilde_diag.cli  # what the `dev3000` command imports before `console` runs
from console.app import ConsoleApp
from console.screens.dashboard import DashboardScreen

class Probe(ConsoleApp):
    painted = False

    def _display(self, screen, renderable):
        super()._display(screen, renderable)
        if renderable is not None and isinstance(screen, DashboardScreen) and not self.painted:
            self.painted = True
            print(time.time(), flush=True)
            self.exit()

Probe(sys.argv[1]).run(headless=True, size=(120, 40))
"""


def start_to_paint(url: str, env: dict[str, str] | None = None, *, cli: bool = False) -> float:
    """Wall time from spawning ``python`` to the console's first frame of the dashboard
    (interpreter start, imports, app start); with ``cli`` the ``dev3000`` command's own
    imports (``guilde_diag.cli``) come first, as at ``dev3000 console``."""
    start = time.time()
    out = subprocess.run(
        [sys.executable, "-c", _START_CODE, url, "cli" if cli else "app"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
        env=env,
        timeout=60,
    )
    return float(out.stdout.strip().splitlines()[-1]) - start


def compiled_env() -> dict[str, str]:
    """An environment whose imports use compiled bytecode (as an installed package does),
    cached in a temporary directory; the cache is warmed by one run first."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="bench-console-pyc-")
    import_time(env)
    import_time(env, "guilde_diag.cli")
    return env


class FirstFrame:
    """Records when an app first hands a frame of ``screen_type`` to its driver."""

    def __init__(self, app: App[Any], screen_type: type[Any]) -> None:
        self.at: float | None = None
        display = app._display

        def spy(screen: Any, renderable: Any) -> None:
            display(screen, renderable)
            if self.at is None and renderable is not None and isinstance(screen, screen_type):
                self.at = time.perf_counter()

        app._display = spy  # type: ignore[method-assign]


async def first_paint(url: str) -> dict[str, float]:
    """In this process (imports done): construction → the first frame of the dashboard,
    and → the first health report on screen; the bare App to its first frame."""
    start = time.perf_counter()
    app = ConsoleApp(url)
    frame = FirstFrame(app, DashboardScreen)
    async with app.run_test(size=SIZE) as pilot:
        while frame.at is None:
            await pilot.pause(0.005)
        painted = frame.at - start
        while app.store.health is None:
            await pilot.pause(0.01)
        await pilot.pause()
        data = time.perf_counter() - start
    start = time.perf_counter()
    bare = BareApp()
    bare_frame = FirstFrame(bare, Screen)
    async with bare.run_test(size=SIZE) as pilot:
        while bare_frame.at is None:
            await pilot.pause(0.005)
        baseline = bare_frame.at - start
    return {"console_paint": painted, "console_data": data, "bare_paint": baseline}


# ------------------------------------------------------------------------ ingestion


async def console_logs(lines: list[LogLine], page: int) -> dict[str, float]:
    app = ConsoleApp("http://127.0.0.1:9", live=False, log_capacity=len(lines))
    out: dict[str, float] = {}
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        view = app.screen.query_one(LogView)

        half = len(lines) // 2

        async def shown(count: int) -> None:
            while view.virtual_size.height < count:  # the last repaint is at most 50 ms away
                await pilot.pause(0.005)

        async def ingest() -> None:
            for i in range(0, half, page):
                app.add_log_lines(lines[i : min(i + page, half)])
                await pilot.pause()
            await shown(half)

        async def paced() -> None:
            for i in range(half, len(lines), page):
                app.add_log_lines(lines[i : i + page])
                await asyncio.sleep(0)
            await shown(len(lines))
            await pilot.pause()

        out["ingest"] = await timed(ingest) * len(lines) / max(half, 1)
        async with LagProbe() as lag:
            out["paced"] = await timed(paced) * len(lines) / max(len(lines) - half, 1)
        out["lag"] = lag.worst
        assert view.virtual_size.height == len(lines)
        out["rendered_rows"] = float(view.renders)
        screen: Any = app.screen

        async def regex() -> None:
            screen.set_filter(LogFilter(text=r"timeout.*req-4\d"))
            await pilot.pause()

        out["filter"] = await timed(regex)
        out["matches"] = float(app.store.logs.view_len)

        async def inverse() -> None:
            screen.set_filter(LogFilter(text="timeout", inverse=True))
            await pilot.pause()

        out["inverse"] = await timed(inverse)

        async def page_up() -> None:
            view.focus()
            await pilot.press("pageup")

        out["pageup"] = await timed(page_up)
    return out


async def baseline_logs(lines: list[LogLine], page: int, rich: bool) -> dict[str, float]:
    texts = [f"{ln.ts:%H:%M:%S.%f} {ln.source:<12} {ln.level:<5} {ln.text}" for ln in lines]
    widget: Log | RichLog = (
        RichLog(max_lines=len(lines)) if rich else Log(max_lines=len(lines), auto_scroll=True)
    )
    app = LogApp(widget)
    out: dict[str, float] = {}
    async with app.run_test(size=SIZE) as pilot:
        half = len(texts) // 2

        def write(chunk: list[str]) -> None:
            if isinstance(widget, RichLog):
                for text in chunk:
                    widget.write(text)
            else:
                widget.write_lines(chunk)

        async def ingest() -> None:
            for i in range(0, half, page):
                write(texts[i : min(i + page, half)])
                await pilot.pause()

        async def paced() -> None:
            for i in range(half, len(texts), page):
                write(texts[i : i + page])
                await asyncio.sleep(0)
            await pilot.pause()

        out["ingest"] = await timed(ingest) * len(texts) / max(half, 1)
        async with LagProbe() as lag:
            out["paced"] = await timed(paced) * len(texts) / max(len(texts) - half, 1)
        out["lag"] = lag.worst

        async def refilter(predicate: Callable[[str], bool]) -> None:
            widget.clear()
            kept = [t for t in texts if predicate(t)]
            if isinstance(widget, RichLog):
                for text in kept:
                    widget.write(text)
            else:
                widget.write_lines(kept)
            await pilot.pause()

        import re

        pattern = re.compile(r"timeout.*req-4\d", re.IGNORECASE)
        out["filter"] = await timed(lambda: refilter(lambda t: bool(pattern.search(t))))
        out["inverse"] = await timed(lambda: refilter(lambda t: "timeout" not in t))

        async def page_up() -> None:
            widget.focus()
            await pilot.press("pageup")

        out["pageup"] = await timed(page_up)
    return out


# ------------------------------------------------------------------------ idle CPU


async def idle_cpu(url: str, seconds: float) -> dict[str, float]:
    app = ConsoleApp(url, refresh=2.0)
    async with app.run_test(size=SIZE) as pilot:
        while app.store.health is None:
            await pilot.pause(0.05)
        await pilot.pause(1.0)
        cpu0, polls0, pub0 = time.thread_time(), app.polls, app.publishes
        await asyncio.sleep(seconds)
        console = time.thread_time() - cpu0
        polls, publishes = app.polls - polls0, app.publishes - pub0
    bare = BareApp()
    async with bare.run_test(size=SIZE) as pilot:
        await pilot.pause(0.5)
        cpu0 = time.thread_time()
        await asyncio.sleep(seconds)
        baseline = time.thread_time() - cpu0
    return {
        "console": console,
        "bare": baseline,
        "polls": float(polls),
        "publishes": float(publishes),
    }


# ------------------------------------------------------------------------ main


def _fmt(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


async def run(args: argparse.Namespace) -> None:
    os.environ.setdefault("DEV3000_ENV_FILE", os.devnull)
    os.environ.setdefault("DEV3000_DATA_DIR", tempfile.mkdtemp(prefix="bench-console-"))
    os.environ.setdefault("DIAGNOSTIC_RATE_LIMIT", "100000")
    from dev3000.app import create_app
    from guilde_core.config import get_settings
    from tools.harness import ServerThread

    print(f"console benchmark: {args.lines:,} lines in pages of {args.page}, idle {args.idle}s")
    bytecode = "off" if sys.dont_write_bytecode else "on"
    compiled = compiled_env()
    print("\nimport console.app in a fresh interpreter")
    print(f"  as this interpreter runs (bytecode cache {bytecode}){_fmt(import_time())}")
    print(f"  with compiled bytecode               {_fmt(import_time(compiled))}")
    print("import guilde_diag.cli (the `dev3000` command itself, before `console` runs)")
    print(
        f"  as this interpreter runs (bytecode cache {bytecode}){_fmt(import_time(None, 'guilde_diag.cli'))}"
    )
    print(
        f"  with compiled bytecode               {_fmt(import_time(compiled, 'guilde_diag.cli'))}"
    )
    with ServerThread(create_app(get_settings(), redis_prefix="bench-console:")) as server:
        print("\nstart → first frame of the dashboard (new process, goal 1.5 s)")
        for cli in (False, True):
            for label, env in ((f"bytecode cache {bytecode}", None), ("compiled", compiled)):
                runs = sorted(start_to_paint(server.url, env, cli=cli) for _ in range(3))
                label = ("dev3000 console, " if cli else "console app, ") + label
                print(f"  {label:<36}{_fmt(runs[1])}  (median of 3; best {_fmt(runs[0]).strip()})")
        paint = await first_paint(server.url)
        print("\nfirst paint (headless, in this process, after imports)")
        print(f"  console dashboard first frame {_fmt(paint['console_paint'])}")
        print(f"  console first health on screen{_fmt(paint['console_data'])}")
        print(f"  baseline bare App first frame {_fmt(paint['bare_paint'])}")

        lines = make_lines(args.lines)
        ours = await console_logs(lines, args.page)
        log = await baseline_logs(lines, args.page, rich=False)
        rich = await baseline_logs(lines, args.page, rich=True) if args.richlog else None
        print(f"\nlogs: {args.lines:,} lines (pages of {args.page}), then filters and a page-up")
        header = f"  {'':24}{'console LogView':>18}{'textual Log':>16}"
        header += f"{'textual RichLog':>18}" if rich else ""
        print(header)
        for key, label in (
            ("ingest", "ingest, idle after each page"),
            ("paced", "ingest, loop-paced"),
            ("lag", "worst loop lag (paced)"),
            ("filter", "regex filter"),
            ("inverse", "inverse filter"),
            ("pageup", "page up"),
        ):
            row = f"  {label:<24}{_fmt(ours[key]):>18}{_fmt(log[key]):>16}"
            row += f"{_fmt(rich[key]):>18}" if rich else ""
            print(row)
        print(
            f"  console ingestion rate: {args.lines / ours['ingest']:,.0f} lines/s waiting for the "
            f"app to go idle after every page; {args.lines / ours['paced']:,.0f} lines/s when "
            "pages arrive as fast as the app takes them"
        )
        print(
            f"  console rows rendered: {ours['rendered_rows']:,.0f} "
            f"(of {args.lines:,} lines); regex matched {ours['matches']:,.0f}"
        )

        idle = await idle_cpu(server.url, args.idle)
        print(f"\nidle CPU over {args.idle:.0f} s (app thread, quiet dev3000, refresh 2 s)")
        print(
            f"  console  {idle['console']:.3f} s CPU ({100 * idle['console'] / args.idle:.1f} %)"
            f"  polls={idle['polls']:.0f} repaint-publishes={idle['publishes']:.0f}"
        )
        print(f"  bare App {idle['bare']:.3f} s CPU ({100 * idle['bare'] / args.idle:.1f} %)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--lines", type=int, default=100_000, help="log lines to ingest")
    parser.add_argument("--page", type=int, default=500, help="lines per tail page")
    parser.add_argument("--idle", type=float, default=6.0, help="seconds of idle measurement")
    parser.add_argument(
        "--no-richlog", dest="richlog", action="store_false", help="skip the RichLog baseline"
    )
    args = parser.parse_args(argv)
    if args.lines < args.page or args.page < 1 or args.idle <= 0:
        parser.error("need lines >= page >= 1 and idle > 0")
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
