"""``dev3000 demo``: the fake LLM upstream, the sandbox and ``dev3000 serve`` pointed at
them on loopback, light traffic, and what to try next. Ctrl-C / SIGTERM / SIGHUP stops everything.

The stack is a list of :class:`Component` specs started in order, each a child process in
its own process group (:class:`tools.harness.ManagedProcess`), stopped in reverse order.
Each comes from a :data:`ComponentFactory` ``(options, started) -> Component | None`` that
sees the components already started (by name: ``"fakellm"``, ``"sandbox"`` with their
``url``, plus ``options.logs_dir``, ``options.data_dir``, ``options.token_file`` and
``options.upstream_key``); :func:`default_components` lists the built-in ones and
``run_demo(extra=...)`` adds more after them.

What dev3000 is told about the stack comes from one function, :func:`dev3000_settings`: the
watched stack is exactly what the demo starts (the sandbox as the backend, the fake providers
it calls; no agent or frontend), its disk check watches the demo's logs and its own data
directory, and Logfire's console output is off unless asked for (``--spans``). Anything that
needs "the demo's dev3000 configuration" (the evaluation's demo setup) calls it.

On disk: ``logs_dir`` holds logs only; everything else (the sandbox's SQLite file, scratch and
runtime config, dev3000's data directory, the chaos token) lives in ``data_dir`` beside it,
which one demo at a time holds (a lock file), so concurrent demos never share a chaos token.

When everything answers, the demo prints the hints and one machine-readable line::

    DEMO READY {"fakellm": "http://127.0.0.1:…", "sandbox": "http://…", "dev3000": "http://…",
                "logs_dir": "…", "data_dir": "…", "token_file": "…", "pids": {...}}
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from guilde_core.errors import ConfigurationError
from servers.browser.capture import find_chromium
from tools.harness import ManagedProcess, free_port, wait_for_http

__all__ = [
    "DEFAULT_DEV3000_PORT",
    "Component",
    "ComponentFactory",
    "DemoOptions",
    "StartedComponent",
    "default_components",
    "dev3000_component",
    "dev3000_settings",
    "pick_dev3000_port",
    "run_demo",
]

READY_PREFIX = "DEMO READY "
#: where ``dev3000 console`` and ``dev3000 ask`` look when given no ``--url``
DEFAULT_DEV3000_PORT = 3001


@dataclass
class DemoOptions:
    logs_dir: Path | None = None
    #: non-log state: sandbox and dev3000 data, the chaos token (default: a new directory
    #: beside ``logs_dir``, removed at the end unless ``keep_logs``)
    data_dir: Path | None = None
    sandbox_port: int | None = None
    fakellm_port: int | None = None
    database_url: str | None = None
    redis_url: str | None = None
    traffic: bool = True
    duration: float | None = None  # stop by itself after this many seconds
    keep_logs: bool = False
    token_file: Path = field(default_factory=lambda: Path())
    dev3000: bool = True  # start dev3000 serve pointed at the stack
    #: dev3000's port (default DEV3000_PORT, else 3001); another free port when it is taken
    dev3000_port: int | None = None
    spans: bool = False  # Logfire's console output of dev3000's spans
    #: the one key the fake providers accept; the sandbox sends it (``upstream-bad-credential``
    #: swaps it for a revoked one, which the fake providers answer with 401)
    upstream_key: str = field(default_factory=lambda: "sk-demo-" + secrets.token_urlsafe(18))


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
    #: printed before the component starts and again under the hints (e.g. "moved port")
    warnings: list[str] = field(default_factory=list)


@dataclass
class StartedComponent:
    spec: Component
    process: ManagedProcess

    @property
    def url(self) -> str:
        return self.spec.url


ComponentFactory = Callable[[DemoOptions, dict[str, StartedComponent]], Component | None]


def _dirs(options: DemoOptions) -> tuple[Path, Path]:
    """``(logs_dir, data_dir)``, which :func:`run_demo` fills in before any factory runs."""
    if options.logs_dir is None or options.data_dir is None:
        raise ValueError("DemoOptions.logs_dir and data_dir are set by run_demo")
    return options.logs_dir, options.data_dir


def _fakellm(options: DemoOptions, started: dict[str, StartedComponent]) -> Component:
    port = options.fakellm_port or free_port()
    return Component(
        name="fakellm",
        argv=[sys.executable, "-m", "tools.fakellm", "--port", str(port)],
        url=f"http://127.0.0.1:{port}",
        health_path="/healthz",
        env={"FAKELLM_API_KEY": options.upstream_key},  # not in argv: ps shows argv
        hints=[
            "fake LLM providers: OpenAI base_url {url}/v1, Anthropic base_url {url} "
            "(they accept the demo's key only); faults: POST {url}/_control/faults"
        ],
    )


def _sandbox(options: DemoOptions, started: dict[str, StartedComponent]) -> Component:
    port = options.sandbox_port or free_port()
    logs_dir, data_dir = _dirs(options)
    env = {
        "SANDBOX_LOGS_DIR": str(logs_dir),
        "SANDBOX_DATA_DIR": str(data_dir / "sandbox"),
        "SANDBOX_CHAOS_TOKEN_FILE": str(options.token_file),
        "SANDBOX_LLM_BASE_URL": started["fakellm"].url + "/v1",
        "SANDBOX_LLM_API_KEY": options.upstream_key,
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
            "metrics {url}/metrics · logs " + str(logs_dir / "sandbox.jsonl"),
        ],
    )


def dev3000_settings(
    *,
    sandbox_url: str,
    fakellm_url: str,
    upstream_key: str,
    logs_dir: Path,
    data_dir: Path,
    spans: bool = False,
    browser: bool | None = None,
) -> dict[str, str]:
    """The settings (environment variables) of the demo's dev3000, the one place they are
    written: the watched stack is exactly what the demo runs — the sandbox as the (critical)
    backend, which reports its database, cache and LLM upstream in its own deep health; no
    agent or frontend (empty URLs: not deployed), no direct Redis, PostgreSQL, targets file
    or compose file of the surrounding environment. dev3000 serves ``logs_dir`` and keeps its
    state in ``data_dir`` (both watched by its disk check); it may call the fake providers
    with ``upstream_key``; its browser capture watches the sandbox's frontend (``/app``)
    with ``browser`` (default: when a Chromium is installed); Logfire's console output only
    with ``spans``.

    Values set here override the caller's environment and ``.env``; everything else
    (breaker tuning, API keys of dev3000 itself …) is left to them."""
    if browser is None:
        browser = find_chromium(os.environ.get("DEV3000_BROWSER_EXECUTABLE")) is not None
    return {
        "DEV3000_BACKEND_URL": sandbox_url,
        "DEV3000_AGENT_URL": "",
        "DEV3000_FRONTEND_URL": "",
        "DEV3000_TARGETS_FILE": "",
        "DEV3000_COMPOSE_FILE": "",
        "REDIS_URL": "",
        "DATABASE_URL": "",
        "DEV3000_LOG_PATHS": str(logs_dir),
        "DEV3000_DATA_DIR": str(data_dir),
        "DEV3000_BROWSER_URL": sandbox_url + "/app" if browser else "",
        "OPENAI_BASE_URL": fakellm_url + "/v1",
        "OPENAI_API_KEY": upstream_key,
        "ANTHROPIC_BASE_URL": fakellm_url,
        "ANTHROPIC_API_KEY": upstream_key,
        "LOGFIRE_CONSOLE_ENABLED": "true" if spans else "false",
    }


def _bindable(port: int) -> bool:
    """Whether ``dev3000 serve`` could bind ``port`` now. uvicorn (asyncio's create_server)
    binds with SO_REUSEADDR, so a port a previous run left in TIME_WAIT is free to it: probe
    the same way."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pick_dev3000_port(wanted: int | None = None) -> tuple[int, str | None]:
    """``wanted`` (default DEV3000_PORT, else 3001) when dev3000 can bind it, else a free port
    and the warning to print."""
    if wanted is None:
        wanted = int(os.environ.get("DEV3000_PORT") or DEFAULT_DEV3000_PORT)
    if _bindable(wanted):
        return wanted, None
    port = free_port()
    return port, (
        f"DEV3000 IS ON PORT {port}, NOT {wanted}: port {wanted} is in use (another dev3000 "
        f"or demo still running?). Pass --url http://127.0.0.1:{port} to dev3000 console "
        f"and --url http://127.0.0.1:{port}/mcp to dev3000 ask (the hints below do)."
    )


def dev3000_component(options: DemoOptions, started: dict[str, Any]) -> Component | None:
    """``dev3000 serve`` with :func:`dev3000_settings` (its browser capture watching the
    sandbox's frontend when a Chromium is installed), on DEV3000_PORT (3001) when it can bind
    it; None when ``options.dev3000`` is off."""
    if not options.dev3000:
        return None
    logs_dir, data_dir = _dirs(options)
    port, moved = pick_dev3000_port(options.dev3000_port)
    env = {
        "DEV3000_PORT": str(port),
        "DEV3000_HOST": "127.0.0.1",
        "DEV3000_LOG_LEVEL": "warning",
        **dev3000_settings(
            sandbox_url=started["sandbox"].url,
            fakellm_url=started["fakellm"].url,
            upstream_key=options.upstream_key,
            logs_dir=logs_dir,
            data_dir=data_dir / "dev3000",
            spans=options.spans,
        ),
    }
    hints: list[str] = []
    if env["DEV3000_BROWSER_URL"]:
        hints.append(
            "dev3000 browser: watching " + env["DEV3000_BROWSER_URL"] + " · {url}/api/v1/browser/"
            "status · screenshots linked from {url}/timeline"
        )
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
        warnings=[moved] if moved else [],
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


def _looked_up_port() -> int:
    """The port ``dev3000 console`` / ``dev3000 ask`` use without ``--url``."""
    try:
        return int(os.environ.get("DEV3000_PORT") or DEFAULT_DEV3000_PORT)
    except ValueError:
        return DEFAULT_DEV3000_PORT


def _hints(options: DemoOptions, started: dict[str, StartedComponent]) -> list[str]:
    lines = ["", "guilde-diag demo is running:"]
    for comp in started.values():
        lines += ["  " + hint.format(url=comp.url) for hint in comp.spec.hints]
    lines.append(f"  logs: {options.logs_dir} · state (SQLite, chaos token): {options.data_dir}")
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
    ]
    dev3000 = started.get("dev3000")
    if dev3000 is not None:
        port = int(dev3000.url.rsplit(":", 1)[1])
        if port == DEFAULT_DEV3000_PORT and _looked_up_port() == port:
            console, ask = "dev3000 console", "dev3000 ask"
        else:
            console = f"dev3000 console --url {dev3000.url}"
            ask = f"dev3000 ask --url {dev3000.url}/mcp"
        lines += [
            f"  {console}            # watch it live (dev3000 on port {port})",
            f'  {ask} "why are orders slow?"   # ask the agent',
        ]
    warnings = [w for comp in started.values() for w in comp.spec.warnings]
    lines += ["", *_loud(warnings), "Ctrl-C stops everything."]
    return lines


