"""Supervising a dev server: ``dev3000 serve --run "uvicorn app:app"``.

A :class:`Supervisor` runs one command (no shell; split like a shell would) in its own
process group, writes its stdout and stderr as JSON-line entries with a level
(:mod:`dev3000.process_output`) into ``<logs dir>/<name>.log`` (so the logs tools, error
groups and the timeline's log follower read it as a log source), and records
``process_start``, ``process_exit`` and ``process_restart`` timeline events.
:meth:`Supervisor.restart` restarts it on request (a control action of the MCP tools in
:mod:`dev3000.process_tools`); the app lists its supervisors in ``state.supervisors``. When the
process exits it is restarted according to a :class:`RestartPolicy` (``on-failure`` by
default) with exponential back-off, which resets once a run has lasted ``reset_after``
seconds. Stopping sends SIGTERM to the whole group, then SIGKILL after ``stop_timeout``:
nothing is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shlex
import signal
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from dev3000.process_output import ProcessOutput
from dev3000.timeline.bus import EventBus
from dev3000.timeline.files import timeline_dir
from guilde_core.config import Settings
from guilde_core.errors import ConfigurationError, ServiceUnavailableError
from guilde_core.events import make_event
from guilde_core.redaction import redact_text

__all__ = ["RestartPolicy", "Supervisor", "logs_dir", "supervisor_lifespan"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RestartPolicy:
    """When and how fast a supervised process is restarted."""

    mode: Literal["always", "on-failure", "never"] = "on-failure"
    initial_backoff: float = 0.5
    max_backoff: float = 30.0
    multiplier: float = 2.0
    max_restarts: int | None = None  # None: no limit
    reset_after: float = 30.0  # a run this long resets the back-off

    def should_restart(self, returncode: int, restarts: int) -> bool:
        if self.mode == "never" or (
            self.max_restarts is not None and restarts >= self.max_restarts
        ):
            return False
        return self.mode == "always" or returncode != 0


def logs_dir(settings: Settings) -> Path:
    """Where captured output goes: the logs directory that holds ``timeline/``."""
    return timeline_dir(settings).parent


def _describe_exit(returncode: int) -> str:
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-returncode).name}"
        return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


class Supervisor:
    """Runs and restarts one command, capturing its output (see the module doc)."""

    def __init__(
        self,
        command: str | Sequence[str],
        *,
        bus: EventBus,
        log_dir: Path,
        name: str | None = None,
        policy: RestartPolicy | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        stop_timeout: float = 5.0,
        max_log_bytes: int = 10 * 2**20,
    ) -> None:
        try:
            self.argv = shlex.split(command) if isinstance(command, str) else list(command)
        except ValueError as exc:
            raise ConfigurationError(f"--run {command!r}: {exc}") from None
        if not self.argv:
            raise ConfigurationError("--run needs a command")
        self.name = name or re.sub(r"[^A-Za-z0-9_.-]", "_", Path(self.argv[0]).name) or "process"
        self.bus = bus
        self.policy = policy or RestartPolicy()
        self.env = {**os.environ, **(env or {})}
        self.cwd = cwd
        self.stop_timeout = stop_timeout
        self.max_log_bytes = max_log_bytes
        self.log_path = log_dir / f"{self.name}.log"
        self.output = ProcessOutput(self.log_path, self.name, max_bytes=max_log_bytes)
        self.process: asyncio.subprocess.Process | None = None
        self.restarts = 0
        self.runs = 0
        self.last_exit: int | None = None
        self._stopping = False
        self._restart_requested = False
        self._task: asyncio.Task[None] | None = None
        self.finished = asyncio.Event()
        self._launched = asyncio.Event()  # set when a run's process has started

    @property
    def command(self) -> str:
        return redact_text(shlex.join(self.argv))

    @property
    def stopping(self) -> bool:
        return self._stopping

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    def status(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "command": self.command,
            "pid": self.process.pid if self.running and self.process else None,
            "running": self.running,
            "runs": self.runs,
            "restarts": self.restarts,
            "last_exit": self.last_exit,
            "log": str(self.log_path),
        }

    # --- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.finished.clear()
        self._task = asyncio.create_task(self._run(), name=f"supervise:{self.name}")

    async def restart(self, timeout: float = 10.0) -> dict[str, Any]:  # noqa: ASYNC109
        """Stop the running process (SIGTERM to its group) and start it again at once, or
        start it again if it had ended; returns :meth:`status` once the new run started."""
        if self._stopping:
            raise ServiceUnavailableError(f"{self.name} is being stopped with dev3000")
        self._launched.clear()
        if self._task is None or self._task.done():
            self.start()
        else:
            self._restart_requested = True
            await self._terminate()
        try:
            await asyncio.wait_for(self._launched.wait(), timeout)
        except TimeoutError:
            raise ServiceUnavailableError(
                f"{self.name} did not start again within {timeout}s"
            ) from None
        return self.status()

    async def stop(self) -> None:
        """SIGTERM to the process group, SIGKILL after ``stop_timeout``; no restart."""
        self._stopping = True
        await self._terminate()
        task = self._task
        if task is not None:
            # let the loop record the exit; cancel it only if it hangs
            with contextlib.suppress(TimeoutError, asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(task), 6)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            self._task = None
        self._close_log()
        self.finished.set()

    async def _terminate(self) -> None:
        proc = self.process
        if proc is None:
            return
        if proc.returncode is None:
            self._signal_group(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), self.stop_timeout)
            except TimeoutError:
                self._signal_group(proc.pid, signal.SIGKILL)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(proc.wait(), 5)
        self._signal_group(proc.pid, signal.SIGKILL)  # stray members of the group

    @staticmethod
    def _signal_group(pid: int, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)

    # --- the loop ------------------------------------------------------------------------
    async def _run(self) -> None:
        backoff = self.policy.initial_backoff
        try:
            while not self._stopping:
                started = time.monotonic()
                try:
                    returncode = await self._run_once()
                except OSError as exc:  # the command cannot be started at all
                    self._publish(
                        "process_exit",
                        "error",
                        f"{self.name} could not start: {exc.strerror or exc}",
                        {"error": str(exc), "returncode": None},
                    )
                    return
                if self.stopping:  # set by stop() while we waited
                    return
                if self._restart_requested:  # restart(): at once, no back-off
                    self._restart_requested = False
                    self._publish(
                        "process_restart",
                        "info",
                        f"{self.name} restarting on request",
                        {"restart": self.restarts, "delay_seconds": 0, "requested": True},
                    )
                    continue
                uptime = time.monotonic() - started
                if uptime >= self.policy.reset_after:
                    backoff = self.policy.initial_backoff
                if not self.policy.should_restart(returncode, self.restarts):
                    return
                self.restarts += 1
                self._publish(
                    "process_restart",
                    "warning",
                    f"{self.name} restarting in {backoff:.2f}s (restart {self.restarts})",
                    {"restart": self.restarts, "delay_seconds": round(backoff, 3)},
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * self.policy.multiplier, self.policy.max_backoff)
        finally:
            self.finished.set()

    async def _run_once(self) -> int:
        proc = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.env,
            cwd=self.cwd,
            start_new_session=True,
        )
        self.process = proc
        self.runs += 1
        self._launched.set()
        started = time.monotonic()
        self._publish(
            "process_start",
            "info",
            f"{self.name} started (pid {proc.pid})",
            {"pid": proc.pid, "run": self.runs},
        )
        assert proc.stdout is not None
        assert proc.stderr is not None
        copying = asyncio.gather(
            self._copy(proc.stdout, "stdout"), self._copy(proc.stderr, "stderr")
        )
        returncode = await proc.wait()
        self.last_exit = returncode
        self._signal_group(proc.pid, signal.SIGKILL)  # children it left behind
        try:
            await asyncio.wait_for(copying, 5)  # what is still in the pipes
        except TimeoutError:
            log.warning("%s: output still open after exit; stopped copying", self.name)
        self.output.flush()
        failed = returncode != 0 and not self._stopping and not self._restart_requested
        note = " (stopped by dev3000)" if self._stopping else ""
        note = note or (" (restart requested)" if self._restart_requested else "")
        self._publish(
            "process_exit",
            "error" if failed else "info",
            f"{self.name} exited: {_describe_exit(returncode)}{note}",
            {
                "pid": proc.pid,
                "returncode": returncode,
                "uptime_seconds": round(time.monotonic() - started, 3),
                "stopped": self._stopping,
            },
        )
        return returncode

    async def _copy(self, stream: asyncio.StreamReader, name: str) -> None:
        while True:
            try:
                # a quiet stream flushes the entry that waited for continuation lines
                line = await asyncio.wait_for(stream.readline(), 0.25)
            except TimeoutError:
                self.output.flush(name)
                continue
            except ValueError:  # a line longer than the reader's limit: take what is there
                line = await stream.read(2**16)
            if not line:
                self.output.flush(name)
                return
            self.output.feed(line, name)

    def _close_log(self) -> None:
        self.output.close()

    def _publish(self, kind: Any, severity: Any, summary: str, data: dict[str, Any]) -> None:
        self.bus.publish(
            make_event(
                source="process",
                kind=kind,
                severity=severity,
                subject=self.name,
                summary=summary,
                data={"command": self.command, "log": str(self.log_path), **data},
            )
        )


def _unique_names(commands: Sequence[str]) -> list[str | None]:
    seen: dict[str, int] = {}
    names: list[str | None] = []
    for command in commands:
        try:
            base = Path(shlex.split(command)[0]).name if command.strip() else "process"
        except ValueError:
            base = "process"
        base = re.sub(r"[^A-Za-z0-9_.-]", "_", base) or "process"
        seen[base] = seen.get(base, 0) + 1
        names.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return names


@contextlib.asynccontextmanager
async def supervisor_lifespan(
    app: Any, commands: Sequence[str], *, policy: RestartPolicy | None = None
) -> AsyncIterator[list[Supervisor]]:
    """Run ``commands`` under supervision for the lifetime of the dev3000 app (listed in
    its state's ``supervisors``)."""
    state = app.state.dev3000
    directory = logs_dir(state.settings)
    supervisors = [
        Supervisor(command, bus=state.bus, log_dir=directory, name=name, policy=policy)
        for command, name in zip(commands, _unique_names(commands), strict=True)
    ]
    state.supervisors = supervisors
    for supervisor in supervisors:
        supervisor.start()
    try:
        yield supervisors
    finally:
        await asyncio.gather(*(s.stop() for s in supervisors), return_exceptions=True)
        state.supervisors = []
