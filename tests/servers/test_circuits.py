"""The breaker adapter (``servers.circuits.logic``) and its one set of control rules, over a
real in-process registry. The surfaces' tests (REST, MCP tool, health check) only show that
each goes through these rules."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator

import pytest

from guilde_core.config import BreakerConfig, Settings
from guilde_core.errors import InvalidInputError, NotFoundError
from guilde_core.events import TimelineEvent
from guilde_core.http.authz import (
    ANONYMOUS,
    Caller,
    ControlDisabled,
    Forbidden,
    Posture,
    Principal,
)
from guilde_core.resilience import BreakerRegistry, BreakerState, get_registry, reset_registry
from servers.circuits import logic
from servers.circuits.models import BreakerList, ControlResult

FAST = BreakerConfig(
    failure_threshold=1, recovery_timeout=0.05, half_open_requests=1, success_threshold=2
)
ENABLED = Settings(diagnostic_control_enabled=True)
#: a control key over REST (the control switch is MCP's: off here)
OPERATOR = Caller(Principal("1a2b3c4d", frozenset({"read", "control"})), "rest", Posture())
#: the same key over MCP, with the switch on
MCP_OPERATOR = Caller(OPERATOR.principal, "mcp", Posture(control_enabled=True))


@pytest.fixture
def registry() -> Iterator[BreakerRegistry]:
    reset_registry(BreakerRegistry())
    yield get_registry()
    reset_registry()


async def _fail() -> None:
    raise ConnectionError("upstream refused, token=sk-live-abcdefghijklmnop1234")


async def _ok() -> None:
    return None


async def _open(reg: BreakerRegistry, name: str) -> None:
    with contextlib.suppress(ConnectionError):
        await reg.breaker(name, FAST).call(_fail)


async def _half_open(reg: BreakerRegistry, name: str) -> None:
    await _open(reg, name)
    await asyncio.sleep(0.06)
    await reg.breaker(name).call(_ok)  # one trial success of two: still half-open


async def _forced_open(reg: BreakerRegistry, name: str) -> None:
    reg.breaker(name, FAST)
    await reg.force_open(name, reason="setup")


async def _forced_closed(reg: BreakerRegistry, name: str) -> None:
    reg.breaker(name, FAST)
    await reg.force_close(name, reason="setup")


async def _disabled(reg: BreakerRegistry, name: str) -> None:
    reg.breaker(name, FAST)
    await reg.disable(name, reason="setup")


async def _closed(reg: BreakerRegistry, name: str) -> None:
    reg.breaker(name, FAST)


STARTS: dict[str, Callable[[BreakerRegistry, str], Awaitable[None]]] = {
    "closed": _closed,
    "open": _open,
    "half-open": _half_open,
    "forced open": _forced_open,
    "forced closed": _forced_closed,
    "disabled": _disabled,
}


def test_health_status_of_every_state(registry: BreakerRegistry) -> None:
    expected = {
        "closed": "healthy",
        "half-open": "degraded",
        "forced closed": "degraded",  # calls go through unprotected, like disabled
        "disabled": "degraded",
        "open": "unhealthy",
        "forced open": "unhealthy",
    }

    names = {start: f"svc{i}" for i, start in enumerate(STARTS)}

    async def scenario() -> dict[str, str]:
        for start, make in STARTS.items():
            await make(registry, names[start])
        listed = await logic.list_breakers()
        return {b.name: b.status for b in listed.breakers}

    seen = asyncio.run(scenario())
    assert {start: seen[name] for start, name in names.items()} == expected


@pytest.mark.parametrize("start", list(STARTS))
@pytest.mark.parametrize("action", ["open", "close", "reset"])
def test_every_action_is_allowed_from_every_state(
    registry: BreakerRegistry, start: str, action: logic.Action
) -> None:
    async def scenario() -> ControlResult:
        await STARTS[start](registry, "svc")
        return await logic.control(
            "svc", action, caller=OPERATOR, reason="planned maintenance", settings=ENABLED
        )

    breaker = asyncio.run(scenario()).breaker
    state, forced = {"open": ("open", True), "close": ("closed", True)}.get(
        action, ("closed", False)
    )
    assert (breaker.state.value, breaker.forced, breaker.disabled) == (state, forced, False)
    assert breaker.failure_count == 0 or action == "open"


def test_the_one_gate_stands_in_front_of_the_adapter(registry: BreakerRegistry) -> None:
    """Whatever the surface, the adapter asks the one decision first: MCP control needs the
    switch, every surface needs the control scope; ``disable`` is the command line's only."""
    registry.breaker("svc")
    reader = Caller(Principal("5e6f7a8b", frozenset({"read"})), "rest", Posture())
    switch_off = Caller(OPERATOR.principal, "mcp", Posture())

    async def scenario() -> None:
        with pytest.raises(ControlDisabled, match="DIAGNOSTIC_CONTROL_ENABLED"):
            await logic.control("svc", "open", caller=switch_off, reason="outage")
        with pytest.raises(Forbidden, match="control"):
            await logic.control("svc", "open", caller=reader, reason="outage", settings=ENABLED)
        # the REST surface authorizes by key scope; the MCP switch does not apply to it
        rest = await logic.control("svc", "open", caller=OPERATOR, reason="outage")
        assert rest.breaker.state is BreakerState.OPEN
        mcp = await logic.control("svc", "reset", caller=MCP_OPERATOR, reason="over")
        assert mcp.actor == "1a2b3c4d"
        with pytest.raises(InvalidInputError, match="unknown action 'disable'"):
            await logic.control("svc", "disable", caller=OPERATOR, reason="noisy")
        cli = Caller.local(Posture(control_enabled=True), surface="cli")
        disabled = await logic.control("svc", "disable", caller=cli, reason="noisy")
        assert (disabled.action, disabled.actor, disabled.breaker.disabled) == (
            "disable",
            "local",
            True,
        )
        with pytest.raises(Forbidden, match="DIAGNOSTIC_CONTROL_ENABLED"):
            await logic.control("svc", "reset", caller=Caller.local(Posture(), "cli"), reason="x1")

    asyncio.run(scenario())


