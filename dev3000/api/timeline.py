"""``GET /api/v1/timeline``: buffered timeline events, newest first, filtered and paged."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from dev3000.api.state import StateDep
from dev3000.timeline.filters import parse_filter
from guilde_core.events import check_event_id
from guilde_core.http.auth import ReadKey
from guilde_core.http.problems import PROBLEM_RESPONSES

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["timeline"], responses=PROBLEM_RESPONSES)

_EXAMPLE = {
    "items": [
        {
            "id": "1769077800000-3f2a9c1b-000042",
            "ts": "2026-01-22T10:30:00Z",
            "source": "circuits",
            "kind": "circuit_transition",
            "severity": "warning",
            "subject": "openai",
            "summary": "openai closed → open after 3 failures",
            "data": {"from": "closed", "to": "open"},
            "correlation_id": None,
        }
    ],
    "next_cursor": None,
    "buffered": 1,
    "buffer_size": 1000,
}


@router.get(
    "/timeline",
    summary="Timeline events (newest first) with filters and cursor pagination",
    responses={200: {"content": {"application/json": {"example": _EXAMPLE}}}},
)
async def timeline(
    *,
    kinds: Annotated[
        str | None, Query(description="Comma-separated kinds, e.g. error_log,chaos")
    ] = None,
    severity: Annotated[
        str | None, Query(description="Minimum severity: debug|info|warning|error|critical")
    ] = None,
    sources: Annotated[str | None, Query(description="Comma-separated sources")] = None,
    subject: Annotated[
        str | None, Query(max_length=200, description="Substring of the subject")
    ] = None,
    since: Annotated[datetime | None, Query(description="Events at or after this time")] = None,
    until: Annotated[datetime | None, Query(description="Events before this time")] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Page size")] = 50,
    before: Annotated[
        str | None,
        Query(
            max_length=100,
            description="Cursor: the previous page's next_cursor (an event id "
            "<13 digits>-<hex>-<6+ digits>; anything else: 400)",
        ),
    ] = None,
    after: Annotated[
        str | None,
        Query(max_length=100, description="Only events newer than this event id (else 400)"),
    ] = None,
    state: StateDep,
    _: ReadKey,
) -> dict[str, Any]:
    flt = parse_filter(
        {
            "kinds": kinds,
            "severity": severity,
            "sources": sources,
            "subject": subject,
            "since": since,
            "until": until,
        }
    )
    page = state.bus.query(
        flt,
        limit=limit,
        before=check_event_id(before, "before"),
        after=check_event_id(after, "after"),
    )
    return page.model_dump(mode="json")
