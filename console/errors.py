"""The two errors of the console's HTTP clients (importable without httpx).

* :class:`ApiError` — the server answered with an error (RFC 9457 problem details when
  it sent them); the console shows it as a notification.
* :class:`ConnectionLost` — no answer at all (refused, reset, timeout); the console marks
  its data stale and reconnects with back-off.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from console.models import JsonObject, JsonValue, redact, redact_text, to_float

if TYPE_CHECKING:
    import httpx

__all__ = ["ApiError", "ConnectionLost"]


class ConnectionLost(Exception):
    """dev3000 did not answer (connection refused/reset, timeout)."""


class ApiError(Exception):
    """dev3000 answered with an error; ``problem`` holds the RFC 9457 body (redacted)."""

    def __init__(
        self, status: int, title: str, detail: str = "", problem: JsonObject | None = None
    ) -> None:
        self.status = status
        self.title = title
        self.detail = detail
        self.problem: JsonObject = problem if problem is not None else {}
        super().__init__(f"{status} {title}" + (f": {detail}" if detail else ""))

    @property
    def retry_after(self) -> float | None:
        """The problem's ``retry_after`` seconds (a 429), if it says."""
        seconds = to_float(self.problem.get("retry_after"))
        return seconds if seconds is not None and seconds > 0 else None

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        body: JsonValue = None
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            body = redact(body)
            title = str(body.get("title") or response.reason_phrase or "error")
            detail = str(body.get("detail") or "")
            errors = body.get("errors")
            if isinstance(errors, list) and errors:
                fields = ", ".join(
                    f"{e.get('field') or e.get('loc') or '?'}: {e.get('message') or e.get('msg')}"
                    for e in errors
                    if isinstance(e, dict)
                )
                detail = f"{detail} ({fields})" if detail else fields
            return cls(response.status_code, title, detail, body)
        text = redact_text(response.text[:200]) if response.text else ""
        return cls(response.status_code, response.reason_phrase or "error", text)