def test_reason_is_trimmed_and_bounded(registry: BreakerRegistry) -> None:
    registry.breaker("svc")

    async def control(reason: str) -> ControlResult:
        return await logic.control("svc", "open", caller=OPERATOR, reason=reason, settings=ENABLED)

    for bad in ("", "   ", "  ab  ", "x" * (logic.REASON_MAX + 1)):
        with pytest.raises(InvalidInputError, match="reason"):
            asyncio.run(control(bad))
    assert asyncio.run(control("   db  failover \n")).reason == "db  failover"
    assert registry.recent_transitions()[-1].reason == "force open: db  failover"


def test_names_known_configured_or_refused(registry: BreakerRegistry) -> None:
    registry.breaker("payments")

    async def scenario() -> None:
        for bad in ("has space", "a/b", "x" * (logic.NAME_MAX + 1)):
            with pytest.raises(InvalidInputError, match="name"):
                await logic.control(bad, "open", caller=OPERATOR, reason="outage", settings=ENABLED)
        with pytest.raises(NotFoundError, match=r"ghost.*known: .*payments") as missing:
            await logic.get_breaker("ghost", ENABLED)
        assert "openai" in str(missing.value)  # configured services are known too
        with pytest.raises(NotFoundError):
            await logic.control("ghost", "open", caller=OPERATOR, reason="outage", settings=ENABLED)
        # a configured service no call has used yet reads as closed, without being created …
        idle = await logic.get_breaker("openai", ENABLED)
        assert (idle.state, idle.failure_count, idle.status) == (BreakerState.CLOSED, 0, "healthy")
        assert idle.config.failure_threshold == 3  # the built-in openai settings
        assert "openai" not in registry.names()
        # … and may be forced before its first call
        forced = await logic.control(
            "openai", "open", caller=OPERATOR, reason="provider outage", settings=ENABLED
        )
        assert forced.breaker.state is BreakerState.OPEN
        assert "openai" in registry.names()

    asyncio.run(scenario())


def test_accepted_actions_are_recorded_refused_ones_not(registry: BreakerRegistry) -> None:
    registry.breaker("payments")
    events: list[TimelineEvent] = []

    async def scenario() -> None:
        await logic.control(
            "payments", "open", caller=MCP_OPERATOR, reason="gateway down", settings=ENABLED,
            audit=events.append,
        )  # fmt: skip
        with pytest.raises(InvalidInputError):
            await logic.control(
                "payments", "close", caller=MCP_OPERATOR, reason="no", settings=ENABLED,
                audit=events.append,
            )  # fmt: skip
        with pytest.raises(Forbidden):
            await logic.control(
                "payments", "close", caller=Caller(ANONYMOUS, "rest", Posture(exposed="staging")),
                reason="not allowed", audit=events.append,
            )  # fmt: skip

    asyncio.run(scenario())
    (event,) = events
    assert (event.kind, event.source, event.subject) == ("control_action", "circuits", "payments")
    assert event.data == {
        "action": "circuit_open",
        "reason": "gateway down",
        "key_id": "1a2b3c4d",
        "surface": "mcp",
        "ok": True,
        "state": "open",
    }
    assert event.summary == "circuit_open payments by 1a2b3c4d via mcp (done): gateway down"


def test_reads_are_redacted_and_judged(registry: BreakerRegistry) -> None:
    async def scenario() -> BreakerList:
        await _open(registry, "payments")
        return await logic.list_breakers()

    listed = asyncio.run(scenario())
    (breaker,) = listed.breakers
    assert breaker.last_error is not None
    assert "ConnectionError" in breaker.last_error
    assert "sk-live-abcdefghijklmnop1234" not in breaker.model_dump_json()
    assert breaker.status == "unhealthy"
    assert (listed.store.backend, listed.store.status) == ("memory", "healthy")
    transitions = asyncio.run(logic.recent_transitions(10)).transitions
    assert [t.to_state for t in transitions] == [BreakerState.OPEN]
    assert "sk-live-abcdefghijklmnop1234" not in transitions[0].reason
