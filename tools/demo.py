"""``dev3000 demo``: the fake LLM upstream, the sandbox and ``dev3000 serve`` pointed at
them on loopback, light traffic, and what to try next. Ctrl-C / SIGTERM stops everything.

The stack is a list of :class:`Component` specs started in order, each a child process in
its own process group (:class:`tools.harness.ManagedProcess`), stopped in reverse order.
Each comes from a :data:`ComponentFactory` ``(options, started) -> Component | None`` that
sees the components already started (by name: ``"fakellm"``, ``"sandbox"`` with their
``url``, plus ``options.logs_dir`` and ``options.token_file``); :func:`default_components`
lists the built-in ones and ``run_demo(extra=...)`` adds more after them.

When everything answers, the demo prints the hints and one machine-readable line::

    DEMO READY {"fakellm": "http://127.0.0.1:…", "sandbox": "http://…", "logs_dir": "…",
                "token_file": "…", "pids": {...}}
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from servers.browser.capture import find_chromium
from tools.harness import ManagedProcess, free_port, wait_for_http

__all__ = [
    "Component",
    "ComponentFactory",
    "DemoOptions",
    "StartedComponent",
    "default_components",
    "dev3000_component",
    "run_demo",
]

READY_PREFIX = "DEMO READY "


@dataclass
class DemoOptions:
    logs_dir: Path | None = None
    sandbox_port: int | None = None
    fakellm_port: int | None = None
    database_url: str | None = None
    redis_url: str | None = None
    traffic: bool = True
    duration: float | None = None  # stop by itself after this many seconds
    keep_logs: bool = False
    token_file: Path = field(default_factory=lambda: Path())
    dev3000: bool = True  # start dev3000 serve pointed at the stack


@dataclass
class Component:
    """How to start one part of the demo and how to know it is up."""

    name: str
    argv: list[str]
    url: str
    health_path: str
    env: dict[str, str] = field(default_factory=dict)
    hints: list[str] = field(default_factory=list)
    startup_timeout: float = 60.0


@dataclass
class StartedComponent:
    spec: Component
    process: ManagedProcess

    @property
    def url(self) -> str:
        return self.spec.url


ComponentFactory = Callable[[DemoOptions, dict[str, StartedComponent]], Component | None]


def _fakellm(options: DemoOptions, started: dict[str, StartedComponent]) -> Component:
    port = options.fakellm_port or free_port()
    return Component(
        name="fakellm",
        argv=[sys.executable, "-m", "tools.fakellm", "--port", str(port)],
        url=f"http://127.0.0.1:{port}",
        health_path="/healthz",
        hints=[
            "fake LLM providers: OpenAI base_url {url}/v1, Anthropic base_url {url}; "
            "faults: POST {url}/_control/faults"
        ],
    )


def _sandbox(options: DemoOptions, started: dict[str, StartedComponent]) -> Component:
    port = options.sandbox_port or free_port()
    assert options.logs_dir is not None
    env = {
        "SANDBOX_LOGS_DIR": str(options.logs_dir),
        "SANDBOX_CHAOS_TOKEN_FILE": str(options.token_file),
        "SANDBOX_LLM_BASE_URL": started["fakellm"].url + "/v1",
    }
    if options.database_url:
        env["SANDBOX_DATABASE_URL"] = options.database_url
    if options.redis_url:
        env["SANDBOX_REDIS_URL"] = options.redis_url
    return Component(
        name="sandbox",
        argv=[sys.executable, "-m", "tools.sandbox", "--port", str(port)],
        url=f"http://127.0.0.1:{port}",
        health_path="/api/v1/health/live",
        env=env,
        hints=[
            "sandbox: {url}/api/v1/orders · health {url}/api/v1/health/deep · "
            "metrics {url}/metrics · logs " + str(options.logs_dir / "sandbox.jsonl"),
        ],
    )


def _dev3000_port() -> int:
    """DEV3000_PORT (3001) when it is free — where the console and agent look by default."""
    wanted = int(os.environ.get("DEV3000_PORT", "3001"))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", wanted))
        except OSError:
            return free_port()
    return wanted


def dev3000_component(options: DemoOptions, started: dict[str, Any]) -> Component | None:
    """``dev3000 serve`` pointed at the sandbox (backend), the logs directory and the fake
    LLM upstream, on DEV3000_PORT when free, its browser capture watching the sandbox's
    frontend (``/app``) when a Chromium is installed; None when ``options.dev3000`` is off."""
    if not options.dev3000:
        return None
    port = _dev3000_port()
    env = {
        "DEV3000_PORT": str(port),
        "DEV3000_HOST": "127.0.0.1",
        "DEV3000_BACKEND_URL": started["sandbox"].url,
        "DEV3000_LOG_PATHS": str(options.logs_dir),
        "DEV3000_LOG_LEVEL": "warning",
        "OPENAI_BASE_URL": started["fakellm"].url + "/v1",
        "ANTHROPIC_BASE_URL": started["fakellm"].url,
    }
    hints: list[str] = []
    if find_chromium(os.environ.get("DEV3000_BROWSER_EXECUTABLE")) is not None:
        # the browser capture watches the sandbox's frontend
        env["DEV3000_BROWSER_URL"] = started["sandbox"].url + "/app"
        hints.append(
            "dev3000 browser: watching " + env["DEV3000_BROWSER_URL"] + " · {url}/api/v1/browser/"
            "status · screenshots linked from {url}/timeline"
        )
    if options.logs_dir is not None:
        env["DEV3000_DATA_DIR"] = str(options.logs_dir / "dev3000-data")
    if options.redis_url:
        env["CIRCUIT_BREAKER_REDIS_URL"] = options.redis_url
    if options.database_url:
        env["DATABASE_URL"] = options.database_url
    return Component(
        name="dev3000",
        argv=[sys.executable, "-m", "guilde_diag.cli", "serve", "--port", str(port)],
        url=f"http://127.0.0.1:{port}",
        health_path="/api/v1/health/ready",
        env=env,
        hints=[
            "dev3000 API: {url}/api/v1/health/deep · {url}/api/v1/diag/status · docs {url}/docs",
            "dev3000 MCP: {url}/mcp (streamable HTTP) · {url}/sse (SSE)",
            "dev3000 stream: ws://127.0.0.1:" + str(port) + "/api/v1/diag/stream · {url}/timeline",
            *hints,
        ],
    )


def default_components() -> list[ComponentFactory]:
    """The built-in stack, in start order."""
    return [_fakellm, _sandbox, dev3000_component]


def _traffic(url: str, stop: threading.Event) -> None:
    """About two requests a second until ``stop``: create, list, get, now and then checkout."""
    with httpx.Client(base_url=url, timeout=5) as client:
        tick = 0
        while not stop.is_set():
            with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                if tick % 5 == 0:
                    order = client.post(
                        "/api/v1/orders", json={"item": "demo-widget", "quantity": 1 + tick % 12}
                    ).json()
                    if tick % 10 == 0:
                        client.post("/api/v1/checkout", json={"order_id": order["id"]})
                client.get("/api/v1/orders")
            tick += 1
            stop.wait(0.5)


def _hints(options: DemoOptions, started: dict[str, StartedComponent]) -> list[str]:
    lines = ["", "guilde-diag demo is running:"]
    for comp in started.values():
        lines += ["  " + hint.format(url=comp.url) for hint in comp.spec.hints]
    sandbox = started["sandbox"].url
    env = f"SANDBOX_CHAOS_TOKEN_FILE={options.token_file}"
    lines += [
        "",
        "What to try next:",
        "  dev3000 chaos list",
        f"  {env} dev3000 chaos inject db-latency --param delay_ms=800 --url {sandbox}",
        f"  {env} dev3000 chaos status --url {sandbox}",
        f"  {env} dev3000 chaos clear --url {sandbox}",
        f"  dev3000 chaos load --rps 20 --duration 10 --url {sandbox}",
        f"  curl {sandbox}/api/v1/health/deep",
        "  dev3000 console            # open the console (against dev3000 on :3001)",
        '  dev3000 ask "why are orders slow?"   # ask the agent',
        "",
        "Ctrl-C stops everything.",
    ]
    return lines


def run_demo(
    options: DemoOptions | None = None,
    *,
    ready_callback: Callable[[dict[str, Any]], None] | None = None,
    stop_event: threading.Event | None = None,
    out: Callable[[str], None] = print,
    extra: Sequence[ComponentFactory] = (),
) -> int:
    """Run the demo until SIGINT/SIGTERM, ``stop_event`` or ``options.duration``; 0 on a clean
    stop, 1 when a component did not come up. ``extra`` components start after the built-in
    ones."""
    opts = options or DemoOptions()
    stop = stop_event or threading.Event()
    made_dir: Path | None = None
    if opts.logs_dir is None:
        made_dir = Path(tempfile.mkdtemp(prefix="guilde-demo-"))
        opts.logs_dir = made_dir / "logs"
    opts.logs_dir.mkdir(parents=True, exist_ok=True)
    if opts.token_file == Path():
        opts.token_file = opts.logs_dir.parent / "chaos-token"
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    started: dict[str, StartedComponent] = {}
    traffic: threading.Thread | None = None
    code = 0
    try:
        for factory in [*default_components(), *extra]:
            spec = factory(opts, started)
            if spec is None:
                continue
            proc = ManagedProcess(spec.argv, env=spec.env, stderr=None).start()
            started[spec.name] = StartedComponent(spec, proc)
            out(f"starting {spec.name} on {spec.url} …")
            deadline = time.monotonic() + spec.startup_timeout
            while True:
                if stop.is_set():
                    return 0
                if not proc.alive():
                    out(f"error: {spec.name} exited during start-up")
                    return 1
                try:
                    wait_for_http(spec.url + spec.health_path, timeout=1.0, status=200)
                    break
                except TimeoutError:
                    if time.monotonic() > deadline:
                        out(f"error: {spec.name} did not answer within {spec.startup_timeout}s")
                        return 1
        if opts.traffic:
            traffic = threading.Thread(
                target=_traffic, args=(started["sandbox"].url, stop), daemon=True
            )
            traffic.start()
        for line in _hints(opts, started):
            out(line)
        info: dict[str, Any] = {
            **{name: comp.url for name, comp in started.items()},
            "logs_dir": str(opts.logs_dir),
            "token_file": str(opts.token_file),
            "pids": {name: comp.process.pid for name, comp in started.items()},
        }
        out(READY_PREFIX + json.dumps(info))
        sys.stdout.flush()
        if ready_callback is not None:
            ready_callback(info)
        ends = time.monotonic() + opts.duration if opts.duration else None
        while not stop.is_set():
            if ends is not None and time.monotonic() >= ends:
                break
            for name, comp in started.items():
                if not comp.process.alive():
                    out(f"error: {name} exited; stopping the demo")
                    code = 1
                    stop.set()
            stop.wait(0.2)
    finally:
        stop.set()
        if traffic is not None:
            traffic.join(5)
        for name, comp in reversed(started.items()):
            comp.process.stop(timeout=5)
            out(f"stopped {name}")
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if made_dir is not None and not opts.keep_logs:
            shutil.rmtree(made_dir, ignore_errors=True)
        elif opts.token_file.exists():
            with contextlib.suppress(OSError):
                os.unlink(opts.token_file)
    return code
