"""Where timeline events come from (besides the app's own config reloads and the supervisor).

* :class:`HealthPoller` — runs the deep health check every ``HEALTH_DEEP_CHECK_INTERVAL``
  seconds and emits ``health_transition`` when the overall status or one check's status
  changes. With several instances (a ``claim``, :meth:`RedisFanout.claim`) a change every
  instance observes is reported by the first one only.
* :class:`BreakerWatcher` — subscribes to the resilience registry
  (``guilde_core.resilience.get_registry()``), which relays other processes' transitions
  through Redis, and emits ``circuit_transition``.
* :class:`LogFollower` — takes the entries of the logs server's ``follow`` (new entries of
  the files under ``DEV3000_LOG_PATHS``, rotation and tracebacks handled there) and emits
  ``error_log`` for error and critical ones, at most ``max_per_second`` per source (a
  notice says how many were held back).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guilde_core.config import Settings
from guilde_core.events import Severity, TimelineEvent, make_event
from guilde_core.redaction import redact_text
from guilde_core.resilience import BreakerRegistry, BreakerTransition, get_registry
from servers.health.logic import deep_health
from servers.logs.logic import follow as follow_logs
from servers.logs.models import LogEntry

from ._tasks import cancel_tasks
from .bus import EventBus

__all__ = [
    "BreakerWatcher",
    "HealthPoller",
    "LogFollower",
    "breaker_event",
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
    health report (a Pydantic model or a dict)."""
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


def _cause(check: Mapping[str, Any]) -> str | None:
    """The summary of a check's cause: its first reason that is not a consequence of
    another (the deep report's ``reasons``), on one line."""
    reasons = [r for r in check.get("reasons") or [] if isinstance(r, Mapping)]
    cause = next((r for r in reasons if not r.get("consequence")), None)
    if cause is None and reasons:
        cause = reasons[0]
    text = str(cause.get("summary") or cause.get("category") or "") if cause else ""
    return " ".join(text.split()) or None


DeepCheck = Callable[[], Awaitable[Any]]
#: ``claim(subject, state)``: may this instance report ``subject`` turning ``state``? (False:
#: another instance of the deployment already has)
TransitionClaim = Callable[[str, str], Awaitable[bool]]


def default_deep_check(settings: Settings) -> DeepCheck:
    """The servers' deep health report (:func:`servers.health.logic.deep_health`)."""

    async def check() -> Any:
        return await deep_health(settings=settings)

    return check


class HealthPoller:
    """Deep-health every ``interval`` seconds → ``health_transition`` events."""

    def __init__(
        self,
        bus: EventBus,
        check: DeepCheck,
        *,
        interval: float = 60.0,
        timeout: float = 30.0,
        claim: TransitionClaim | None = None,
    ) -> None:
        self.bus = bus
        self.check = check
        self.claim = claim
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
            # a change (not this instance's first look) that another instance already
            # reported is not reported again: one event per shared transition
            if before is not None and not await self._claimed(f"health:{name}", status):
                continue
            subject = "overall" if name == "overall" else name
            data: dict[str, Any] = {"check": name, "from": before, "to": status}
            for key in ("latency_ms", "error", "circuit_state", "type", "reasons"):
                if check.get(key) is not None:
                    data[key] = check[key]
            summary = f"{subject}: {before or 'unknown'} → {status}"
            why = _cause(check) if status != "healthy" else None
            if why:  # a status other than healthy says why where it is read
                summary += f" — {why}"
            event = make_event(
                source="health",
                kind="health_transition",
                severity=_STATUS_SEVERITY[status],
                subject=subject,
                summary=redact_text(summary)[:500],
                data=data,
            )
            self.bus.publish(event)
            events.append(event)
        return events

    async def _claimed(self, subject: str, status: str) -> bool:
        if self.claim is None:
            return True
        try:
            return await self.claim(subject, status)
        except Exception:  # the claim fails open: reported twice rather than never
            return True

    async def run(self) -> None:
        while True:
            await self.poll_once()
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="timeline-health-poller")

    async def stop(self) -> None:
        await cancel_tasks([self._task])
        self._task = None


# --- breakers ------------------------------------------------------------------------------
_BREAKER_SEVERITY: dict[str, Severity] = {"open": "error", "half-open": "warning", "closed": "info"}


def breaker_event(transition: BreakerTransition) -> TimelineEvent:
    """A ``circuit_transition`` event from a resilience :class:`BreakerTransition`."""
    old, new = transition.from_state.value, transition.to_state.value
    data: dict[str, Any] = {"from": old, "to": new, "manual": transition.manual}
    if transition.origin is not None:
        data["origin"] = transition.origin
    if transition.reason:
        data["reason"] = transition.reason
    reason = f" ({transition.reason})" if transition.reason else ""
    summary = redact_text(f"{transition.name}: {old} → {new}{reason}")
    return make_event(
        source="circuits",
        kind="circuit_transition",
        severity=_BREAKER_SEVERITY.get(new, "warning"),
        subject=transition.name,
        summary=summary[:300],  # cut after redaction: a cut secret would escape the patterns
        data=data,
        # with a shared store every instance relays the transition under this one id: each
        # timeline (stream, buffer, file) keeps it once
        event_id=transition.id,
    )


