"""Where timeline events come from (besides the app's own config reloads and the supervisor).

* :class:`HealthPoller` — runs the deep health check every ``HEALTH_DEEP_CHECK_INTERVAL``
  seconds and emits ``health_transition`` when the overall status or one check's status
  changes.
* :class:`BreakerWatcher` — subscribes to the resilience registry
  (``guilde_core.resilience.get_registry()``), which relays other processes' transitions
  through Redis, and emits ``circuit_transition``.
* :class:`LogFollower` — follows the log files under ``DEV3000_LOG_PATHS`` (new lines only,
  surviving rotation and truncation) and emits ``error_log`` for error lines, at most
  ``max_per_second`` per file (a notice says how many were held back).
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import importlib
import inspect
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guilde_core.config import Settings
from guilde_core.events import Severity, TimelineEvent, make_event
from guilde_core.redaction import redact_text

from .bus import EventBus

__all__ = [
    "BreakerWatcher",
    "HealthPoller",
    "LogFollower",
    "breaker_event",
    "classify_line",
    "flatten_statuses",
]

log = logging.getLogger(__name__)

_STATUSES = ("healthy", "degraded", "unhealthy")
_STATUS_SEVERITY: dict[str, Severity] = {
    "healthy": "info",
    "degraded": "warning",
    "unhealthy": "error",
}
MAX_LINE = 2000  # characters of a log line kept in an event (redaction cost is superlinear)


def _plain(report: Any) -> Any:
    dump = getattr(report, "model_dump", None)
    return dump(mode="json") if callable(dump) else report


# --- health --------------------------------------------------------------------------------
def flatten_statuses(report: Any) -> dict[str, dict[str, Any]]:
    """``{"overall": {...}, "database": {...}, "external_apis.openai": {...}}`` from a deep
    health report (seed 000 §6.2 shape, a Pydantic model or a dict)."""
    body = _plain(report)
    out: dict[str, dict[str, Any]] = {}
    if not isinstance(body, Mapping):
        return out
    if body.get("status") in _STATUSES:
        out["overall"] = dict(body)

    def walk(prefix: str, node: Any) -> None:
        if not isinstance(node, Mapping):
            return
        if node.get("status") in _STATUSES and prefix:
            out[prefix] = dict(node)
            return
        for key, value in node.items():
            walk(f"{prefix}.{key}" if prefix else str(key), value)

    walk("", body.get("checks") or {})
    return out


DeepCheck = Callable[[], Awaitable[Any]]


def default_deep_check(settings: Settings) -> DeepCheck | None:
    """The servers' deep health (engineer B's logic), when that module is present."""
    for module_name, names in (
        ("servers.health.logic", ("deep_health", "check_deep", "deep_report", "run_deep")),
    ):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            return None
        for name in names:
            function = getattr(module, name, None)
            if callable(function):
                params = inspect.signature(function).parameters
                if "settings" in params:
                    return lambda f=function: f(settings=settings)  # type: ignore[misc]
                return lambda f=function: f()  # type: ignore[misc]
    return None


class HealthPoller:
    """Deep-health every ``interval`` seconds → ``health_transition`` events."""

    def __init__(
        self,
        bus: EventBus,
        check: DeepCheck,
        *,
        interval: float = 60.0,
        timeout: float = 30.0,
    ) -> None:
        self.bus = bus
        self.check = check
        self.interval = interval
        self.timeout = timeout
        self.last: dict[str, str] = {}
        self.polls = 0
        self.failing = False
        self._task: asyncio.Task[None] | None = None

    async def poll_once(self) -> list[TimelineEvent]:
        """One deep check; the events it produced (already published)."""
        try:
            report = await asyncio.wait_for(self.check(), self.timeout)
        except Exception as exc:
            self.polls += 1
            if self.failing:
                return []
            self.failing = True
            event = make_event(
                source="health",
                kind="notice",
                severity="warning",
                subject="deep-health",
                summary=f"deep health check failed: {type(exc).__name__}",
                data={"error": redact_text(str(exc))[:500]},
            )
            self.bus.publish(event)
            return [event]
        self.polls += 1
        self.failing = False
        events: list[TimelineEvent] = []
        for name, check in flatten_statuses(report).items():
            status = str(check["status"])
            before = self.last.get(name)
            self.last[name] = status
            if before == status or (before is None and status == "healthy"):
                continue
            subject = "overall" if name == "overall" else name
            data: dict[str, Any] = {"check": name, "from": before, "to": status}
            for key in ("latency_ms", "error", "circuit_state", "type"):
                if check.get(key) is not None:
                    data[key] = check[key]
            event = make_event(
                source="health",
                kind="health_transition",
                severity=_STATUS_SEVERITY[status],
                subject=subject,
                summary=f"{subject}: {before or 'unknown'} → {status}",
                data=data,
            )
            self.bus.publish(event)
            events.append(event)
        return events

    async def run(self) -> None:
        while True:
            await self.poll_once()
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="timeline-health-poller")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None


# --- breakers ------------------------------------------------------------------------------
_BREAKER_SEVERITY: dict[str, Severity] = {"open": "error", "half-open": "warning", "closed": "info"}


def _state(value: Any) -> str:
    raw = getattr(value, "value", value)
    return str(raw).lower().replace("_", "-") if raw is not None else "unknown"


def _first(obj: Any, *names: str) -> Any:
    for name in names:
        if isinstance(obj, Mapping) and name in obj:
            return obj[name]
        if hasattr(obj, name):
            return getattr(obj, name)
    return None


def breaker_event(transition: Any) -> TimelineEvent:
    """A ``circuit_transition`` event from a resilience ``BreakerTransition``."""
    name = str(_first(transition, "name", "breaker", "service") or "breaker")
    old = _state(_first(transition, "from_state", "old_state", "previous", "old", "from_"))
    new = _state(_first(transition, "to_state", "new_state", "state", "new", "to"))
    reason = _first(transition, "reason", "cause")
    data: dict[str, Any] = {"from": old, "to": new}
    for key in ("manual", "origin", "failure_count", "failures", "retry_at"):
        value = _first(transition, key)
        if value is not None:
            data[key] = _plain(value) if not isinstance(value, str | int | float | bool) else value
    if reason:
        data["reason"] = str(reason)
    summary = f"{name}: {old} → {new}" + (f" ({reason})" if reason else "")
    return make_event(
        source="circuits",
        kind="circuit_transition",
        severity=_BREAKER_SEVERITY.get(new, "warning"),
        subject=name,
        summary=summary[:300],
        data=data,
    )


class BreakerWatcher:
    """Relays breaker transitions (this and other processes') to the timeline."""

    def __init__(self, bus: EventBus, registry: Any = None) -> None:
        self.bus = bus
        self.registry = registry
        self._unsubscribe: Callable[[], Any] | None = None
        self.relayed = 0

    def _on_transition(self, transition: Any) -> None:
        try:
            self.bus.publish(breaker_event(transition))
            self.relayed += 1
        except Exception:  # never break the breaker's caller
            log.exception("could not relay a breaker transition")

    def start(self) -> bool:
        """Subscribe; False when the resilience layer is not available."""
        registry = self.registry
        if registry is None:
            try:
                module = importlib.import_module("guilde_core.resilience")
            except ImportError:
                return False
            registry = module.get_registry()
            self.registry = registry
        unsubscribe = registry.subscribe(self._on_transition)
        self._unsubscribe = unsubscribe if callable(unsubscribe) else None
        return True

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            result = self._unsubscribe()
            if inspect.isawaitable(result):
                await result
            self._unsubscribe = None


# --- logs ----------------------------------------------------------------------------------
_LEVEL_WORDS = re.compile(r"\b(CRITICAL|FATAL|ERROR|EXCEPTION|Traceback)\b")
_CONTINUATION = ("Traceback", "During handling", "The above exception")
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(?::\s|$)")
_LEVEL_KEYS = ("level", "levelname", "severity", "log.level", "lvl")
_ERROR_LEVELS: dict[str, Severity] = {
    "error": "error",
    "err": "error",
    "exception": "error",
    "critical": "critical",
    "fatal": "critical",
    "crit": "critical",
    "emergency": "critical",
    "alert": "critical",
}


def classify_line(line: str) -> Severity | None:
    """``error``/``critical`` for an error line (JSON ``level`` field, or the words ERROR,
    CRITICAL, FATAL, Traceback), else None."""
    text = line.strip()
    if not text:
        return None
    if text.startswith("{"):
        with contextlib.suppress(ValueError):
            body = json.loads(text)
            if isinstance(body, dict):
                for key in _LEVEL_KEYS:
                    value = body.get(key)
                    if isinstance(value, str):
                        return _ERROR_LEVELS.get(value.lower())
                    if isinstance(value, int):  # numeric logging levels
                        return "critical" if value >= 50 else "error" if value >= 40 else None
                return None
    match = _LEVEL_WORDS.search(text)
    if match is None:
        return None
    return "critical" if match.group(1) in ("CRITICAL", "FATAL") else "error"


def _summary(line: str) -> str:
    text = line.strip()
    if text.startswith("{"):
        with contextlib.suppress(ValueError):
            body = json.loads(text)
            if isinstance(body, dict):
                for key in ("message", "msg", "event", "error"):
                    if isinstance(body.get(key), str):
                        return str(body[key])[:300]
    return text[:300]


@dataclass
class _Followed:
    path: Path
    inode: int
    position: int
    partial: str = ""
    window_start: float = 0.0
    in_window: int = 0
    held_back: int = 0
    pending: list[str] = field(default_factory=list)


class LogFollower:
    """Follows log files and publishes their error lines as ``error_log`` events."""

    SUFFIXES = (".log", ".jsonl", ".json", ".txt", ".out", ".err")

    def __init__(
        self,
        bus: EventBus,
        paths: Iterable[str | Path],
        *,
        exclude: Iterable[Path] = (),
        interval: float = 0.5,
        max_per_second: int = 20,
    ) -> None:
        self.bus = bus
        self.paths = [str(p) for p in paths]
        self.exclude = [Path(p).resolve() for p in exclude]
        self.interval = interval
        self.max_per_second = max_per_second
        self._files: dict[Path, _Followed] = {}
        self._task: asyncio.Task[None] | None = None
        self._primed = False
        self.emitted = 0

    def _excluded(self, path: Path) -> bool:
        resolved = path.resolve()
        return any(resolved == ex or ex in resolved.parents for ex in self.exclude)

    def discover(self) -> list[Path]:
        found: list[Path] = []
        for spec in self.paths:
            if glob.has_magic(spec):
                candidates = [Path(p) for p in glob.glob(spec, recursive=True)]
            else:
                root = Path(spec)
                candidates = (
                    [p for p in root.rglob("*") if p.suffix in self.SUFFIXES]
                    if root.is_dir()
                    else [root]
                )
            for path in candidates:
                if path.is_file() and not path.is_symlink() and not self._excluded(path):
                    found.append(path)
        return sorted(set(found))

    def scan(self) -> None:
        """Pick up files and read every followed file's new lines. Files present at the
        first scan are followed from their end; files that appear later from their start."""
        now = time.monotonic()
        for path in self.discover():
            if path not in self._files:
                with contextlib.suppress(OSError):
                    stat = path.stat()
                    start = stat.st_size if not self._primed else 0
                    self._files[path] = _Followed(path, stat.st_ino, start)
        self._primed = True
        for path, followed in list(self._files.items()):
            try:
                self._read(followed, now)
            except FileNotFoundError:
                del self._files[path]
            except OSError as exc:
                log.debug("log follower: %s: %s", path, exc)

    def _read(self, f: _Followed, now: float) -> None:
        stat = f.path.stat()
        if stat.st_ino != f.inode or stat.st_size < f.position:  # rotated or truncated
            f.inode, f.position, f.partial = stat.st_ino, 0, ""
        if stat.st_size == f.position:
            self._flush(f, now)
            return
        with f.path.open("rb") as handle:
            handle.seek(f.position)
            chunk = handle.read(min(stat.st_size - f.position, 4 * 2**20))
        f.position += len(chunk)
        text = f.partial + chunk.decode("utf-8", errors="replace")
        lines = text.split("\n")
        f.partial = lines.pop()[-MAX_LINE:]
        current: list[str] = []
        for line in lines:
            line = line.rstrip("\r")
            if current and (line[:1] in (" ", "\t") or line.startswith(_CONTINUATION)):
                current.append(line[:MAX_LINE])  # a traceback's continuation
                continue
            in_traceback = any(c.startswith("Traceback") for c in current)
            if in_traceback and _EXCEPTION_LINE.match(line):  # "KeyError: 'x'" ends it
                current.append(line[:MAX_LINE])
                f.pending.append("\n".join(current)[: MAX_LINE * 2])
                current = []
                continue
            if current:
                f.pending.append("\n".join(current)[: MAX_LINE * 2])
                current = []
            if classify_line(line) is not None:
                current = [line[:MAX_LINE]]
        if current:
            f.pending.append("\n".join(current)[: MAX_LINE * 2])
        self._flush(f, now)

    def _flush(self, f: _Followed, now: float) -> None:
        if now - f.window_start >= 1.0:
            if f.held_back:
                self._publish_notice(f)
            f.window_start, f.in_window = now, 0
        while f.pending:
            entry = f.pending.pop(0)
            if f.in_window >= self.max_per_second:
                f.held_back += 1 + len(f.pending)
                f.pending.clear()
                break
            f.in_window += 1
            self._publish_line(f.path, entry)

    def _publish_line(self, path: Path, entry: str) -> None:
        first = entry.split("\n", 1)[0]
        severity = classify_line(first) or "error"
        event = make_event(
            source="logs",
            kind="error_log",
            severity=severity,
            subject=path.name,
            summary=_summary(first),
            data={"path": str(path), "line": entry},
        )
        self.bus.publish(event)
        self.emitted += 1

    def _publish_notice(self, f: _Followed) -> None:
        self.bus.publish(
            make_event(
                source="logs",
                kind="notice",
                severity="warning",
                subject=f.path.name,
                summary=f"{f.held_back} more error line(s) in {f.path.name} not shown "
                f"(over {self.max_per_second}/s)",
                data={"path": str(f.path), "held_back": f.held_back},
            )
        )
        f.held_back = 0

    async def run(self) -> None:
        while True:
            await asyncio.to_thread(self.scan)
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self.scan()  # remember where every existing file ends, synchronously
        self._task = asyncio.create_task(self.run(), name="timeline-log-follower")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
