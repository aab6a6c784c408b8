"""Pydantic models returned by the logs logic."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

Level = Literal["debug", "info", "warning", "error", "critical"]
LogFormat = Literal["json", "python", "uvicorn_access", "combined", "raw"]


class LogEntry(BaseModel):
    """One log record (a multi-line traceback is one entry)."""

    source: str = Field(description="Source name (path relative to its log root).")
    line: int | None = Field(None, description="1-based line number when known.")
    ts: datetime | None = Field(None, description="Timestamp (best effort for raw lines).")
    level: Level | None = None
    logger: str | None = None
    message: str
    format: LogFormat
    correlation_id: str | None = None
    fields: dict[str, Any] = Field(default_factory=dict, description="Extra structured fields.")
    context_before: list[str] = Field(default_factory=list)
    context_after: list[str] = Field(default_factory=list)
    truncated: bool = Field(False, description="The line was longer than the cap and was cut.")


class LogSource(BaseModel):
    """A readable log file."""

    name: str = Field(description="Name to pass to other tools.")
    root: str = Field(description="The configured root it lives under.")
    size_bytes: int
    modified: datetime
    rotated: bool = Field(description="A rotated generation (.1, .2, .gz …).")
    compressed: bool
    timeline: bool = Field(
        False,
        description="dev3000's own timeline file (timeline/timeline-*.jsonl): read only when "
        "named, so its copies of error lines are not counted twice.",
    )


class SourceList(BaseModel):
    sources: list[LogSource]
    roots: list[str] = Field(description="Configured roots (DEV3000_LOG_PATHS).")
    missing_roots: list[str] = Field(default_factory=list)


class TailResult(BaseModel):
    entries: list[LogEntry]
    sources: list[str]
    bytes_read: int = Field(description="Bytes read from the end of the files.")
    stopped_early: bool = False
    stop_reason: str | None = None


class SearchResult(BaseModel):
    entries: list[LogEntry]
    matched: int = Field(description="Matching lines found (may exceed entries when limited).")
    scanned_bytes: int
    scanned_sources: list[str]
    elapsed_ms: float
    stopped_early: bool = Field(description="True when the limit or time budget cut the search.")
    stop_reason: Literal["limit", "time_budget"] | None = None


class ErrorGroup(BaseModel):
    fingerprint: str = Field(description="Normalised message (numbers, ids, quoted text masked).")
    exception: str | None = Field(None, description="Exception type when a traceback is present.")
    count: int
    first_seen: datetime | None
    last_seen: datetime | None
    sources: list[str]
    sample: LogEntry


class ErrorGroupsResult(BaseModel):
    groups: list[ErrorGroup]
    errors_seen: int
    scanned_bytes: int
    stopped_early: bool = False
    stop_reason: str | None = None


class TraceResult(BaseModel):
    correlation_id: str
    entries: list[LogEntry] = Field(description="Every entry carrying the id, in time order.")
    sources: list[str]
    stopped_early: bool = False
    stop_reason: str | None = None
