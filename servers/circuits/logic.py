"""The one adapter over the circuit breakers of ``guilde_core.resilience``, with the one set
of control rules. The REST API (``/api/v1/diag/circuits``), the circuits MCP tools, the
health checks (``external_api`` targets, the deep report's ``external_apis``) and the system
area's full status all read and control breakers through here.

Reading: :func:`list_breakers`, :func:`get_breaker`, :func:`recent_transitions`,
:func:`store_status` read the process-wide registry — Redis-backed when
``CIRCUIT_BREAKER_REDIS_URL`` is set, so breakers of other processes show. Every breaker is a
redacted :class:`~servers.circuits.models.Breaker`: the registry's snapshot plus its health
:func:`breaker_status`.

Control rules, applied by :func:`control` in this order:

1. **Who** (:func:`authorize`): the :class:`Actor` names its surface and the scopes that
   surface's authentication granted. An actor needs the ``control`` scope; the surfaces in
   :data:`SWITCHED_SURFACES` (MCP: its calls carry no per-call principal yet) also need
   ``DIAGNOSTIC_CONTROL_ENABLED=true``.
2. **Reason**: required; surrounding whitespace is removed, then it must be
   :data:`REASON_MIN`-:data:`REASON_MAX` characters.
3. **Name**: :data:`NAME_PATTERN`, at most :data:`NAME_MAX` characters, and known — a
   breaker of the registry (this process or Redis) or a configured service
   (``CB_<SERVICE>_*`` or a built-in), which may be forced before its first call.
4. **Actions and states** (:data:`ACTIONS`): ``open`` forces it open (calls fail fast, no
   half-open), ``close`` forces it closed (calls go through whatever fails), ``reset``
   closes it with zero counts and clears forcing and disabling. Each is allowed from every
   state; only ``reset`` ends a forced state. Disabling is not one of them (the operator
   CLI, ``dev3000 breakers set … disable``).
5. **Record**: every accepted action gives one ``circuit_control`` timeline event (actor,
   action, reason) to the caller's ``audit`` sink.

Health (:func:`breaker_status`): closed → healthy; half-open, forced closed or disabled →
degraded (calls go through unprotected); open or forced open → unhealthy.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, NamedTuple

from guilde_core.config import Settings, get_settings
from guilde_core.errors import (
    AuthenticationError,
    GuildeError,
    InvalidInputError,
    NotFoundError,
    ServiceUnavailableError,
)
from guilde_core.events import TimelineEvent, make_event
from guilde_core.redaction import redact
from guilde_core.resilience import (
    BreakerRegistry,
    BreakerSnapshot,
    BreakerState,
    CircuitBreaker,
    get_registry,
)
from servers.circuits.models import (
    Action,
    Breaker,
    BreakerList,
    BreakerStore,
    ControlResult,
    TransitionList,
)
from servers.health.models import Status

__all__ = [
    "ACTIONS",
    "NAME_MAX",
    "NAME_PATTERN",
    "REASON_MAX",
    "REASON_MIN",
    "SWITCHED_SURFACES",
    "Action",
    "Actor",
    "AuditSink",
    "ControlDisabledError",
    "ControlForbiddenError",
    "Surface",
    "authorize",
    "breaker_status",
    "control",
    "control_event",
    "get_breaker",
    "list_breakers",
    "recent_transitions",
    "store_status",
]

Surface = Literal["rest", "mcp"]
#: surfaces whose control also needs ``DIAGNOSTIC_CONTROL_ENABLED=true``
SWITCHED_SURFACES: frozenset[Surface] = frozenset({"mcp"})

NAME_PATTERN = r"^[A-Za-z0-9_.:\-]+$"
NAME_MAX = 128
REASON_MIN = 3
REASON_MAX = 500
_NAME = re.compile(NAME_PATTERN)

#: receives the ``circuit_control`` event of every accepted action (e.g. ``bus.publish``)
AuditSink = Callable[[TimelineEvent], object]


class _Method(NamedTuple):
    apply: Callable[..., Awaitable[BreakerSnapshot]]
    effect: str


ACTIONS: dict[Action, _Method] = {
    "open": _Method(
        BreakerRegistry.force_open, "forced open: calls fail fast until closed or reset"
    ),
    "close": _Method(BreakerRegistry.force_close, "forced closed: calls go through until reset"),
    "reset": _Method(
        BreakerRegistry.reset, "closed with zero counts; forcing and disabling cleared"
    ),
}


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asks for a control action, through which surface, with which scopes.

    ``id`` is recorded with the action (an API key id, ``anonymous``, ``mcp``); ``scopes``
    are what the surface's authentication granted.
    """

    id: str
    surface: Surface
    scopes: frozenset[str]

    @classmethod
    def mcp(cls) -> Actor:
        """An MCP tool call: no per-call principal yet, so ``DIAGNOSTIC_CONTROL_ENABLED``
        alone decides (:data:`SWITCHED_SURFACES`)."""
        return cls(id="mcp", surface="mcp", scopes=frozenset({"read", "control"}))


class ControlDisabledError(AuthenticationError):
    """Control through this surface is switched off (``DIAGNOSTIC_CONTROL_ENABLED``)."""

    code = "control_disabled"
    http_status = 403


class ControlForbiddenError(AuthenticationError):
    """The actor lacks the ``control`` scope."""

    code = "forbidden"
    http_status = 403


