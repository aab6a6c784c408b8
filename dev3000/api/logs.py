"""``GET /api/v1/logs/search``: search the configured log sources (engineer B's logic)."""

from __future__ import annotations

import importlib
import inspect
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from dev3000.api.auth import ReadKey
from dev3000.api.problems import PROBLEM_RESPONSES
from dev3000.api.state import StateDep
from guilde_core.errors import ServiceUnavailableError
from guilde_core.redaction import redact

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/logs", tags=["logs"], responses=PROBLEM_RESPONSES)


@router.get("/search", summary="Search log lines (literal or regex) with filters and paging")
async def search(
    *,
    q: Annotated[str, Query(min_length=1, max_length=500, description="Text (or regex) to find")],
    regex: Annotated[bool, Query(description="Treat q as a regular expression")] = False,
    sources: Annotated[
        str | None, Query(max_length=1000, description="Comma-separated sources")
    ] = None,
    level: Annotated[
        str | None,
        Query(pattern=r"^(debug|info|warning|error|critical)$", description="Minimum level"),
    ] = None,
    since: Annotated[datetime | None, Query()] = None,
    until: Annotated[datetime | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
    state: StateDep,
    _: ReadKey,
) -> dict[str, Any]:
    try:
        logic: Any = importlib.import_module("servers.logs.logic")
    except ImportError:
        raise ServiceUnavailableError("log search is not available in this build") from None
    fn = logic.search
    params = inspect.signature(fn).parameters
    kwargs: dict[str, Any] = {
        "query": q,
        "regex": regex,
        "sources": [s for s in (sources or "").split(",") if s] or None,
        "level": level,
        "since": since,
        "until": until,
        "limit": offset + limit,
    }
    if "settings" in params:
        kwargs["settings"] = state.settings
    result = await fn(**{k: v for k, v in kwargs.items() if k in params})
    data = result.model_dump(mode="json") if hasattr(result, "model_dump") else dict(result)
    items = data.pop("entries", data.pop("items", []))
    page = items[offset : offset + limit]
    out: dict[str, Any] = redact(
        {
            **data,
            "items": page,
            "limit": limit,
            "offset": offset,
            "next_offset": offset + limit if len(items) > offset + limit else None,
        }
    )
    return out
