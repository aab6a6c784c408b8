"""One coroutine per check kind. Each returns ``(status, details)`` or raises; the caller
(:func:`run_check`) measures latency, applies the timeout and turns exceptions into an
``unhealthy`` result with a short error and its code (``timeout``, ``connection_failed``,
``unexpected_status`` …). HTTP checks share the caller's client (one connection pool and TLS
context for every check) when it passes one."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import psutil

from guilde_core.config import Settings
from guilde_core.errors import classify
from guilde_core.redaction import redact, redact_text
from servers.circuits import logic as circuits
from servers.health.disk import disk_report
from servers.health.metrics import MetricsSample, summarise
from servers.health.models import CheckResult, Status, Target, worst

__all__ = ["run_check", "timeout_message"]

Outcome = tuple[Status, dict[str, Any]]

#: the HTTP client of the running check (:func:`run_check` sets it for the check's task)
_client: contextvars.ContextVar[httpx.AsyncClient | None] = contextvars.ContextVar(
    "health_http_client", default=None
)


async def _get(url: str, budget: float, **kwargs: Any) -> httpx.Response:
    """GET ``url`` within ``budget`` seconds on the shared client, else on one of its own."""
    client = _client.get()
    if client is not None:
        return await client.get(url, timeout=budget, **kwargs)
    async with httpx.AsyncClient(timeout=budget, follow_redirects=False) as own:
        return await own.get(url, **kwargs)


def _by_latency(ms: float, warn: float) -> Status:
    return "degraded" if ms > warn else "healthy"


def _url(target: Target) -> str:
    if not target.url:
        raise ValueError(f"target {target.name} has no url")
    base = target.url.rstrip("/")
    if target.path:
        return base + "/" + target.path.lstrip("/")
    return target.url


async def _http(target: Target, settings: Settings, budget: float, ctx: dict[str, Any]) -> Outcome:
    url = _url(target)
    started = time.perf_counter()
    response = await _get(url, budget, headers={"User-Agent": "dev3000-health"})
    ms = (time.perf_counter() - started) * 1000
    warn = target.warn_ms or settings.health_warn_api_latency_ms
    details: dict[str, Any] = {
        "url": url,
        "status_code": response.status_code,
        "expected_status": target.expected_status,
        "latency_ms": round(ms, 3),
        "warn_latency_ms": warn,
    }
    report = _health_report(response)
    if report is not None:
        details["report"] = report
    if response.status_code != target.expected_status:
        raise _Failed(f"HTTP {response.status_code} (expected {target.expected_status})", details)
    return _by_latency(ms, warn), details


def _health_report(response: httpx.Response) -> dict[str, Any] | None:
    """The target's own health report (``{status, checks}``) when it answers one in JSON, so a
    failing backend says *why* (its database refused, its disk is over budget …)."""
    if "json" not in response.headers.get("content-type", "") or len(response.content) > 32_768:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    if (
        not isinstance(body, dict)
        or "status" not in body
        or not isinstance(body.get("checks"), dict)
    ):
        return None
    return {"status": body["status"], "checks": body["checks"]}


async def _redis(target: Target, settings: Settings, budget: float, ctx: dict[str, Any]) -> Outcome:
    from guilde_core.shared_redis import probe

    if not target.url:
        raise ValueError("redis target has no url")
    async with probe(target.url, budget) as client:
        started = time.perf_counter()
        await client.ping()
        ms = (time.perf_counter() - started) * 1000
        memory = await client.info("memory")
        clients = await client.info("clients")
        server = await client.info("server")
    warn = target.warn_ms or settings.health_warn_redis_latency_ms
    details = {
        "latency_ms": round(ms, 3),
        "warn_latency_ms": warn,
        "memory_used_mb": round(float(memory.get("used_memory", 0)) / 1024 / 1024, 3),
        "connected_clients": int(clients.get("connected_clients", 0)),
        "version": server.get("redis_version"),
    }
    return _by_latency(ms, warn), details


async def _postgres(
    target: Target, settings: Settings, budget: float, ctx: dict[str, Any]
) -> Outcome:
    import psycopg

    if not target.url:
        raise ValueError("postgres target has no url")
    conn = await psycopg.AsyncConnection.connect(
        target.url, connect_timeout=max(1, int(budget)), autocommit=True
    )
    try:
        started = time.perf_counter()
        await conn.execute("SELECT 1")
        ms = (time.perf_counter() - started) * 1000
        cur = await conn.execute(
            "SELECT current_setting('server_version'), current_setting('max_connections')::int,"
            " (SELECT count(*) FROM pg_stat_activity)::int"
        )
        row = await cur.fetchone()
    finally:
        await conn.close()
    version, max_conn, in_use = row if row else (None, None, None)
    warn = target.warn_ms or settings.health_warn_db_latency_ms
    details = {
        "latency_ms": round(ms, 3),
        "warn_latency_ms": warn,
        "server_version": version,
        "connections_in_use": in_use,
        "connections_max": max_conn,
        "connections_available": (max_conn - in_use) if max_conn and in_use is not None else None,
    }
    return _by_latency(ms, warn), details


async def _tcp(target: Target, settings: Settings, budget: float, ctx: dict[str, Any]) -> Outcome:
    if not target.host or not target.port:
        raise ValueError(f"tcp target {target.name} needs host and port")
    started = time.perf_counter()
    _, writer = await asyncio.open_connection(target.host, target.port)
    ms = (time.perf_counter() - started) * 1000
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    warn = target.warn_ms or settings.health_warn_api_latency_ms
    return _by_latency(ms, warn), {"host": target.host, "port": target.port, "connect_ms": ms}


async def _disk(target: Target, settings: Settings, budget: float, ctx: dict[str, Any]) -> Outcome:
    return await asyncio.to_thread(disk_report, settings, target.path)


async def _memory(
    target: Target, settings: Settings, budget: float, ctx: dict[str, Any]
) -> Outcome:
    vm = psutil.virtual_memory()
    warn = settings.health_warn_memory_percent
    status: Status = "degraded" if vm.percent >= warn else "healthy"
    return status, {
        "used_percent": vm.percent,
        "warn_percent": warn,
        "available_mb": round(vm.available / 1024 / 1024, 1),
        "total_mb": round(vm.total / 1024 / 1024, 1),
    }


async def _cpu(target: Target, settings: Settings, budget: float, ctx: dict[str, Any]) -> Outcome:
    percent = await asyncio.to_thread(psutil.cpu_percent, 0.1)
    warn = settings.health_warn_cpu_percent
    status: Status = "degraded" if percent >= warn else "healthy"
    return status, {"cpu_percent": percent, "warn_percent": warn, "cpus": psutil.cpu_count()}


async def _external(
    target: Target, settings: Settings, budget: float, ctx: dict[str, Any]
) -> Outcome:
    """Every breaker (``external_apis``) or the one named like the target, as the circuits
    adapter reads and judges them."""
    if target.name == "external_apis":
        breakers = (await circuits.list_breakers(settings)).breakers
    else:
        breakers = [await circuits.get_breaker(target.name, settings)]
    details = {
        b.name: {
            "status": b.status,
            "circuit_state": b.state.value,
            "forced": b.forced,
            "disabled": b.disabled,
            "failure_count": b.failure_count,
            "last_failure": b.last_failure_at.isoformat() if b.last_failure_at else None,
            "last_success": b.last_success_at.isoformat() if b.last_success_at else None,
        }
        for b in breakers
    }
    # an open breaker fails fast by design: the dependency is unhealthy, this process copes
    return worst([b.status for b in breakers]), {"breakers": details}


#: a /metrics target's error rate (%) that degrades it, and that makes it unhealthy
_ERROR_RATE_DEGRADED = 1.0
_ERROR_RATE_UNHEALTHY = 5.0


async def _metrics(
    target: Target, settings: Settings, budget: float, ctx: dict[str, Any]
) -> Outcome:
    url = _url(target.model_copy(update={"path": target.path or "/metrics"}))
    response = await _get(url, budget)
    if response.status_code != 200:
        raise _Failed(
            f"HTTP {response.status_code} from {url}",
            {"url": url, "status_code": response.status_code, "expected_status": 200},
        )
    previous: MetricsSample | None = ctx.get("previous")
    sample = summarise(response.text, previous=previous)
    ctx["sample"] = sample
    warn = target.warn_ms or settings.health_warn_api_latency_ms
    details = sample.model_dump(mode="json", exclude={"at"})
    details.update(url=url, threshold_percent=_ERROR_RATE_DEGRADED, warn_latency_ms=warn)
    status: Status = "healthy"
    if sample.error_rate_percent >= _ERROR_RATE_UNHEALTHY:
        status = "unhealthy"
    elif sample.error_rate_percent >= _ERROR_RATE_DEGRADED:
        status = "degraded"
    if sample.p99_latency_ms is not None and sample.p99_latency_ms > warn and status == "healthy":
        status = "degraded"
    return status, details


_KINDS: dict[str, Callable[[Target, Settings, float, dict[str, Any]], Awaitable[Outcome]]] = {
    "http": _http,
    "redis": _redis,
    "postgres": _postgres,
    "tcp": _tcp,
    "disk": _disk,
    "memory": _memory,
    "cpu": _cpu,
    "external_api": _external,
    "metrics": _metrics,
}


class _Failed(Exception):
    """A check that got an answer, and the answer is a failure."""

    def __init__(self, message: str, details: dict[str, Any]) -> None:
        super().__init__(message)
        self.details = details


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    name = type(exc).__name__
    return redact_text(f"{name}: {text}" if text else name)[:300]


def timeout_message(seconds: float, *, deadline: bool = False) -> str:
    """``timeout after 2s`` (``…, the deep check's deadline`` when the deadline cut it)."""
    return f"timeout after {seconds:g}s" + (" (deep check deadline)" if deadline else "")


async def run_check(
    target: Target,
    settings: Settings,
    ctx: dict[str, Any] | None = None,
    *,
    client: httpx.AsyncClient | None = None,
    cap: float | None = None,
) -> CheckResult:
    """Run one check under its timeout (``target.timeout`` or ``HEALTH_CHECK_TIMEOUT``, at
    most ``cap`` seconds: what is left of a deadline); never raises. HTTP checks use
    ``client`` when given."""
    timeout = target.timeout or settings.health_check_timeout
    capped = cap is not None and cap < timeout
    if capped:
        assert cap is not None
        timeout = max(cap, 0.001)
    ctx = ctx if ctx is not None else {}
    started = time.perf_counter()
    status: Status
    error: str | None = None
    code: str | None = None
    details: dict[str, Any] = {}
    token = _client.set(client)  # copied into the check's task by wait_for
    try:
        status, details = await asyncio.wait_for(
            _KINDS[target.kind](target, settings, timeout, ctx), timeout
        )
    except TimeoutError:
        status, error, code = "unhealthy", timeout_message(timeout, deadline=capped), "timeout"
    except _Failed as exc:
        status, error, details, code = "unhealthy", str(exc), exc.details, "unexpected_status"
    except Exception as exc:
        status, error, code = "unhealthy", _short(exc), classify(exc).code
    finally:
        _client.reset(token)
    latency = (time.perf_counter() - started) * 1000
    return CheckResult(
        name=target.name,
        kind=target.kind,
        critical=target.critical,
        status=status,
        latency_ms=round(latency, 3),
        observed_at=datetime.now(UTC),
        details=redact(details),
        error=error,
        error_code=code,
    )
