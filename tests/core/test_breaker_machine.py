"""The pure state machine, driven with plain numbers (no clock, no I/O)."""

from __future__ import annotations

from guilde_core.resilience import BreakerState, Machine
from tests.core.conftest import small_config

CFG = small_config(failure_threshold=3, recovery_timeout=10, half_open_requests=2)


def _open(m: Machine, now: float = 0.0) -> None:
    for _ in range(3):
        m.failure(now, CFG, False, "boom")
    assert m.state is BreakerState.OPEN


def test_opens_after_threshold_consecutive_failures() -> None:
    m = Machine()
    assert m.failure(0, CFG, False, "e") is None
    assert m.failure(0, CFG, False, "e") is None
    m.success(0, CFG, False)  # a success resets the consecutive count
    assert m.failure_count == 0
    m.failure(0, CFG, False, "e")
    m.failure(0, CFG, False, "e")
    change = m.failure(1.5, CFG, False, "e")
    assert change is not None
    assert change[:2] == (BreakerState.CLOSED, BreakerState.OPEN)
    assert m.opened_at == 1.5


def test_open_rejects_until_recovery_timeout_then_half_opens() -> None:
    m = Machine()
    _open(m, now=100.0)
    adm = m.admit(105.0, CFG)
    assert not adm.admitted
    assert adm.retry_at == 110.0
    adm = m.admit(110.0, CFG)
    assert adm.admitted
    assert adm.trial
    assert adm.change is not None
    assert adm.change[1] is BreakerState.HALF_OPEN


def test_half_open_admits_at_most_the_limit_and_frees_slots() -> None:
    m = Machine()
    _open(m)
    admitted = [m.admit(20.0, CFG) for _ in range(5)]
    assert [a.admitted for a in admitted] == [True, True, False, False, False]
    m.ignored(trial=True)  # an ignored outcome frees its slot without counting
    assert m.admit(20.0, CFG).admitted
    assert m.success_count == 0


def test_success_threshold_closes_and_failure_reopens() -> None:
    m = Machine()
    _open(m)
    m.admit(20.0, CFG)
    m.admit(20.0, CFG)
    assert m.success(21.0, CFG, True) is None
    change = m.success(21.0, CFG, True)
    assert change is not None
    assert change[1] is BreakerState.CLOSED
    assert (m.failure_count, m.opened_at) == (0, None)

    _open(m, now=30.0)
    m.admit(40.0, CFG)
    change = m.failure(41.0, CFG, True, "still down")
    assert change is not None
    assert change[:2] == (BreakerState.HALF_OPEN, BreakerState.OPEN)
    assert m.opened_at == 41.0


def test_outcomes_of_non_trial_calls_do_not_move_half_open() -> None:
    m = Machine()
    _open(m)
    m.admit(20.0, CFG)
    # a call admitted while closed that finishes now must not close or reopen the breaker
    assert m.success(21.0, CFG, False) is None
    assert m.failure(21.0, CFG, False, "late") is None
    assert m.state is BreakerState.HALF_OPEN


def test_manual_control() -> None:
    m = Machine()
    m.force_open(0.0)
    assert not m.admit(10_000.0, CFG).admitted  # forced open never half-opens
    m.force_close()
    for _ in range(10):
        m.failure(1.0, CFG, False, "e")
    assert m.state is BreakerState.CLOSED  # forced closed never opens
    m.reset()
    assert (m.forced, m.disabled, m.failure_count) == (None, False, 0)
    m.disable()
    assert m.disabled
    assert m.admit(0.0, CFG).admitted