def _loud(warnings: list[str]) -> list[str]:
    """Warnings a person cannot miss between the other lines."""
    if not warnings:
        return []
    bar = "!" * 78
    return [bar, *(f"!! {w}" for w in warnings), bar, ""]


@contextlib.contextmanager
def _hold(data_dir: Path) -> Iterator[None]:
    """Hold ``data_dir`` for this demo (an exclusive lock file), or ``ConfigurationError``
    when another demo holds it: two demos never share a chaos token or a database."""
    data_dir.mkdir(parents=True, exist_ok=True)
    handle: IO[str] = open(data_dir / "demo.lock", "w", encoding="utf-8")  # noqa: SIM115
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigurationError(
                f"{data_dir} is in use by another running demo; give this one its own "
                "--data-dir (or leave it out)"
            ) from None
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()


def _layout(opts: DemoOptions) -> list[Path]:
    """Fill in the directories and the token file; return the ones this demo created (to
    remove at the end unless ``keep_logs``)."""
    made: list[Path] = []
    if opts.logs_dir is None:
        root = Path(tempfile.mkdtemp(prefix="guilde-demo-"))
        made.append(root)
        opts.logs_dir = root / "logs"
        if opts.data_dir is None:
            opts.data_dir = root / "data"
    opts.logs_dir.mkdir(parents=True, exist_ok=True)
    if opts.data_dir is None:  # beside the given logs directory, its own
        opts.data_dir = Path(
            tempfile.mkdtemp(prefix=f"{opts.logs_dir.name}-data-", dir=opts.logs_dir.parent)
        )
        made.append(opts.data_dir)
    if opts.token_file == Path():
        opts.token_file = opts.data_dir / "chaos-token"
    return made


