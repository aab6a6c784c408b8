"""One exception tree for guilde-diag, each class marked retryable or not.

``classify(exc)`` maps foreign exceptions (httpx, openai, anthropic, redis, psycopg,
asyncio/OS timeouts and connection errors) and HTTP status codes onto this tree, so the
retry and breaker code reasons about one vocabulary:

=====================  ===========================  =========
HTTP / condition       class                        retryable
=====================  ===========================  =========
429                    RateLimitedError             yes (honours Retry-After)
408, timeouts          OperationTimeoutError        yes (with a larger timeout)
502/503/504/529        ServiceUnavailableError      yes
500, other 5xx         UpstreamServerError          yes
connection refused     ConnectionFailedError        yes
DB deadlock/reset      TransientDatabaseError       yes
401/403                AuthenticationError          never
400/404/409/422        PermanentError               no
=====================  ===========================  =========
"""

from __future__ import annotations

import asyncio
import email.utils
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

__all__ = [
    "AuthenticationError",
    "CircuitOpenError",
    "ConfigurationError",
    "ConnectionFailedError",
    "GuildeError",
    "InvalidCursorError",
    "InvalidInputError",
    "NotFoundError",
    "OperationTimeoutError",
    "PermanentError",
    "RateLimitExceededError",
    "RateLimitedError",
    "RetryBudgetExhaustedError",
    "ServiceUnavailableError",
    "TransientDatabaseError",
    "TransientError",
    "UpstreamServerError",
    "classify",
    "error_from_status",
    "is_retryable",
    "parse_retry_after",
]


class GuildeError(Exception):
    """Base of every guilde-diag error. ``retryable`` says whether retrying may help."""

    retryable: ClassVar[bool] = False
    #: counts as a breaker failure (permanent client-side errors do not)
    counts_as_failure: ClassVar[bool] = True
    #: short machine-readable code used in problem details and tool errors
    code: ClassVar[str] = "error"
    #: HTTP status this error maps to when surfaced by the API
    http_status: ClassVar[int] = 500

    def __init__(
        self,
        message: str,
        *,
        service: str | None = None,
        status_code: int | None = None,
        cause: BaseException | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.service = service
        self.status_code = status_code
        if cause is not None:
            self.__cause__ = cause

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "retryable": self.retryable,
        }
        if self.service:
            data["service"] = self.service
        if self.status_code is not None:
            data["status_code"] = self.status_code
        return data


# --- retryable ------------------------------------------------------------------------
class TransientError(GuildeError):
    """A failure that may pass: retrying is reasonable."""

    retryable = True
    code = "transient"
    http_status = 503


class RateLimitedError(TransientError):
    """The upstream said 429; ``retry_after`` seconds is its hint (may be None)."""

    code = "rate_limited"
    http_status = 429

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "retry_after": self.retry_after}


