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

1. **Who**: the caller (:class:`~guilde_core.http.authz.Caller`: principal, surface,
   posture) passes the one gate, :func:`guilde_core.http.authz.authorize_control` — the
   same decision for REST, every MCP call, stdio and the command line — which also checks
   rule 2.
2. **Reason**: required; surrounding whitespace is removed, then it must be
   :data:`REASON_MIN`-:data:`REASON_MAX` characters.
3. **Name**: :data:`NAME_PATTERN`, at most :data:`NAME_MAX` characters, and known — a
   breaker of the registry (this process or Redis) or a configured service
   (``CB_<SERVICE>_*`` or a built-in), which may be forced before its first call.
4. **Actions and states** (:data:`ACTIONS`): ``open`` forces it open (calls fail fast, no
   half-open), ``close`` forces it closed (calls go through whatever fails), ``reset``
   closes it with zero counts and clears forcing and disabling. Each is allowed from every
   state; only ``reset`` ends a forced state. ``disable`` (:data:`OPERATOR_ACTIONS`: calls
   go through unprotected and uncounted) only from the command line.
5. **Record**: every accepted action, done or failed, gives one ``control_action`` timeline
   event (:func:`guilde_core.http.authz.control_event`: surface, key id, action, reason,
   outcome) to the caller's ``audit`` sink.

Health (:func:`breaker_status`): closed → healthy; half-open, forced closed or disabled →
degraded (calls go through unprotected); open or forced open → unhealthy.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Literal, NamedTuple

from guilde_core.config import Settings, get_settings
from guilde_core.errors import (
    GuildeError,
    InvalidInputError,
    NotFoundError,
    ServiceUnavailableError,
)
from guilde_core.events import TimelineEvent
from guilde_core.http.authz import (
    REASON_MAX,
    REASON_MIN,
    Caller,
    authorize_control,
    control_event,
)
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
    OperatorAction,
    TransitionList,
)
from servers.health.models import Status

__all__ = [
    "ACTIONS",
    "NAME_MAX",
    "NAME_PATTERN",
    "OPERATOR_ACTIONS",
    "REASON_MAX",
    "REASON_MIN",
    "Action",
    "AuditSink",
    "breaker_status",
    "control",
    "get_breaker",
    "list_breakers",
    "recent_transitions",
    "store_status",
]

NAME_PATTERN = r"^[A-Za-z0-9_.:\-]+$"
NAME_MAX = 128
_NAME = re.compile(NAME_PATTERN)

#: receives the ``control_action`` event of every accepted action (e.g. ``bus.publish``)
AuditSink = Callable[[TimelineEvent], object]


class _Method(NamedTuple):
    apply: Callable[..., Awaitable[BreakerSnapshot]]
    effect: str


_OPEN = _Method(BreakerRegistry.force_open, "forced open: calls fail fast until closed or reset")
_CLOSE = _Method(BreakerRegistry.force_close, "forced closed: calls go through until reset")
_RESET = _Method(BreakerRegistry.reset, "closed with zero counts; forcing and disabling cleared")
ACTIONS: dict[Action, _Method] = {"open": _OPEN, "close": _CLOSE, "reset": _RESET}
#: what the operator at the command line may do: :data:`ACTIONS` and ``disable``
OPERATOR_ACTIONS: dict[OperatorAction, _Method] = {
    "open": _OPEN,
    "close": _CLOSE,
    "reset": _RESET,
    "disable": _Method(
        BreakerRegistry.disable, "disabled: calls go through unprotected and uncounted"
    ),
}


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
def _check_name(name: str) -> None:
    if not 1 <= len(name) <= NAME_MAX or not _NAME.match(name):
        raise InvalidInputError(
            f"a breaker name is 1-{NAME_MAX} letters, digits or _ . : - characters"
        )


def _method(action: OperatorAction, caller: Caller) -> _Method:
    allowed = {
        name: method
        for name, method in OPERATOR_ACTIONS.items()
        if caller.surface == "cli" or name in ACTIONS
    }
    if action not in allowed:
        raise InvalidInputError(f"unknown action {action!r}: use one of {', '.join(allowed)}")
    return allowed[action]


async def control(
    name: str,
    action: OperatorAction,
    *,
    caller: Caller,
    reason: str,
    settings: Settings | None = None,
    audit: AuditSink | None = None,
) -> ControlResult:
    """Apply ``action`` to breaker ``name`` under the module's control rules; the breaker
    after it. Refusals are typed errors (401 / 403 / 422 / 404 as problems, MCP tool errors)."""
    s = settings or get_settings()
    why = authorize_control(caller, reason)
    _check_name(name)
    method = _method(action, caller)
    await get_breaker(name, s)
    registry = get_registry()

    def record(ok: bool, state: str | None) -> None:
        if audit is not None:
            audit(
                control_event(
                    caller,
                    source="circuits",
                    action=f"circuit_{action}",
                    subject=name,
                    reason=why,
                    ok=ok,
                    data={"state": state},
                )
            )

    try:
        snapshot = await method.apply(registry, name, reason=why)
    except Exception as exc:
        record(False, None)
        if isinstance(exc, GuildeError):
            raise
        raise ServiceUnavailableError(f"circuit control failed: {type(exc).__name__}") from None
    breaker = _breaker(snapshot)
    record(True, breaker.state.value)
    return ControlResult(action=action, reason=why, actor=caller.principal.key_id, breaker=breaker)
