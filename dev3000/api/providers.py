"""Adapters from the API to the other parts' logic, looked up at call time.

* circuit breakers — ``guilde_core.resilience`` (``get_registry()``);
* observability — ``guilde_core.observability.observability_status()``;
* logs search — ``servers.logs.logic``.

Each returns plain JSON-ready data. When a part is not installed (or fails) the adapter
says so in its result or raises :class:`ServiceUnavailableError` — never a traceback.
"""

from __future__ import annotations

import importlib
import logging
from datetime import datetime
from typing import Any

from prometheus_client import REGISTRY

from guilde_core.errors import GuildeError, NotFoundError, ServiceUnavailableError
from guilde_core.redaction import redact

__all__ = [
    "breaker_store_status",
    "circuit_control",
    "circuit_health",
    "circuit_snapshots",
    "observability_summary",
    "request_metrics",
]

log = logging.getLogger("dev3000.api")


def _module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _registry() -> Any:
    resilience = _module("guilde_core.resilience")
    if resilience is None or not hasattr(resilience, "get_registry"):
        return None
    return resilience.get_registry()


def _jsonable(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "value") and isinstance(value.value, str):  # enums
        return value.value
    return value


def breaker_store_status() -> dict[str, Any] | None:
    """Where breaker state lives and whether that store is reachable."""
    try:
        registry = _registry()
        if registry is None:
            return None
        raw = _jsonable(registry.store_status())
    except Exception as exc:
        return {"status": "degraded", "error": type(exc).__name__}
    if not isinstance(raw, dict):
        return None
    status = "degraded" if raw.get("degraded") or raw.get("connected") is False else "healthy"
    return {"status": status, **raw}


async def circuit_snapshots() -> list[dict[str, Any]]:
    """Every breaker (incl. other processes' through Redis) as JSON."""
    registry = _registry()
    if registry is None:
        raise ServiceUnavailableError("circuit breakers are not available in this build")
    snaps = await registry.snapshots()
    items = list(snaps.values()) if isinstance(snaps, dict) else list(snaps)
    out = [_jsonable(s) for s in items]
    out.sort(key=lambda s: str(s.get("name", "")))
    result: list[dict[str, Any]] = redact(out)
    return result


async def circuit_health() -> dict[str, Any]:
    """``checks.external_apis`` of the deep report: one entry per breaker."""
    try:
        snaps = await circuit_snapshots()
    except Exception as exc:
        log.debug("breakers unavailable for deep health: %s", exc)
        return {}
    out: dict[str, Any] = {}
    for snap in snaps:
        state = str(snap.get("state", "closed")).replace("_", "-")
        status = {"closed": "healthy", "half-open": "degraded"}.get(state, "unhealthy")
        if snap.get("disabled"):
            status = "degraded"
        entry: dict[str, Any] = {"status": status, "circuit_state": state}
        for key in ("failure_count", "failures", "last_failure", "last_success"):
            if key in snap and snap[key] is not None:
                entry["failure_count" if key == "failures" else key] = snap[key]
        out[str(snap.get("name"))] = entry
    return out


_ACTIONS = {"open": "force_open", "close": "force_close", "reset": "reset"}


async def circuit_control(name: str, action: str, reason: str) -> dict[str, Any]:
    """Force a breaker open/closed or reset it; returns its new snapshot."""
    registry = _registry()
    if registry is None:
        raise ServiceUnavailableError("circuit breakers are not available in this build")
    known = {str(s.get("name")) for s in await circuit_snapshots()}
    if name not in known:
        raise NotFoundError(f"no circuit breaker named {name!r}")
    method = getattr(registry, _ACTIONS[action])
    try:
        result = await method(name, reason=reason)
    except GuildeError:
        raise
    except Exception as exc:
        raise ServiceUnavailableError(f"circuit control failed: {type(exc).__name__}") from None
    if result is None:
        result = await registry.snapshot(name)
    out: dict[str, Any] = redact(_jsonable(result))
    return out


def observability_summary() -> dict[str, Any]:
    """``checks.observability``: Logfire and Sentry as engineer B's module reports them."""
    module = _module("guilde_core.observability")
    if module is None or not hasattr(module, "observability_status"):
        return {}
    try:
        raw = _jsonable(module.observability_status())
    except Exception as exc:
        return {"error": type(exc).__name__}
    return raw if isinstance(raw, dict) else {"value": raw}


def _quantile(buckets: list[tuple[float, float]], total: float, q: float) -> float | None:
    if total <= 0:
        return None
    rank = q * total
    for upper, count in buckets:
        if count >= rank:
            return upper
    return None


def request_metrics() -> dict[str, Any]:
    """``metrics`` of the deep report, from dev3000's own request counters."""
    total = errors = 0.0
    buckets: dict[float, float] = {}
    count = 0.0
    for family in REGISTRY.collect():
        if family.name == "dev3000_http_requests":
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    total += sample.value
                    if sample.labels.get("status", "").startswith("5"):
                        errors += sample.value
        elif family.name == "dev3000_http_request_duration_seconds":
            for sample in family.samples:
                if sample.name.endswith("_bucket"):
                    upper = float(sample.labels["le"])
                    buckets[upper] = buckets.get(upper, 0.0) + sample.value
                elif sample.name.endswith("_count"):
                    count += sample.value
    ordered = sorted(buckets.items())
    p50 = _quantile(ordered, count, 0.5)
    p99 = _quantile(ordered, count, 0.99)
    return {
        "requests_total": int(total),
        "error_rate_percent": round(100 * errors / total, 3) if total else 0.0,
        "p50_latency_ms": None if p50 is None or p50 == float("inf") else p50 * 1000,
        "p99_latency_ms": None if p99 is None or p99 == float("inf") else p99 * 1000,
    }
