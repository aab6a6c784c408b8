"""RFC 9457 problem details (``application/problem+json``) for every error of the API.

:func:`install_problem_handlers` makes 404, 405, validation errors, :class:`GuildeError`
subclasses, :class:`HTTPException` and unexpected exceptions all answer with::

    {"type": "https://guilde.dev/problems/<code>", "title": "...", "status": 422,
     "detail": "...", "instance": "/api/v1/...", "request_id": "...",
     "errors": [{"field": "query.limit", "message": "...", "type": "..."}]}

Details are redacted; an unexpected exception never leaks its traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Scope

from guilde_core.correlation import get_correlation_id
from guilde_core.errors import GuildeError
from guilde_core.redaction import redact, redact_text

__all__ = [
    "PROBLEM_JSON",
    "PROBLEM_RESPONSES",
    "FieldError",
    "Problem",
    "ProblemResponse",
    "install_problem_handlers",
    "internal_error",
    "problem_app",
    "problem_response",
]

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://guilde.dev/problems/"
log = logging.getLogger("dev3000.api")


class FieldError(BaseModel):
    """One invalid input field."""

    field: str = Field(description="Where: query.limit, body.url, path.name …")
    message: str
    type: str = "invalid"


class Problem(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "https://guilde.dev/problems/validation",
                    "title": "Unprocessable Content",
                    "status": 422,
                    "detail": "1 invalid field: query.limit",
                    "instance": "/api/v1/targets",
                    "request_id": "5f0c…",
                    "errors": [
                        {
                            "field": "query.limit",
                            "message": "Input should be less than or equal to 500",
                            "type": "less_than_equal",
                        }
                    ],
                }
            ]
        },
    )

    type: str = Field(PROBLEM_BASE + "error", description="URI naming the problem type.")
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None
    errors: list[FieldError] | None = None


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_JSON


#: ``responses=`` entry for routes: documents the problem shape for error statuses
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": Problem, "content": {PROBLEM_JSON: {}}, "description": "Client error"},
    "5XX": {"model": Problem, "content": {PROBLEM_JSON: {}}, "description": "Server error"},
}


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_response(
    status: int,
    detail: str | None = None,
    *,
    code: str | None = None,
    instance: str | None = None,
    errors: Sequence[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> ProblemResponse:
    """Build a problem+json response (detail and extras redacted)."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + (code or _title(status).lower().replace(" ", "_")),
        "title": _title(status),
        "status": status,
    }
    if detail:
        body["detail"] = redact_text(detail)
    if instance:
        body["instance"] = instance
    rid = get_correlation_id()
    if rid:
        body["request_id"] = rid
    if errors:
        body["errors"] = [e.model_dump() for e in errors]
    if extra:
        body.update(redact(dict(extra)))
    return ProblemResponse(body, status_code=status, headers=dict(headers or {}))


def problem_app(scope: Scope, status: int, detail: str, *, code: str | None = None) -> ASGIApp:
    """An ASGI response for a raw (non-FastAPI) scope, e.g. in a pure ASGI middleware."""
    response: Response = problem_response(
        status, detail, code=code, instance=str(scope.get("path", ""))
    )
    return response


def _field_errors(errors: Sequence[Any]) -> list[FieldError]:
    out: list[FieldError] = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ())]
        out.append(
            FieldError(
                field=".".join(loc) or "body",
                message=redact_text(str(err.get("msg", "invalid"))),
                type=str(err.get("type", "invalid")),
            )
        )
    return out


def internal_error(path: str, exc: BaseException, *, verbose: bool = False) -> ProblemResponse:
    """The 500 problem of an unexpected error: the request id names it in the log; with
    ``verbose`` (``DIAGNOSTIC_VERBOSE``) it also names the exception (type and redacted
    message)."""
    extra = {"exception": redact_text(f"{type(exc).__name__}: {exc}")[:500]} if verbose else None
    return problem_response(
        500,
        "internal error; the request id identifies it in the dev3000 log",
        code="internal",
        instance=path,
        extra=extra,
    )


def install_problem_handlers(app: FastAPI, *, verbose: Callable[[], bool] | None = None) -> None:
    """Register problem-details handlers for every error path of ``app``. ``verbose``
    (``DIAGNOSTIC_VERBOSE``, asked at each error) adds the exception's type and redacted
    message to a 500's problem document."""

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = _field_errors(exc.errors())
        names = ", ".join(e.field for e in errors)
        return problem_response(
            422,
            f"{len(errors)} invalid field(s): {names}",
            code="validation",
            instance=request.url.path,
            errors=errors,
        )

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else None
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no resource at {request.url.path}"
        elif exc.status_code == 405:
            detail = f"method {request.method} is not allowed on {request.url.path}"
        return problem_response(
            exc.status_code,
            detail,
            instance=request.url.path,
            headers=exc.headers,
        )

    async def on_guilde(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, GuildeError)
        status = getattr(exc, "status", None) or exc.http_status
        headers: dict[str, str] = {}
        retry_after = getattr(exc, "retry_after", None)
        if isinstance(retry_after, int | float) and retry_after is not None:
            headers["Retry-After"] = str(max(1, int(retry_after + 0.999)))
        if status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="dev3000", X-API-Key'
        return problem_response(
            int(status),
            exc.message,
            code=exc.code,
            instance=request.url.path,
            headers=headers,
            extra={"retryable": exc.retryable},
        )

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.error("unhandled error on %s: %s", request.url.path, redact_text(repr(exc)))
        return internal_error(request.url.path, exc, verbose=verbose is not None and verbose())

    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(GuildeError, on_guilde)
    app.add_exception_handler(Exception, on_unexpected)