def run_demo(
    options: DemoOptions | None = None,
    *,
    ready_callback: Callable[[dict[str, Any]], None] | None = None,
    stop_event: threading.Event | None = None,
    out: Callable[[str], None] = print,
    extra: Sequence[ComponentFactory] = (),
) -> int:
    """Run the demo until SIGINT/SIGTERM/SIGHUP, ``stop_event`` or ``options.duration``; 0 on a clean
    stop, 1 when a component did not come up, 2 when the data directory is another demo's.
    ``extra`` components start after the built-in ones."""
    opts = options or DemoOptions()
    made = _layout(opts)
    try:
        with _hold(opts.data_dir or Path()):
            return _run(opts, ready_callback, stop_event, out, extra)
    except ConfigurationError as exc:
        out(f"error: {exc}")
        return 2
    finally:
        if not opts.keep_logs:
            for path in made:
                shutil.rmtree(path, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.unlink(opts.token_file)


def _run(
    opts: DemoOptions,
    ready_callback: Callable[[dict[str, Any]], None] | None,
    stop_event: threading.Event | None,
    out: Callable[[str], None],
    extra: Sequence[ComponentFactory],
) -> int:
    stop = stop_event or threading.Event()
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        # SIGHUP too: a closed terminal (or tmux kill-session) must not leave the components,
        # which run in sessions of their own, behind
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    started: dict[str, StartedComponent] = {}
    traffic: threading.Thread | None = None
    code = 0
    try:
        for factory in [*default_components(), *extra]:
            spec = factory(opts, started)
            if spec is None:
                continue
            for line in _loud(spec.warnings):
                out(line)
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
            "data_dir": str(opts.data_dir),
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
        # every component stopped before a word is said: the terminal (or the `| tee` the
        # output went through) may be gone with the Ctrl-C, and a write that fails then must
        # not leave the sandbox and the fake LLM running
        for comp in reversed(started.values()):
            comp.process.stop(timeout=5)
        for name in reversed(started):
            _say(out, f"stopped {name}")
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code


def _say(out: Callable[[str], None], line: str) -> None:
    """``out(line)``, unless the output is gone (a closed pipe, a hung-up terminal)."""
    try:
        out(line)
    except OSError:
        # nothing more can be written there: later writes (the interpreter's own flush at
        # exit among them) go nowhere instead of raising again
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
