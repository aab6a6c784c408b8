"""Adapters from the API to the other parts' logic, looked up at call time.

* circuit breakers — ``guilde_core.resilience`` (``get_registry()``);
(deep health, logs and observability are read through ``servers.health`` / ``servers.logs``).

Each returns plain JSON-ready data. When a part is not installed (or fails) the adapter
says so in its result or raises :class:`ServiceUnavailableError` — never a traceback.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from guilde_core.errors import GuildeError, NotFoundError, ServiceUnavailableError
from guilde_core.redaction import redact

__all__ = ["breaker_store_status", "circuit_control", "circuit_snapshots"]

log = logging.getLogger("dev3000.api")


def _registry() -> Any:
    from guilde_core import resilience

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


_ACTIONS = {"open": "force_open", "close": "force_close", "reset": "reset"}


async def circuit_control(
    name: str, action: str, reason: str, *, configured: list[str] | None = None
) -> dict[str, Any]:
    """Force a breaker open/closed or reset it; returns its new snapshot.

    ``name`` must be a known breaker (registered here or in Redis) or one of the
    ``configured`` services (``settings.breaker_services()``)."""
    registry = _registry()
    if registry is None:
        raise ServiceUnavailableError("circuit breakers are not available in this build")
    known = {str(s.get("name")) for s in await circuit_snapshots()}
    known.update(configured or ())
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