class BreakerWatcher:
    """Relays breaker transitions (this and other processes') to the timeline."""

    def __init__(self, bus: EventBus, registry: BreakerRegistry | None = None) -> None:
        self.bus = bus
        self.registry = registry
        self._unsubscribe: Callable[[], None] | None = None
        self.relayed = 0

    def _on_transition(self, transition: BreakerTransition) -> None:
        try:
            self.bus.publish(breaker_event(transition))
            self.relayed += 1
        except Exception:  # never break the breaker's caller
            log.exception("could not relay a breaker transition")

    def start(self) -> None:
        """Subscribe to ``registry`` (default: the process's, :func:`get_registry`)."""
        if self.registry is None:
            self.registry = get_registry()
        self._unsubscribe = self.registry.subscribe(self._on_transition)

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None


# --- logs ----------------------------------------------------------------------------------
MAX_MESSAGE = 1500  # characters of a log entry kept in an event (redaction cost grows fast)

LogFollow = Callable[..., AsyncIterator[LogEntry]]


@dataclass
class _Window:
    start: float = 0.0
    count: int = 0
    held_back: int = 0


class LogFollower:
    """Publishes the error entries the logs server's ``follow`` sees as ``error_log``
    events: at most ``max_per_second`` per source, then one notice of how many were held
    back; files under ``exclude`` (the timeline's own files) are ignored."""

    def __init__(
        self,
        bus: EventBus,
        settings: Settings,
        *,
        exclude: Iterable[Path] = (),
        interval: float = 0.5,
        max_per_second: int = 20,
        follow: LogFollow | None = None,
    ) -> None:
        self.bus = bus
        self.settings = settings
        self.exclude = [Path(p).resolve() for p in exclude]
        self.interval = interval
        self.max_per_second = max_per_second
        self.follow = follow or follow_logs
        self._windows: dict[str, _Window] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.emitted = 0

    def _excluded(self, source: str) -> bool:
        for root in self.settings.dev3000_log_paths:
            path = (Path(root) / source).resolve()
            if any(path == ex or ex in path.parents for ex in self.exclude):
                return True
        return False

    def handle(self, entry: LogEntry, now: float | None = None) -> None:
        """One entry from ``follow``: publish it when it is an error (within the cap)."""
        level = entry.level
        if level not in ("error", "critical") and "Traceback (most recent call last)" in (
            entry.message
        ):
            level = "error"  # a traceback (joined to whatever line came before it)
        if level not in ("error", "critical"):
            return
        source = entry.source
        if self._excluded(source):
            return
        now = time.monotonic() if now is None else now
        window = self._windows.setdefault(source, _Window(start=now))
        if now - window.start >= 1.0:
            self._flush(source, window)
            window.start, window.count = now, 0
        if window.count >= self.max_per_second:
            window.held_back += 1
            return
        window.count += 1
        message = entry.message[:MAX_MESSAGE]
        data: dict[str, Any] = {"source": source, "message": message}
        if entry.line is not None:
            data["line"] = entry.line
        if entry.logger is not None:
            data["logger"] = entry.logger
        data["format"] = entry.format
        if entry.ts is not None:
            data["logged_at"] = entry.ts.isoformat()
        self.bus.publish(
            make_event(
                source="logs",
                kind="error_log",
                severity=level,
                subject=source,
                summary=(message.splitlines() or [""])[0][:300],
                data=data,
                correlation_id=entry.correlation_id,
            )
        )
        self.emitted += 1

    def _flush(self, source: str, window: _Window) -> None:
        if not window.held_back:
            return
        self.bus.publish(
            make_event(
                source="logs",
                kind="notice",
                severity="warning",
                subject=source,
                summary=f"{window.held_back} more error entr(y/ies) in {source} not shown "
                f"(over {self.max_per_second}/s)",
                data={"source": source, "held_back": window.held_back},
            )
        )
        window.held_back = 0

    def flush_all(self, now: float | None = None) -> None:
        """Publish the held-back notices of every window that has ended."""
        now = time.monotonic() if now is None else now
        for source, window in self._windows.items():
            if now - window.start >= 1.0:
                self._flush(source, window)

    async def _follow_loop(self) -> None:
        async for entry in self.follow(settings=self.settings, poll_interval=self.interval):
            self.handle(entry)

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.flush_all()

    def start(self) -> None:
        """Start following."""
        self._tasks = [
            asyncio.create_task(self._follow_loop(), name="timeline-log-follower"),
            asyncio.create_task(self._flush_loop(), name="timeline-log-notices"),
        ]

    async def stop(self) -> None:
        await cancel_tasks(self._tasks)
        self._tasks = []
