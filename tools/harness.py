"""Run servers on loopback for tests, benchmarks and ``dev3000 demo``.

* :func:`free_port` — an unused TCP port on 127.0.0.1.
* :class:`ServerThread` — an ASGI app under uvicorn in a background thread, on an
  ephemeral port; ``with ServerThread(app) as srv: httpx.get(srv.url + "/x")``.
* :class:`ManagedProcess` — a child process (its own process group) that is always
  stopped, children included, on exit.
* :class:`PrivateRedis` — a throw-away ``redis-server`` on its own port that a test may
  stop and restart (the machine's shared Redis on :6379 is never stopped).
* :func:`wait_until` / :func:`wait_for_http` — poll a condition instead of sleeping.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
import uvicorn

__all__ = [
    "ManagedProcess",
    "PrivateRedis",
    "ServerThread",
    "free_port",
    "wait_for_http",
    "wait_until",
]


def free_port() -> int:
    """An unused TCP port on 127.0.0.1 (bound then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def delete_keys(redis_url: str, prefix: str) -> int:
    """Delete every key under ``prefix`` (SCAN, never FLUSH: the Redis may be shared)."""
    from guilde_core.shared_redis import probe_sync

    with probe_sync(redis_url, 10.0) as client:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        return int(client.delete(*keys)) if keys else 0


def wait_until(
    predicate: Callable[[], bool], *, timeout: float = 10.0, interval: float = 0.02
) -> None:
    """Poll ``predicate`` until it is true; raise ``TimeoutError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            if predicate():
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s")
        time.sleep(interval)


def wait_for_http(url: str, *, timeout: float = 15.0, status: int | None = None) -> None:
    """Wait until ``url`` answers (with ``status`` when given)."""

    def ok() -> bool:
        response = httpx.get(url, timeout=1.0)
        return status is None or response.status_code == status

    wait_until(ok, timeout=timeout, interval=0.05)


class ServerThread:
    """Serve an ASGI app with uvicorn in a daemon thread on 127.0.0.1."""

    def __init__(self, app: Any, *, port: int | None = None, **uvicorn_kwargs: Any) -> None:
        self.port = port or free_port()
        kwargs: dict[str, Any] = {"log_level": "warning", "lifespan": "on", "access_log": False}
        kwargs.update(uvicorn_kwargs)
        self.config = uvicorn.Config(app, host="127.0.0.1", port=self.port, **kwargs)
        self.server = uvicorn.Server(self.config)
        self._thread = threading.Thread(
            target=self.server.run, name=f"uvicorn:{self.port}", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> Self:
        self._thread.start()
        wait_until(lambda: self.server.started, timeout=timeout)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ManagedProcess:
    """A child process in its own session; stopping it kills the whole group."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        cwd: str | Path | None = None,
        stdout: Any = subprocess.DEVNULL,
        stderr: Any = subprocess.DEVNULL,
    ) -> None:
        self.argv = list(argv)
        self.env = {**os.environ, **(env or {})}
        self.cwd = cwd
        self._stdout = stdout
        self._stderr = stderr
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        self.proc = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=self.cwd,
            stdout=self._stdout,
            stderr=self._stderr,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            assert self.proc is not None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.proc.wait(5)
        # make sure no stray member of the group survives
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        return self.proc.returncode

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class PrivateRedis:
    """A disposable ``redis-server`` on a free loopback port, stoppable and restartable."""

    def __init__(self, port: int | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (.ci/run installs it)")
        self.binary = binary
        self.port = port or free_port()
        self._dir = tempfile.mkdtemp(prefix="guilde-redis-")
        self._proc: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> Self:
        argv = [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", self._dir, "--daemonize", "no",
        ]  # fmt: skip
        self._proc = ManagedProcess(argv).start()

        def ready() -> bool:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")

        wait_until(ready, timeout=timeout)
        return self

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.stop()
            self._proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