class OperationTimeoutError(TransientError):
    """The call did not finish within its timeout."""

    code = "timeout"
    http_status = 504

    def __init__(self, message: str, *, timeout: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.timeout = timeout


class ServiceUnavailableError(TransientError):
    """502/503/504/529: the upstream is down or overloaded."""

    code = "unavailable"

    @property
    def overloaded(self) -> bool:
        return self.status_code == 529


class UpstreamServerError(TransientError):
    """A 500 or other server-side failure of the upstream."""

    code = "upstream_error"
    http_status = 502


class ConnectionFailedError(TransientError):
    """The connection could not be made or was reset."""

    code = "connection_failed"


class TransientDatabaseError(TransientError):
    """Deadlock, serialization failure, connection reset: retry with a randomised delay."""

    code = "database_transient"


# --- not retryable ----------------------------------------------------------------------
class AuthenticationError(GuildeError):
    """401/403: bad or missing credentials. Never retried."""

    code = "authentication"
    http_status = 401
    counts_as_failure = False


class PermanentError(GuildeError):
    """The request itself is wrong (400/404/409/422): retrying cannot help."""

    code = "permanent"
    http_status = 400
    counts_as_failure = False


class InvalidInputError(PermanentError):
    """Input to a guilde-diag API or tool is invalid."""

    code = "invalid_input"
    http_status = 422


class InvalidCursorError(PermanentError):
    """A pagination cursor or resume point that was never handed out (HTTP 400)."""

    code = "invalid_cursor"
    http_status = 400


class NotFoundError(PermanentError):
    """The named thing does not exist."""

    code = "not_found"
    http_status = 404


class ConfigurationError(GuildeError):
    """Configuration is invalid or missing."""

    code = "configuration"
    counts_as_failure = False


class CircuitOpenError(GuildeError):
    """The breaker is open: the call was not attempted. Raised fresh on every rejection."""

    code = "circuit_open"
    http_status = 503
    counts_as_failure = False

    def __init__(self, name: str, *, retry_at: float | None, state: str = "open") -> None:
        self.name = name
        self.retry_at = retry_at
        self.state = state
        when = ""
        if retry_at:
            at = datetime.fromtimestamp(retry_at, UTC).isoformat(timespec="seconds")
            when = f"; will try again at {at}"
        super().__init__(f"circuit {name!r} is {state}{when}", service=name)

    @property
    def retry_after(self) -> float | None:
        return None if self.retry_at is None else max(0.0, self.retry_at - time.time())


class RetryBudgetExhaustedError(GuildeError):
    """The retry budget of the service is spent: failing fast instead of retrying."""

    code = "retry_budget_exhausted"
    http_status = 503
    counts_as_failure = False


class RateLimitExceededError(GuildeError):
    """A local (client- or server-side) rate limit refused the call."""

    code = "rate_limit_exceeded"
    http_status = 429
    counts_as_failure = False

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


# --------------------------------------------------------------------------------------
def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date); None if absent/bad."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - time.time())


def error_from_status(
    status: int,
    message: str | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    service: str | None = None,
    cause: BaseException | None = None,
) -> GuildeError:
    """Map an HTTP status to the tree."""
    text = message or f"HTTP {status}"
    kw: dict[str, Any] = {"service": service, "status_code": status, "cause": cause}
    if status == 429:
        ra = None
        if headers is not None:
            ra = parse_retry_after(headers.get("retry-after") or headers.get("Retry-After"))
        return RateLimitedError(text, retry_after=ra, **kw)
    if status == 408:
        return OperationTimeoutError(text, **kw)
    if status in (502, 503, 504, 529):
        return ServiceUnavailableError(text, **kw)
    if status in (401, 403):
        return AuthenticationError(text, **kw)
    if status == 404:
        return NotFoundError(text, **kw)
    if status >= 500:
        return UpstreamServerError(text, **kw)
    if 400 <= status < 500:
        return PermanentError(text, **kw)
    return GuildeError(text, **kw)


_PG_TRANSIENT_SQLSTATES = {
    "40001",  # serialization_failure
    "40P01",  # deadlock_detected
    "08000",  # connection_exception
    "08003",  # connection_does_not_exist
    "08006",  # connection_failure
    "08001",  # sqlclient_unable_to_establish_sqlconnection
    "08004",  # sqlserver_rejected_establishment_of_sqlconnection
    "57P01",  # admin_shutdown
    "57P03",  # cannot_connect_now
    "53300",  # too_many_connections
}


def _loaded(name: str) -> Any:
    """The module if it is already imported, else None.

    An exception can only be an instance of a library's class if that library is loaded, so
    the mappers never import a library (importing the LLM SDKs costs seconds).
    """
    return sys.modules.get(name)


