"""Event filters shared by the stream, the REST query and the MCP timeline tool."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from guilde_core.errors import InvalidInputError
from guilde_core.events import EventKind, Severity, TimelineEvent

__all__ = [
    "KINDS",
    "SEVERITIES",
    "EventFilter",
    "parse_filter",
    "severity_rank",
]

SEVERITIES: tuple[str, ...] = get_args(Severity)
KINDS: tuple[str, ...] = get_args(EventKind)
_RANK = {name: i for i, name in enumerate(SEVERITIES)}


def severity_rank(severity: str) -> int:
    """Position of ``severity`` in debug < info < warning < error < critical."""
    return _RANK[severity]


def _split(value: object) -> object:
    if value is None:
        return None
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(",") if p.strip()]
        return parts or None
    if isinstance(value, Iterable):
        out: list[str] = []
        for item in value:
            out.extend(p.strip() for p in str(item).split(",") if p.strip())
        return out or None
    return value


class EventFilter(BaseModel):
    """Which events a subscriber wants. Empty fields match everything."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kinds: frozenset[EventKind] | None = Field(
        None, description="Only these kinds (e.g. circuit_transition,error_log)."
    )
    severity: Severity | None = Field(
        None, description="Minimum severity: debug|info|warning|error|critical."
    )
    sources: frozenset[str] | None = Field(
        None, description="Only these sources (health, circuits, logs, process, config …)."
    )
    subject: str | None = Field(None, description="Substring the subject must contain.")
    since: datetime | None = Field(None, description="Events at or after this time.")
    until: datetime | None = Field(None, description="Events before this time.")

    @field_validator("kinds", "sources", mode="before")
    @classmethod
    def _lists(cls, value: object) -> object:
        return _split(value)

    @field_validator("severity", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        if isinstance(value, str):
            return value.strip().lower() or None
        return value

    def matches(self, event: TimelineEvent) -> bool:
        if self.kinds is not None and event.kind not in self.kinds:
            return False
        if self.severity is not None and severity_rank(event.severity) < severity_rank(
            self.severity
        ):
            return False
        if self.sources is not None and event.source not in self.sources:
            return False
        if self.subject is not None and self.subject.lower() not in event.subject.lower():
            return False
        if self.since is not None and event.ts < self.since:
            return False
        return not (self.until is not None and event.ts >= self.until)

    def describe(self) -> dict[str, Any]:
        """JSON-friendly view (sorted lists) for hello/ack frames."""
        data = self.model_dump(mode="json", exclude_none=True)
        for key in ("kinds", "sources"):
            if key in data:
                data[key] = sorted(data[key])
        return data


def parse_filter(params: Mapping[str, Any]) -> EventFilter:
    """Build a filter from query parameters or a JSON message.

    Accepts ``kinds``/``kind``, ``severity``/``min_severity``, ``sources``/``source``,
    ``subject``, ``since``, ``until``; raises :class:`InvalidInputError` naming the field.
    """
    aliases = {
        "kind": "kinds",
        "min_severity": "severity",
        "source": "sources",
    }
    data: dict[str, Any] = {}
    for key, value in params.items():
        name = aliases.get(key, key)
        if name in EventFilter.model_fields and value not in (None, ""):
            data[name] = value
    try:
        return EventFilter.model_validate(data)
    except ValueError as exc:
        errors = getattr(exc, "errors", None)
        if callable(errors):
            first = errors()[0]
            field = ".".join(str(p) for p in first.get("loc", ()) if not isinstance(p, int))
            raise InvalidInputError(f"invalid filter {field}: {first.get('msg')}") from None
        raise InvalidInputError(f"invalid filter: {exc}") from None