# --- reading ---------------------------------------------------------------------------------
def breaker_status(snapshot: BreakerSnapshot) -> Status:
    """What a breaker's state means for the health of the dependency it protects."""
    if snapshot.state is BreakerState.OPEN:
        return "unhealthy"
    if snapshot.state is BreakerState.HALF_OPEN or snapshot.disabled or snapshot.forced:
        return "degraded"
    return "healthy"


def _breaker(snapshot: BreakerSnapshot) -> Breaker:
    data = redact(snapshot.model_dump(mode="json"))
    return Breaker.model_validate({**data, "status": breaker_status(snapshot)})


def _idle(registry: BreakerRegistry, name: str) -> BreakerSnapshot:
    """A configured breaker no call has used yet: what the registry will report for it."""
    remote = registry.remote
    backend: Literal["memory", "redis", "memory-fallback"] = (
        "memory" if remote is None else "memory-fallback" if remote.degraded else "redis"
    )
    return CircuitBreaker(name, registry).local_snapshot(backend)


def store_status() -> BreakerStore:
    """Where breaker state lives and whether that store is reachable."""
    raw = get_registry().store_status()
    status: Literal["healthy", "degraded"] = (
        "degraded" if raw.degraded or not raw.connected else "healthy"
    )
    return BreakerStore.model_validate({**redact(raw.model_dump(mode="json")), "status": status})


async def list_breakers(settings: Settings | None = None) -> BreakerList:
    """Every breaker in use (this process's and, with Redis, other processes'), by name."""
    del settings
    registry = get_registry()
    snaps = await registry.snapshots()
    breakers = sorted((_breaker(s) for s in snaps), key=lambda b: b.name)
    return BreakerList(breakers=breakers, store=store_status())


async def get_breaker(name: str, settings: Settings | None = None) -> Breaker:
    """One breaker: in the registry, or a configured service not used yet (closed, no
    calls). Unknown names raise :class:`NotFoundError` listing the known ones."""
    s = settings or get_settings()
    registry = get_registry()
    try:
        return _breaker(await registry.snapshot(name))
    except NotFoundError:
        pass
    configured = s.breaker_services()
    if name in configured:
        return _breaker(_idle(registry, name))
    known = sorted({b.name for b in (await list_breakers(s)).breakers} | set(configured))
    raise NotFoundError(
        f"no circuit breaker named {redact(name)!r} (known: {', '.join(known) or 'none'})"
    )


async def recent_transitions(limit: int = 50, settings: Settings | None = None) -> TransitionList:
    """The last ``limit`` transitions seen by this process, oldest first."""
    del settings
    items = get_registry().recent_transitions(limit)
    return TransitionList.model_validate(
        {"transitions": [redact(t.model_dump(mode="json")) for t in items]}
    )


# --- control ---------------------------------------------------------------------------------
def authorize(actor: Actor, settings: Settings) -> None:
    """Rule 1: may ``actor`` control breakers at all?"""
    if actor.surface in SWITCHED_SURFACES and not settings.diagnostic_control_enabled:
        raise ControlDisabledError(
            f"circuit control through {actor.surface.upper()} is disabled: "
            "set DIAGNOSTIC_CONTROL_ENABLED=true to allow it"
        )
    if "control" not in actor.scopes:
        raise ControlForbiddenError(f"{actor.id} lacks the 'control' scope")


def _reason(reason: str) -> str:
    text = reason.strip()
    if not REASON_MIN <= len(text) <= REASON_MAX:
        raise InvalidInputError(
            f"a reason of {REASON_MIN}-{REASON_MAX} characters is required "
            "(it is recorded with the action)"
        )
    return text


def _check_name(name: str) -> None:
    if not 1 <= len(name) <= NAME_MAX or not _NAME.match(name):
        raise InvalidInputError(
            f"a breaker name is 1-{NAME_MAX} letters, digits or _ . : - characters"
        )


def control_event(result: ControlResult, actor: Actor) -> TimelineEvent:
    """The ``circuit_control`` timeline event recording ``result``."""
    name = result.breaker.name
    return make_event(
        source="circuits",
        kind="circuit_control",
        subject=name,
        severity="warning",
        summary=f"circuit {name} {result.action} by {actor.id}: {result.reason}"[:300],
        data={
            "action": result.action,
            "reason": result.reason,
            "actor": actor.id,
            "surface": actor.surface,
            "state": result.breaker.state.value,
        },
    )


async def control(
    name: str,
    action: Action,
    *,
    actor: Actor,
    reason: str,
    settings: Settings | None = None,
    audit: AuditSink | None = None,
) -> ControlResult:
    """Apply ``action`` to breaker ``name`` under the module's control rules; the breaker
    after it. Refusals are typed errors (403 / 422 / 404 as problems, MCP tool errors)."""
    s = settings or get_settings()
    authorize(actor, s)
    why = _reason(reason)
    _check_name(name)
    if action not in ACTIONS:
        raise InvalidInputError(f"unknown action {action!r}: use one of {', '.join(ACTIONS)}")
    await get_breaker(name, s)
    registry = get_registry()
    try:
        snapshot = await ACTIONS[action].apply(registry, name, reason=why)
    except GuildeError:
        raise
    except Exception as exc:
        raise ServiceUnavailableError(f"circuit control failed: {type(exc).__name__}") from None
    result = ControlResult(action=action, reason=why, actor=actor.id, breaker=_breaker(snapshot))
    if audit is not None:
        audit(control_event(result, actor))
    return result