def _classify_httpx(exc: BaseException, service: str | None) -> GuildeError | None:
    # httpx2 (the HTTP client of the mcp SDK) keeps httpx's exception classes
    for module_name in ("httpx", "httpx2"):
        httpx = _loaded(module_name)
        if httpx is None:
            continue
        if isinstance(exc, httpx.HTTPStatusError):
            return error_from_status(
                exc.response.status_code,
                str(exc),
                headers=exc.response.headers,
                service=service,
                cause=exc,
            )
        if isinstance(exc, httpx.TimeoutException):
            return OperationTimeoutError(f"timeout: {exc}", service=service, cause=exc)
        if isinstance(exc, httpx.TransportError):
            return ConnectionFailedError(f"connection failed: {exc}", service=service, cause=exc)
    return None


def _classify_llm_sdk(exc: BaseException, service: str | None) -> GuildeError | None:
    for module_name in ("openai", "anthropic"):
        module = _loaded(module_name)
        if module is None:
            continue
        if isinstance(exc, module.APIStatusError):
            return error_from_status(
                exc.status_code,
                exc.message,
                headers=exc.response.headers,
                service=service,
                cause=exc,
            )
        if isinstance(exc, module.APITimeoutError):
            return OperationTimeoutError(f"timeout: {exc}", service=service, cause=exc)
        if isinstance(exc, module.APIConnectionError):
            return ConnectionFailedError(f"connection failed: {exc}", service=service, cause=exc)
    return None


def _classify_redis(exc: BaseException, service: str | None) -> GuildeError | None:
    rex = _loaded("redis.exceptions")
    if rex is None:
        return None
    if isinstance(exc, rex.AuthenticationError | rex.AuthorizationError):
        return AuthenticationError(f"redis: {exc}", service=service, cause=exc)
    if isinstance(exc, rex.TimeoutError):
        return OperationTimeoutError(f"redis timeout: {exc}", service=service, cause=exc)
    if isinstance(exc, rex.ConnectionError | rex.BusyLoadingError | rex.TryAgainError):
        return ConnectionFailedError(f"redis: {exc}", service=service, cause=exc)
    if isinstance(exc, rex.ResponseError | rex.DataError):
        return PermanentError(f"redis: {exc}", service=service, cause=exc)
    return None


def _classify_psycopg(exc: BaseException, service: str | None) -> GuildeError | None:
    psycopg = _loaded("psycopg")
    if psycopg is None:
        return None
    if not isinstance(exc, psycopg.Error):
        return None
    sqlstate = getattr(exc, "sqlstate", None)
    if sqlstate in _PG_TRANSIENT_SQLSTATES or isinstance(exc, psycopg.OperationalError):
        if sqlstate == "28P01" or sqlstate == "28000":
            return AuthenticationError(f"postgresql: {exc}", service=service, cause=exc)
        return TransientDatabaseError(f"postgresql: {exc}", service=service, cause=exc)
    if sqlstate and sqlstate.startswith("28"):
        return AuthenticationError(f"postgresql: {exc}", service=service, cause=exc)
    return PermanentError(f"postgresql: {exc}", service=service, cause=exc)


def classify(exc: BaseException, *, service: str | None = None) -> GuildeError:
    """Map any exception onto the guilde-diag tree (returns ``exc`` itself if already one)."""
    if isinstance(exc, GuildeError):
        return exc
    for mapper in (_classify_llm_sdk, _classify_httpx, _classify_redis, _classify_psycopg):
        mapped = mapper(exc, service)
        if mapped is not None:
            return mapped
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return OperationTimeoutError(
            f"timeout: {exc}" if str(exc) else "timeout", service=service, cause=exc
        )
    if isinstance(exc, ConnectionError):
        return ConnectionFailedError(f"connection failed: {exc}", service=service, cause=exc)
    if isinstance(exc, OSError) and exc.errno is not None:
        return ConnectionFailedError(f"os error: {exc}", service=service, cause=exc)
    if isinstance(exc, ValueError | TypeError | KeyError):
        return PermanentError(f"{type(exc).__name__}: {exc}", service=service, cause=exc)
    return UpstreamServerError(f"{type(exc).__name__}: {exc}", service=service, cause=exc)


def is_retryable(exc: BaseException) -> bool:
    """Whether retrying ``exc`` may help."""
    return classify(exc).retryable
