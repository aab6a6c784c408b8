"""Circuit breaker diagnostics over the shared registry (``guilde_core.resilience``).

:func:`list_breakers`, :func:`get_breaker`, :func:`recent_transitions` read the registry —
Redis-backed when ``CIRCUIT_BREAKER_REDIS_URL`` is set, so breakers of other processes show;
:func:`control` forces a breaker open/closed or resets it, refused unless
``DIAGNOSTIC_CONTROL_ENABLED``.
"""

from __future__ import annotations

from typing import Any, Literal

from guilde_core.config import Settings, get_settings
from guilde_core.errors import NotFoundError, PermanentError, ServiceUnavailableError
from guilde_core.redaction import redact
from servers.circuits.models import Breaker, BreakerList, ControlResult, Transition, TransitionList

__all__ = ["control", "get_breaker", "list_breakers", "recent_transitions"]

Action = Literal["open", "close", "reset"]
_METHODS = {"open": "force_open", "close": "force_close", "reset": "reset"}


def _registry() -> Any:
    try:
        from guilde_core import resilience as module
    except ImportError:
        raise ServiceUnavailableError(
            "circuit breakers are not available in this build (guilde_core.resilience)"
        ) from None
    return module.get_registry()


def _plain(value: Any) -> dict[str, Any]:
    data = value.model_dump(mode="json") if hasattr(value, "model_dump") else dict(value)
    out: dict[str, Any] = redact(data)
    for key in ("state", "from_state", "to_state"):
        if isinstance(out.get(key), str):
            out[key] = out[key].replace("_", "-")
    return out


def _store(registry: Any) -> dict[str, Any]:
    try:
        status = registry.store_status()
    except Exception as exc:
        return {"error": type(exc).__name__}
    return _plain(status)


async def list_breakers(settings: Settings | None = None) -> BreakerList:
    """Every breaker: config, state, failures, last failure/success, seconds to half-open."""
    del settings
    registry = _registry()
    snaps = await registry.snapshots()
    items = list(snaps.values()) if isinstance(snaps, dict) else list(snaps)
    breakers = sorted((Breaker.model_validate(_plain(s)) for s in items), key=lambda b: b.name)
    return BreakerList(breakers=breakers, store=_store(registry))


async def get_breaker(name: str, settings: Settings | None = None) -> Breaker:
    known = await list_breakers(settings)
    for b in known.breakers:
        if b.name == name:
            return b
    names = ", ".join(b.name for b in known.breakers) or "none yet"
    raise NotFoundError(f"no circuit breaker named {name!r} (known: {names})")


async def recent_transitions(limit: int = 50, settings: Settings | None = None) -> TransitionList:
    del settings
    registry = _registry()
    raw = registry.recent_transitions(limit)
    if hasattr(raw, "__await__"):
        raw = await raw
    items = [Transition.model_validate(_plain(t)) for t in list(raw)[-limit:]]
    return TransitionList(transitions=items)


async def control(
    name: str, action: Action, reason: str, settings: Settings | None = None
) -> ControlResult:
    """Force ``name`` open or closed, or reset it. Needs ``DIAGNOSTIC_CONTROL_ENABLED=true``."""
    s = settings or get_settings()
    if not s.diagnostic_control_enabled:
        raise PermanentError(
            "circuit control is disabled: set DIAGNOSTIC_CONTROL_ENABLED=true to allow it"
        )
    if not reason.strip():
        raise PermanentError("a reason is required (it is recorded with the transition)")
    await get_breaker(name, s)
    registry = _registry()
    await getattr(registry, _METHODS[action])(name, reason=reason.strip())
    return ControlResult(action=action, reason=reason.strip(), breaker=await get_breaker(name, s))
