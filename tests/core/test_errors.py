"""The error tree and its mappers from HTTP statuses and client-library exceptions."""

from __future__ import annotations

import email.utils
import time

import anthropic
import httpx
import httpx2
import openai
import psycopg
import pytest
import redis

from guilde_core import errors as e


@pytest.mark.parametrize(
    ("status", "cls", "retryable"),
    [
        (429, e.RateLimitedError, True),
        (408, e.OperationTimeoutError, True),
        (502, e.ServiceUnavailableError, True),
        (503, e.ServiceUnavailableError, True),
        (504, e.ServiceUnavailableError, True),
        (529, e.ServiceUnavailableError, True),
        (500, e.UpstreamServerError, True),
        (401, e.AuthenticationError, False),
        (403, e.AuthenticationError, False),
        (400, e.PermanentError, False),
        (404, e.NotFoundError, False),
        (422, e.PermanentError, False),
    ],
)
def test_status_mapping(status: int, cls: type[e.GuildeError], retryable: bool) -> None:
    err = e.error_from_status(status)
    assert type(err) is cls
    assert err.retryable is retryable
    assert err.status_code == status


def test_retry_after_seconds_and_date() -> None:
    err = e.error_from_status(429, headers={"retry-after": "7"})
    assert isinstance(err, e.RateLimitedError)
    assert err.retry_after == 7
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    err = e.error_from_status(429, headers={"Retry-After": future})
    assert isinstance(err, e.RateLimitedError)
    assert err.retry_after is not None
    assert 25 <= err.retry_after <= 31
    assert e.parse_retry_after("garbage") is None


def _response(status: int, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, headers=headers, request=httpx.Request("POST", "http://x/v1"))


def _sdk_response(status: int, headers: dict[str, str] | None = None) -> httpx2.Response:
    """The LLM SDKs run on httpx2; their errors carry httpx2 responses."""
    return httpx2.Response(status, headers=headers, request=httpx2.Request("POST", "http://x/v1"))


def test_httpx_mapping() -> None:
    exc = httpx.HTTPStatusError(
        "boom", request=httpx.Request("GET", "http://x"), response=_response(503)
    )
    assert isinstance(e.classify(exc), e.ServiceUnavailableError)
    assert isinstance(e.classify(httpx.ReadTimeout("slow")), e.OperationTimeoutError)
    assert isinstance(e.classify(httpx.ConnectError("refused")), e.ConnectionFailedError)
    # httpx2, the mcp SDK's HTTP client, the same way
    assert isinstance(e.classify(httpx2.ConnectError("refused")), e.ConnectionFailedError)
    assert isinstance(e.classify(httpx2.ReadTimeout("slow")), e.OperationTimeoutError)
    refused = httpx2.HTTPStatusError(
        "no", request=httpx2.Request("POST", "http://x/mcp"), response=_sdk_response(401)
    )
    assert isinstance(e.classify(refused), e.AuthenticationError)


def test_llm_sdk_mapping() -> None:
    rate = openai.RateLimitError(
        "slow down", response=_sdk_response(429, {"retry-after": "3"}), body=None
    )
    mapped = e.classify(rate, service="openai")
    assert isinstance(mapped, e.RateLimitedError)
    assert mapped.retry_after == 3
    assert mapped.service == "openai"
    auth = anthropic.AuthenticationError("bad key", response=_sdk_response(401), body=None)
    assert isinstance(e.classify(auth), e.AuthenticationError)
    overloaded = anthropic.APIStatusError("overloaded", response=_sdk_response(529), body=None)
    mapped = e.classify(overloaded)
    assert isinstance(mapped, e.ServiceUnavailableError)
    assert mapped.overloaded
    timeout = openai.APITimeoutError(request=httpx2.Request("POST", "http://x"))
    assert isinstance(e.classify(timeout), e.OperationTimeoutError)


def test_redis_and_postgres_mapping() -> None:
    assert isinstance(e.classify(redis.ConnectionError("down")), e.ConnectionFailedError)
    assert isinstance(e.classify(redis.TimeoutError("slow")), e.OperationTimeoutError)
    assert isinstance(e.classify(redis.AuthenticationError("no")), e.AuthenticationError)
    deadlock = psycopg.errors.DeadlockDetected("deadlock detected")
    assert isinstance(e.classify(deadlock), e.TransientDatabaseError)
    assert e.classify(deadlock).retryable
    assert isinstance(
        e.classify(psycopg.OperationalError("connection reset")), e.TransientDatabaseError
    )
    assert not e.classify(psycopg.errors.UndefinedTable("no table")).retryable


def test_builtin_mapping_and_permanent_do_not_count() -> None:
    assert isinstance(e.classify(TimeoutError()), e.OperationTimeoutError)
    assert isinstance(e.classify(ConnectionResetError()), e.ConnectionFailedError)
    assert not e.PermanentError.counts_as_failure
    assert not e.AuthenticationError.counts_as_failure
    assert e.UpstreamServerError.counts_as_failure


def test_circuit_open_error_is_fresh_and_says_when() -> None:
    at = time.time() + 12
    one = e.CircuitOpenError("openai", retry_at=at)
    two = e.CircuitOpenError("openai", retry_at=at)
    assert one is not two
    assert "will try again at" in str(one)
    assert one.retry_after is not None
    assert 10 < one.retry_after <= 12
    assert one.to_dict()["code"] == "circuit_open"


def test_classify_never_imports_a_client_library() -> None:
    # an exception can only belong to a library that is loaded; importing the LLM SDKs on the
    # first classification cost a fresh process seconds
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from guilde_core.errors import classify\n"
        "classify(ValueError('x')); classify(TimeoutError()); classify(OSError(5, 'io'))\n"
        "print(sorted(m for m in ('openai', 'anthropic', 'psycopg', 'redis') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
