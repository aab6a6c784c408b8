"""Pydantic models of the browser capture (what the MCP tools and the HTTP routes return)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = [
    "ActionResult",
    "BrowserRecord",
    "BrowserStatus",
    "RecordKind",
    "RecordList",
    "ScreenshotInfo",
]

RecordKind = Literal["console", "exception", "request", "navigation", "screenshot", "lifecycle"]
Level = Literal["debug", "info", "warning", "error", "critical"]


class BrowserRecord(BaseModel):
    """One thing the watched page did; redacted before it is stored."""

    id: str = Field(description="Time-ordered id (the timeline event's id).")
    ts: datetime
    kind: RecordKind
    level: Level
    message: str = Field(description="One line (console text, exception, request …).")
    url: str | None = Field(None, description="Page or request URL, without query values.")
    correlation_id: str | None = Field(
        None, description="X-Request-ID / trace id the capture added to a backend request."
    )
    data: dict[str, Any] = Field(default_factory=dict)


class RecordList(BaseModel):
    """Recent records, oldest first."""

    records: list[BrowserRecord]
    count: int
    dropped: int = Field(description="Records that left the bounded buffer since start.")
    url: str | None = Field(description="The watched page.")


class ScreenshotInfo(BaseModel):
    """A screenshot kept in memory (the PNG is served separately)."""

    id: str
    ts: datetime
    reason: str
    url: str | None
    bytes: int
    correlation_id: str | None = None
    path: str = Field(description="HTTP path of the PNG on dev3000.")


class BrowserStatus(BaseModel):
    """The capture's state."""

    url: str | None = Field(description="The watched page (None: no capture runs).")
    state: Literal["off", "starting", "running", "restarting", "stopped", "failed"]
    page_url: str | None = Field(None, description="Where the page is now.")
    title: str | None = None
    browser_version: str | None = None
    launches: int = Field(0, description="Browser launches since start (1 + restarts).")
    crashes: int = Field(0, description="Page crashes and browser disconnects seen.")
    last_error: str | None = None
    records: int = 0
    dropped: int = 0
    screenshots: int = 0
    correlate_origins: list[str] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict, description="Records by kind.")


class ActionResult(BaseModel):
    """Outcome of a page action (a control action)."""

    action: str
    ok: bool
    page_url: str | None
    title: str | None = None
    detail: str | None = None
    reason: str
    key_id: str
