"""The timeline event: the one shape every source of events produces."""

from __future__ import annotations

import hashlib
import itertools
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from guilde_core.correlation import get_correlation_id
from guilde_core.errors import InvalidCursorError
from guilde_core.redaction import escape_controls, redact, redact_text

__all__ = [
    "EVENT_ID_PATTERN",
    "EventKind",
    "Severity",
    "TimelineEvent",
    "check_event_id",
    "make_event",
    "shared_event_id",
]

Severity = Literal["debug", "info", "warning", "error", "critical"]
EventKind = Literal[
    "health_transition",
    "circuit_transition",
    "error_log",
    "process_start",
    "process_exit",
    "process_restart",
    "agent_run",
    "config_reload",
    "chaos",
    "dead_letter",
    "notice",
    "control_action",
    "browser_console",
    "browser_exception",
    "browser_request",
    "browser_navigation",
    "browser_screenshot",
    "browser_lifecycle",
    "alert",
    "investigation",
]

#: the shape of an event id: ``<ms>-<instance>-<seq>`` (:func:`make_event`; a bus's origin
#: id, the resume point before its first event, has its own 12-digit instance)
EVENT_ID_PATTERN = r"^[0-9]{13,}-[0-9a-f]{8,32}-[0-9]{6,}$"
_EVENT_ID = re.compile(EVENT_ID_PATTERN)

_seq = itertools.count(1)
_instance = uuid.uuid4().hex[:8]


class TimelineEvent(BaseModel):
    """``{id, ts, source, kind, severity, subject, summary, data, correlation_id?}``."""

    id: str = Field(description="Unique, time-ordered event id.")
    ts: datetime = Field(description="When the event happened (UTC).")
    source: str = Field(
        description="What produced it: health, circuits, logs, process, browser, agent, config …"
    )
    kind: EventKind
    severity: Severity = "info"
    subject: str = Field(description="What it is about: a target, a breaker, a log source …")
    summary: str = Field(description="One human-readable line.")
    data: dict[str, Any] = Field(default_factory=dict)
    correlation_id: str | None = None


def check_event_id(value: str | None, what: str = "cursor") -> str | None:
    """``value`` when it is an event id (or None); else :class:`InvalidCursorError` (400)."""
    if value is None or _EVENT_ID.match(value):
        return value
    raise InvalidCursorError(
        f"{what} must be an event id as the API hands them out "
        "(<13 digits>-<hex digits>-<6+ digits>, e.g. a page's next_cursor)"
    )


def shared_event_id(at: float, key: str) -> str:
    """The event id of something several processes may each report (a breaker transition
    every dev3000 instance learns of): made of when it happened (a time all of them agree
    on, e.g. Redis time) and ``key``, which names it; every reporter makes the same id, so a
    timeline keeps it once (``<ms>-<16 hex digits of key's hash>-000000``)."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).hexdigest()
    return f"{int(at * 1000):013d}-{digest}-{0:06d}"


def make_event(
    *,
    source: str,
    kind: EventKind,
    subject: str,
    summary: str,
    severity: Severity = "info",
    data: dict[str, Any] | None = None,
    correlation_id: str | None = None,
    ts: datetime | None = None,
    event_id: str | None = None,
) -> TimelineEvent:
    """Build a redacted event with a time-ordered id (``<ms>-<instance>-<seq>``, or
    ``event_id``: see :func:`shared_event_id`); subject and summary are single lines
    (control characters escaped)."""
    now = ts or datetime.now(UTC)
    if event_id is None:
        event_id = f"{int(time.time() * 1000):013d}-{_instance}-{next(_seq):06d}"
    else:
        check_event_id(event_id, "event id")
    return TimelineEvent(
        id=event_id,
        ts=now,
        source=source,
        kind=kind,
        severity=severity,
        # one line each: a newline in a reason or a log message cannot forge another entry
        subject=escape_controls(redact_text(subject)),
        summary=escape_controls(redact_text(summary)),
        data=redact(data or {}),
        correlation_id=correlation_id or get_correlation_id(),
    )
