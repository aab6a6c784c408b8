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
from guilde_core.resilience import BreakerRegistry, BreakerState, get_registry, reset_registry
from servers.circuits import logic
from servers.circuits.logic import Actor, ControlDisabledError, ControlForbiddenError
from servers.circuits.models import BreakerList, ControlResult

FAST = BreakerConfig(
    failure_threshold=1, recovery_timeout=0.05, half_open_requests=1, success_threshold=2
)
ENABLED = Settings(diagnostic_control_enabled=True)
OPERATOR = Actor(id="1a2b3c4d", surface="rest", scopes=frozenset({"read", "control"}))


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
            "svc", action, actor=OPERATOR, reason="planned maintenance", settings=ENABLED
        )

    breaker = asyncio.run(scenario()).breaker
    state, forced = {"open": ("open", True), "close": ("closed", True)}.get(
        action, ("closed", False)
    )
    assert (breaker.state.value, breaker.forced, breaker.disabled) == (state, forced, False)
    assert breaker.failure_count == 0 or action == "open"


def test_mcp_needs_the_switch_rest_needs_the_scope(registry: BreakerRegistry) -> None:
    registry.breaker("svc")
    reader = Actor(id="5e6f7a8b", surface="rest", scopes=frozenset({"read"}))

    async def scenario() -> None:
        with pytest.raises(ControlDisabledError, match="DIAGNOSTIC_CONTROL_ENABLED"):
            await logic.control(
                "svc", "open", actor=Actor.mcp(), reason="outage", settings=Settings()
            )
        with pytest.raises(ControlForbiddenError, match="control"):
            await logic.control("svc", "open", actor=reader, reason="outage", settings=ENABLED)
        # the REST surface authorizes by key scope; the MCP switch does not apply to it
        rest = await logic.control(
            "svc", "open", actor=OPERATOR, reason="outage", settings=Settings()
        )
        assert rest.breaker.state is BreakerState.OPEN
        mcp = await logic.control(
            "svc", "reset", actor=Actor.mcp(), reason="over", settings=ENABLED
        )
        assert mcp.actor == "mcp"

    asyncio.run(scenario())


def test_reason_is_trimmed_and_bounded(registry: BreakerRegistry) -> None:
    registry.breaker("svc")

    async def control(reason: str) -> ControlResult:
        return await logic.control("svc", "open", actor=OPERATOR, reason=reason, settings=ENABLED)

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
                await logic.control(bad, "open", actor=OPERATOR, reason="outage", settings=ENABLED)
        with pytest.raises(NotFoundError, match=r"ghost.*known: .*payments") as missing:
            await logic.get_breaker("ghost", ENABLED)
        assert "openai" in str(missing.value)  # configured services are known too
        with pytest.raises(NotFoundError):
            await logic.control("ghost", "open", actor=OPERATOR, reason="outage", settings=ENABLED)
        # a configured service no call has used yet reads as closed, without being created …
        idle = await logic.get_breaker("openai", ENABLED)
        assert (idle.state, idle.failure_count, idle.status) == (BreakerState.CLOSED, 0, "healthy")
        assert idle.config.failure_threshold == 3  # the built-in openai settings
        assert "openai" not in registry.names()
        # … and may be forced before its first call
        forced = await logic.control(
            "openai", "open", actor=OPERATOR, reason="provider outage", settings=ENABLED
        )
        assert forced.breaker.state is BreakerState.OPEN
        assert "openai" in registry.names()

    asyncio.run(scenario())


def test_accepted_actions_are_recorded_refused_ones_not(registry: BreakerRegistry) -> None:
    registry.breaker("payments")
    events: list[TimelineEvent] = []

    async def scenario() -> None:
        await logic.control(
            "payments", "open", actor=Actor.mcp(), reason="gateway down", settings=ENABLED,
            audit=events.append,
        )  # fmt: skip
        with pytest.raises(InvalidInputError):
            await logic.control(
                "payments", "close", actor=Actor.mcp(), reason="no", settings=ENABLED,
                audit=events.append,
            )  # fmt: skip

    asyncio.run(scenario())
    (event,) = events
    assert (event.kind, event.source, event.subject) == ("circuit_control", "circuits", "payments")
    assert event.data == {
        "action": "open",
        "reason": "gateway down",
        "actor": "mcp",
        "surface": "mcp",
        "state": "open",
    }
    assert event.summary == "circuit payments open by mcp: gateway down"


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
