"""PromQL against the stack's Prometheus, as plain async functions returning bounded models.

:func:`query` (an instant vector), :func:`query_range` (series over a window) and
:func:`targets` (what Prometheus scrapes) call Prometheus' HTTP API at ``PROMETHEUS_URL``
through the resilience layer (service ``prometheus``: breaker, retries of transient
failures, the per-query timeout ``PROMETHEUS_TIMEOUT``, also passed to Prometheus as its own
``timeout``). Answers are bounded: at most ``PROMETHEUS_MAX_SERIES`` series, at most
``PROMETHEUS_MAX_POINTS`` points (a range query's step is widened so one series fits, and the
oldest points are dropped when all series together would not).

Failures are typed errors with a clear message: no ``PROMETHEUS_URL``
(:class:`ConfigurationError`), bad PromQL or an impossible range
(:class:`InvalidInputError`, Prometheus' own parse error quoted), Prometheus unreachable,
failing or too slow (the transient errors of :mod:`guilde_core.errors`).
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any

import httpx

from guilde_core.config import ServiceType, Settings, get_settings
from guilde_core.errors import (
    ConfigurationError,
    ConnectionFailedError,
    GuildeError,
    InvalidInputError,
    OperationTimeoutError,
    UpstreamServerError,
)
from guilde_core.redaction import redact_text
from guilde_core.resilience import resilient_call
from servers.metrics.models import (
    InstantResult,
    InstantSample,
    MetricsStatus,
    RangeResult,
    RangeSeries,
    ScrapeTarget,
    TargetList,
)

__all__ = [
    "MAX_QUERY_CHARS",
    "MAX_RANGE_SECONDS",
    "SERVICE",
    "parse_time",
    "query",
    "query_range",
    "status",
    "targets",
]

#: the breaker / retry service name of every Prometheus call
SERVICE = "prometheus"
MAX_QUERY_CHARS = 4000
#: the longest window a range query may cover (7 days)
MAX_RANGE_SECONDS = 7 * 24 * 3600
#: Prometheus refuses more than 11,000 points per series
_PROMETHEUS_POINTS = 11_000


def _base(settings: Settings) -> str:
    if not settings.prometheus_url:
        raise ConfigurationError(
            "no metrics source: set PROMETHEUS_URL to the Prometheus that scrapes the stack"
        )
    return settings.prometheus_url


def _where(settings: Settings) -> str:
    return redact_text(settings.prometheus_url or "")


def _check_query(expr: str) -> str:
    text = expr.strip()
    if not text:
        raise InvalidInputError("query must be a PromQL expression, e.g. up")
    if len(text) > MAX_QUERY_CHARS:
        raise InvalidInputError(f"query is longer than {MAX_QUERY_CHARS} characters")
    return text


def parse_time(value: str | float | None, *, now: float | None = None) -> float:
    """Unix seconds from ``value``: None (now), unix seconds, RFC 3339, or ``now-<n><s|m|h|d>``
    / ``-<n><unit>`` (that long before now)."""
    current = time.time() if now is None else now
    if value is None:
        return current
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise InvalidInputError("a time must be a non-negative number of unix seconds")
        return float(value)
    text = value.strip().lower()
    if text in ("", "now"):
        return current
    rel = text.removeprefix("now")
    if rel.startswith("-") and rel[-1:] in _UNITS and rel[1:-1].replace(".", "", 1).isdigit():
        return current - float(rel[1:-1]) * _UNITS[rel[-1]]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInputError(
            f"not a time: {value[:40]!r} (unix seconds, RFC 3339, or now-15m)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def _number(raw: Any) -> float | None:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


async def _api(path: str, params: dict[str, str], settings: Settings) -> dict[str, Any]:
    """GET ``path`` of the Prometheus API; its ``data`` and ``warnings``, or a typed error."""
    base = _base(settings)
    timeout = settings.prometheus_timeout

    async def attempt(limit: float | None) -> dict[str, Any]:
        budget = min(timeout, limit) if limit else timeout
        try:
            async with httpx.AsyncClient(timeout=budget, follow_redirects=False) as client:
                response = await client.get(base + path, params=params)
        except httpx.TimeoutException:
            raise OperationTimeoutError(
                f"Prometheus at {_where(settings)} did not answer within {budget:g} s",
                service=SERVICE,
            ) from None
        except httpx.TransportError as exc:
            raise ConnectionFailedError(
                f"Prometheus at {_where(settings)} is unreachable ({type(exc).__name__})",
                service=SERVICE,
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise UpstreamServerError(
                f"Prometheus at {_where(settings)} answered HTTP {response.status_code} "
                "without a Prometheus API body (is PROMETHEUS_URL a Prometheus?)",
                service=SERVICE,
            )
        if body.get("status") != "success":
            kind = str(body.get("errorType", "error"))
            error = redact_text(str(body.get("error", "")))[:400]
            if response.status_code in (400, 422) or kind in ("bad_data", "execution"):
                raise InvalidInputError(f"Prometheus refused the query ({kind}): {error}")
            if kind == "timeout" or (response.status_code == 503 and "timeout" in error):
                raise OperationTimeoutError(
                    f"the query ran past PROMETHEUS_TIMEOUT ({timeout:g} s): {error}",
                    service=SERVICE,
                )
            raise UpstreamServerError(
                f"Prometheus answered HTTP {response.status_code} ({kind}): {error}",
                service=SERVICE,
            )
        return body

    return await resilient_call(SERVICE, attempt, service_type=ServiceType.THIRD_PARTY_API)


def _warnings(body: dict[str, Any]) -> list[str]:
    return [redact_text(str(w))[:300] for w in body.get("warnings") or []][:10]


def _labels(raw: Any) -> dict[str, str]:
    return {str(k): redact_text(str(v))[:200] for k, v in (raw or {}).items()}


async def query(
    expr: str, at: str | float | None = None, *, settings: Settings | None = None
) -> InstantResult:
    """Evaluate ``expr`` at ``at`` (default now)."""
    s = settings or get_settings()
    text = _check_query(expr)
    when = parse_time(at)
    body = await _api(
        "/api/v1/query",
        {"query": text, "time": f"{when:.3f}", "timeout": f"{s.prometheus_timeout:g}s"},
        s,
    )
    data = body.get("data") or {}
    kind = str(data.get("resultType", "vector"))
    raw = data.get("result")
    samples: list[InstantSample]
    if kind in ("scalar", "string"):
        value = raw[1] if isinstance(raw, list) and len(raw) == 2 else None
        samples = [InstantSample(labels={}, value=_number(value))]
        total = 1
    elif kind == "matrix":
        series = raw or []
        total = len(series)
        samples = [
            InstantSample(
                labels=_labels(item.get("metric")),
                value=_number(item["values"][-1][1]) if item.get("values") else None,
            )
            for item in series[: s.prometheus_max_series]
        ]
    else:
        series = raw or []
        total = len(series)
        samples = [
            InstantSample(labels=_labels(item.get("metric")), value=_number(item["value"][1]))
            for item in series[: s.prometheus_max_series]
        ]
    return InstantResult(
        query=text,
        time=datetime.fromtimestamp(when, UTC),
        result_type=kind if kind in ("vector", "scalar", "string", "matrix") else "vector",
        samples=samples,
        series_total=total,
        truncated=total > len(samples),
        warnings=_warnings(body),
    )


def fit_step(start: float, end: float, step: float | None, max_points: int) -> float:
    """The step of a range query: the one asked for (default: 60 points over the window),
    widened so one series has at most ``max_points`` points."""
    span = end - start
    wanted = step if step is not None else max(span / 60, 1.0)
    floor = span / max(min(max_points, _PROMETHEUS_POINTS) - 1, 1)
    return round(max(wanted, floor, 0.001), 3)


async def query_range(
    expr: str,
    start: str | float | None = "now-15m",
    end: str | float | None = None,
    step_seconds: float | None = None,
    *,
    settings: Settings | None = None,
) -> RangeResult:
    """Evaluate ``expr`` from ``start`` to ``end`` every ``step_seconds`` (bounded)."""
    s = settings or get_settings()
    text = _check_query(expr)
    now = time.time()
    t_end = parse_time(end, now=now)
    t_start = parse_time(start, now=now)
    if t_start >= t_end:
        raise InvalidInputError("start must be before end")
    if t_end - t_start > MAX_RANGE_SECONDS:
        raise InvalidInputError("a range query covers at most 7 days")
    if step_seconds is not None and not (math.isfinite(step_seconds) and step_seconds > 0):
        raise InvalidInputError("step_seconds must be a positive number")
    step = fit_step(t_start, t_end, step_seconds, s.prometheus_max_points)
    body = await _api(
        "/api/v1/query_range",
        {
            "query": text,
            "start": f"{t_start:.3f}",
            "end": f"{t_end:.3f}",
            "step": f"{step:g}",
            "timeout": f"{s.prometheus_timeout:g}s",
        },
        s,
    )
    data = body.get("data") or {}
    raw = data.get("result") or []
    kept = raw[: s.prometheus_max_series]
    per_series = max(s.prometheus_max_points // max(len(kept), 1), 1)
    series: list[RangeSeries] = []
    cut = len(raw) > len(kept)
    for item in kept:
        values = item.get("values") or []
        if len(values) > per_series:
            values = values[-per_series:]  # the newest points matter most
            cut = True
        points = [(float(ts), _number(v)) for ts, v in values]
        numbers = [v for _, v in points if v is not None]
        series.append(
            RangeSeries(
                labels=_labels(item.get("metric")),
                points=points,
                last=points[-1][1] if points else None,
                max=max(numbers) if numbers else None,
            )
        )
    return RangeResult(
        query=text,
        start=datetime.fromtimestamp(t_start, UTC),
        end=datetime.fromtimestamp(t_end, UTC),
        step_seconds=step,
        series=series,
        series_total=len(raw),
        points_total=sum(len(x.points) for x in series),
        truncated=cut,
        warnings=_warnings(body),
    )


async def targets(*, settings: Settings | None = None) -> TargetList:
    """The scrape targets Prometheus knows and the health of their last scrape."""
    s = settings or get_settings()
    body = await _api("/api/v1/targets", {"state": "active"}, s)
    active = (body.get("data") or {}).get("activeTargets") or []
    found: list[ScrapeTarget] = []
    for item in active[: s.prometheus_max_series]:
        labels = item.get("labels") or {}
        health = str(item.get("health", "unknown"))
        last = item.get("lastScrape")
        try:
            when = datetime.fromisoformat(str(last).replace("Z", "+00:00")) if last else None
        except ValueError:
            when = None
        found.append(
            ScrapeTarget(
                job=redact_text(str(labels.get("job", item.get("scrapePool", "")))),
                instance=redact_text(str(labels.get("instance", ""))),
                health=health if health in ("up", "down") else "unknown",
                last_error=redact_text(str(item.get("lastError")))[:300]
                if item.get("lastError")
                else None,
                last_scrape=when if when and when.year > 1 else None,
            )
        )
    return TargetList(prometheus=_where(s), targets=found, total=len(active))


async def status(*, settings: Settings | None = None) -> MetricsStatus:
    """Whether ``PROMETHEUS_URL`` is set and its API answers (never an error: it says why)."""
    s = settings or get_settings()
    out = MetricsStatus(
        configured=s.prometheus_url is not None,
        prometheus=_where(s) or None,
        timeout_seconds=s.prometheus_timeout,
        max_series=s.prometheus_max_series,
        max_points=s.prometheus_max_points,
    )
    if not out.configured:
        out.error = "PROMETHEUS_URL is not set: no metrics source"
        return out
    try:
        body = await _api("/api/v1/status/buildinfo", {}, s)
    except GuildeError as exc:
        out.reachable, out.error = False, redact_text(exc.message)[:300]
        return out
    out.reachable = True
    out.version = redact_text(str((body.get("data") or {}).get("version", "")))[:40] or None
    return out
