"""``GET /api/v1/logs/search``: search the configured log sources (``servers.logs``).

Literal or regex search with source, level and time filters, paged by ``limit`` and
``offset``; the search itself is bounded by a time budget and says when it stopped early.
Every line served is redacted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from dev3000.api.state import StateDep
from guilde_core.http.auth import ReadKey
from guilde_core.http.problems import PROBLEM_RESPONSES
from guilde_core.redaction import redact
from servers.common import caller_from
from servers.logs import logic

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/logs", tags=["logs"], responses=PROBLEM_RESPONSES)

_EXAMPLE = {
    "items": [
        {
            "source": "app.log",
            "line": 1042,
            "ts": "2026-01-22T10:29:55Z",
            "level": "error",
            "message": "upstream timeout after 30s",
        }
    ],
    "matched": 1,
    "stopped_early": False,
    "stop_reason": None,
    "limit": 50,
    "offset": 0,
    "next_offset": None,
}


@router.get(
    "/search",
    summary="Search log lines (literal or regex) with filters and paging",
    responses={200: {"content": {"application/json": {"example": _EXAMPLE}}}},
)
async def search(
    *,
    q: Annotated[str, Query(min_length=1, max_length=500, description="Text (or regex) to find")],
    regex: Annotated[bool, Query(description="Treat q as a regular expression")] = False,
    ignore_case: Annotated[bool, Query(description="Case-insensitive match")] = False,
    sources: Annotated[
        str | None,
        Query(
            max_length=1000,
            description="Comma-separated source names (MCP logs_sources): each a path "
            "relative to a log root — not absolute, no '..', each part at most 255 bytes "
            "(else 422)",
        ),
    ] = None,
    level: Annotated[
        Literal["debug", "info", "warning", "error", "critical"] | None,
        Query(description="Minimum level"),
    ] = None,
    since: Annotated[datetime | None, Query(description="Lines at or after this time")] = None,
    until: Annotated[datetime | None, Query(description="Lines before this time")] = None,
    context: Annotated[int, Query(ge=0, le=20, description="Lines of context")] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=9_000)] = 0,
    state: StateDep,
    principal: ReadKey,
    request: Request,
) -> dict[str, Any]:
    result = await logic.search(
        q,
        regex=regex,
        sources=[s.strip() for s in (sources or "").split(",") if s.strip()] or None,
        level=level,
        since=since,
        until=until,
        limit=offset + limit + 1,
        context=context,
        ignore_case=ignore_case,
        settings=state.settings,
        caller=caller_from(principal, request.client.host if request.client else None),
    )
    data = result.model_dump(mode="json")
    entries = data.pop("entries")
    page = entries[offset : offset + limit]
    more = len(entries) > offset + limit
    body: dict[str, Any] = redact(
        {
            "items": page,
            **data,
            "limit": limit,
            "offset": offset,
            "next_offset": offset + limit if more else None,
        }
    )
    return body
