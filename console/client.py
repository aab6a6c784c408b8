"""Async HTTP client for dev3000's REST API (no Textual here).

Every call returns parsed models from :mod:`console.models` or raises one of two errors:

* :class:`ApiError` — the server answered with an error (RFC 9457 problem details when
  it sent them); the console shows it as a notification.
* :class:`ConnectionLost` — no answer at all (refused, reset, timeout); the console marks
  its data stale and reconnects with back-off.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import quote

import httpx

from console.errors import ApiError, ConnectionLost
from console.models import (
    CircuitAction,
    CircuitInfo,
    Event,
    HealthReport,
    JsonObject,
    JsonValue,
    LogLine,
    Target,
    parse_circuits,
    parse_deep_health,
    parse_event,
    parse_items,
    parse_log_line,
    parse_targets,
    parse_topology,
)
from guilde_core.redaction import redact_text

if TYPE_CHECKING:
    from guilde_core.stack import StackModel

__all__ = ["API_PREFIX", "ApiError", "ConnectionLost", "Dev3000Client", "Page"]

API_PREFIX = "/api/v1"


class Page:
    """One page of log lines: ``items`` and the cursor of the next page (if any)."""

    def __init__(self, items: list[LogLine], next_cursor: str | None, total: int | None) -> None:
        self.items = items
        self.next_cursor = next_cursor
        self.total = total


type QueryValue = str | int | float | bool | datetime | list[str] | None


def _params(**values: QueryValue) -> dict[str, str | int | float]:
    out: dict[str, str | int | float] = {}
    for key, value in values.items():
        if value is None or value == "" or value == []:
            continue
        if isinstance(value, datetime):
            out[key] = value.isoformat()
        elif isinstance(value, list):
            out[key] = ",".join(str(v) for v in value)
        elif isinstance(value, bool):
            out[key] = "true" if value else "false"
        else:
            out[key] = value
    return out


class Dev3000Client:
    """One connection pool to dev3000; ``async with Dev3000Client(url) as client: …``."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        headers = {"Accept": "application/json", "User-Agent": "dev3000-console"}
        if api_key:
            headers["X-API-Key"] = api_key
        self._http = httpx.AsyncClient(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )

    @property
    def auth_headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key} if self.api_key else {}

    async def __aenter__(self) -> Dev3000Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int | float] | None = None,
        json: JsonValue = None,
        read_timeout: float | None = None,
        ok_statuses: tuple[int, ...] = (),
    ) -> JsonValue:
        """Send one request; return the decoded JSON body (``None`` when empty)."""
        timeout = httpx.USE_CLIENT_DEFAULT if read_timeout is None else read_timeout
        try:
            response = await self._http.request(
                method, path, params=params, json=json, timeout=timeout
            )
        except (httpx.TransportError, OSError) as exc:
            raise ConnectionLost(f"{type(exc).__name__}: {redact_text(str(exc))}") from exc
        if response.status_code >= 400 and response.status_code not in ok_statuses:
            raise ApiError.from_response(response)
        if not response.content:
            return None
        try:
            body: JsonValue = response.json()
        except ValueError as exc:
            raise ApiError(response.status_code, "invalid JSON from dev3000") from exc
        return body

    # ------------------------------------------------------------------ health

    async def health(self) -> JsonObject:
        """``GET /api/v1/health`` (basic liveness)."""
        body = await self.request("GET", f"{API_PREFIX}/health", ok_statuses=(503,))
        return body if isinstance(body, dict) else {}

    async def deep_health(self, *, fresh: bool = False) -> HealthReport:
        """``GET /api/v1/health/deep`` — a 503 still carries the report (unhealthy)."""
        params = _params(fresh=True) if fresh else None
        body = await self.request(
            "GET", f"{API_PREFIX}/health/deep", params=params, ok_statuses=(503,), read_timeout=15.0
        )
        return parse_deep_health(body)

    async def topology(self, *, fresh: bool = False) -> StackModel | None:
        """``GET /api/v1/diag/topology`` — the model of the watched stack (``None`` when
        dev3000 sent one this console cannot read)."""
        params = _params(fresh=True) if fresh else None
        body = await self.request(
            "GET", f"{API_PREFIX}/diag/topology", params=params, read_timeout=15.0
        )
        return parse_topology(body)

    async def targets(self, *, limit: int = 200) -> list[Target]:
        """``GET /api/v1/targets``."""
        body = await self.request(
            "GET", f"{API_PREFIX}/targets", params=_params(limit=min(limit, 500))
        )
        return parse_targets(body)

    # ---------------------------------------------------------------- circuits

    async def circuits(self) -> list[CircuitInfo]:
        """``GET /api/v1/diag/circuits``."""
        return parse_circuits(await self.request("GET", f"{API_PREFIX}/diag/circuits"))

    async def circuit_action(self, name: str, action: CircuitAction, reason: str) -> JsonValue:
        """``POST /api/v1/diag/circuits/{name}/{open|close|reset}`` with a reason."""
        if action not in ("open", "close", "reset"):
            raise ValueError(f"unknown circuit action {action!r}")
        path = f"{API_PREFIX}/diag/circuits/{quote(name, safe='')}/{action}"
        return await self.request("POST", path, json={"reason": reason})

    # ---------------------------------------------------------------- timeline

    async def timeline(
        self,
        *,
        limit: int = 200,
        kinds: list[str] | None = None,
        severity: str | None = None,
        sources: list[str] | None = None,
        since: datetime | None = None,
    ) -> list[Event]:
        """``GET /api/v1/timeline`` — the newest ``limit`` events, returned oldest first."""
        body = await self.request(
            "GET",
            f"{API_PREFIX}/timeline",
            params=_params(
                limit=limit, kinds=kinds, severity=severity, sources=sources, since=since
            ),
        )
        events = [e for e in (parse_event(i) for i in parse_items(body, "events")) if e]
        return sorted(events, key=lambda e: e.id)

    # -------------------------------------------------------------------- logs

    async def log_search(
        self,
        *,
        query: str = ".",
        regex: bool = True,
        sources: list[str] | None = None,
        level: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 500,
        offset: int = 0,
    ) -> Page:
        """``GET /api/v1/logs/search`` — one page of matching lines (``q`` is required by
        dev3000, so the default is the regex ``.``: every non-empty line)."""
        body = await self.request(
            "GET",
            f"{API_PREFIX}/logs/search",
            params=_params(
                q=query,
                regex=regex,
                sources=sources,
                level=level,
                since=since,
                until=until,
                limit=min(limit, 500),
                offset=offset or None,
            ),
        )
        lines: list[LogLine] = [
            line
            for line in (parse_log_line(i) for i in parse_items(body, "entries", "lines"))
            if line
        ]
        next_offset = body.get("next_offset") if isinstance(body, dict) else None
        total = body.get("total") if isinstance(body, dict) else None
        return Page(
            lines,
            str(next_offset) if next_offset is not None else None,
            total if isinstance(total, int) else None,
        )
