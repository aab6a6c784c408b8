"""The one decision's rules for the principals no HTTP test reaches (the local operator over
stdio and the command line), the posture it reads from settings, and the audit record."""

from __future__ import annotations

import pytest

from guilde_core.config import Settings
from guilde_core.errors import InvalidInputError
from guilde_core.http.authz import (
    ANONYMOUS,
    Caller,
    Posture,
    Principal,
    authorize_control,
    control_event,
    decide,
    exposure,
    is_loopback,
    local_operator,
)


@pytest.mark.parametrize(
    ("switch", "surface", "action", "status"),
    [
        (False, "stdio", "read", 200),
        (False, "stdio", "control", 403),
        (False, "cli", "control", 403),
        (True, "stdio", "control", 200),
        (True, "cli", "control", 200),
    ],
)
def test_the_local_operator_reads_and_controls_only_when_switched_on(
    switch: bool, surface: str, action: str, status: int
) -> None:
    posture = Posture(control_enabled=switch, exposed="DEV3000_MODE=production")
    decision = decide(local_operator(posture), action, surface, posture)  # type: ignore[arg-type]
    assert decision.status == status
    if status == 403:
        assert "DIAGNOSTIC_CONTROL_ENABLED=true" in decision.reason
        assert decision.code == "forbidden"


def test_the_posture_comes_from_the_profile_and_the_bind_address() -> None:
    assert exposure("development", "127.0.0.1") is None
    assert exposure("development", "localhost") is None
    assert exposure("development", "::1") is None
    assert exposure("staging", "127.0.0.1") == "DEV3000_MODE=staging"
    assert exposure("development", "0.0.0.0") == "bound to 0.0.0.0, not loopback"
    assert not is_loopback("10.0.0.1")
    assert is_loopback("127.0.0.2")
    posture = Posture.from_settings(Settings(dev3000_host="0.0.0.0"), bind_host="127.0.0.1")
    assert posture.exposed is None  # the address really bound decides


def test_anonymous_control_where_exposed_names_the_fix() -> None:
    exposed = Posture(exposed="DEV3000_MODE=staging")
    decision = decide(ANONYMOUS, "control", "rest", exposed)
    assert (decision.status, decision.code) == (403, "control_needs_key")
    assert "DIAGNOSTIC_API_KEYS" in decision.reason
    assert "read+control" in decision.reason
    assert decide(ANONYMOUS, "read", "rest", exposed).allowed


def test_the_gate_and_the_record() -> None:
    caller = Caller(Principal("1a2b3c4d", frozenset({"read", "control"})), "rest", Posture())
    with pytest.raises(InvalidInputError):
        authorize_control(caller, "  x ")
    why = authorize_control(caller, "  disk full ")
    event = control_event(caller, source="circuits", action="circuit_open", subject="openai",
                          reason=why, data={"state": "open"})  # fmt: skip
    assert event.kind == "control_action"
    assert event.data == {"state": "open", "action": "circuit_open", "key_id": "1a2b3c4d",
                          "surface": "rest", "reason": "disk full", "ok": True}  # fmt: skip
    assert event.summary == "circuit_open openai by 1a2b3c4d via rest (done): disk full"
