"""resilient_call: retries, Retry-After, budget, deadline, timeouts, jitter, fast path."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guilde_core.config import RetryPolicy, ServiceType, Settings
from guilde_core.correlation import correlation_scope
from guilde_core.errors import (
    AuthenticationError,
    CircuitOpenError,
    GuildeError,
    OperationTimeoutError,
    RateLimitedError,
    RetryBudgetExhaustedError,
    ServiceUnavailableError,
    error_from_status,
)
from guilde_core.resilience import BreakerRegistry, full_jitter, resilient_call
from tests.core.conftest import FakeTime, small_config


def _registry(**overrides: Any) -> BreakerRegistry:
    values: dict[str, Any] = {"retry_budget_enabled": False, "dead_letter_enabled": False}
    values.update(overrides)
    return BreakerRegistry(settings=Settings(**values))


def _script(*outcomes: BaseException | str) -> tuple[list[float | None], Any]:
    """An attempt function that raises/returns the given outcomes in turn."""
    timeouts: list[float | None] = []
    items = list(outcomes)

    async def attempt(timeout: float | None) -> str:
        timeouts.append(timeout)
        item = items.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item

    return timeouts, attempt


def test_retry_after_is_honoured_and_capped_by_max_delay() -> None:
    fake = FakeTime()
    reg = _registry()
    calls, attempt = _script(
        RateLimitedError("429", retry_after=7.0),
        error_from_status(429, headers={"Retry-After": "120"}),  # capped at max_delay (10)
        "ok",
    )

    async def run() -> str:
        return await resilient_call(
            "api", attempt, service_type=ServiceType.THIRD_PARTY_API, registry=reg,
            clock=fake.clock, sleep=fake.sleep,
        )  # fmt: skip

    assert asyncio.run(run()) == "ok"
    assert fake.sleeps == [7.0, 10.0]
    assert len(calls) == 3


@pytest.mark.parametrize(
    "error",
    [AuthenticationError("401", status_code=401), error_from_status(403), error_from_status(400)],
)
def test_client_errors_are_never_retried(error: GuildeError) -> None:
    fake = FakeTime()
    reg = _registry()
    calls, attempt = _script(error, "never reached")

    async def run() -> None:
        await resilient_call("api", attempt, registry=reg, clock=fake.clock, sleep=fake.sleep)

    with pytest.raises(type(error)):
        asyncio.run(run())
    assert len(calls) == 1
    assert fake.sleeps == []
    # and they do not count against the breaker
    assert reg.breaker("api").machine.failure_count == 0


def test_budget_exhausted_fails_fast() -> None:
    fake = FakeTime()
    reg = _registry(
        retry_budget_enabled=True, retry_budget_ratio=0.0, retry_budget_min_retries=1,
        circuit_breaker_failure_threshold=100,
    )  # fmt: skip
    calls, attempt = _script(*[ServiceUnavailableError("503")] * 10)

    async def run() -> None:
        await resilient_call("api", attempt, registry=reg, clock=fake.clock, sleep=fake.sleep)

    with pytest.raises(RetryBudgetExhaustedError) as first:
        asyncio.run(run())
    assert len(calls) == 2  # the one retry the budget allows, then refused
    assert isinstance(first.value.__cause__, ServiceUnavailableError)
    with pytest.raises(RetryBudgetExhaustedError):
        asyncio.run(run())
    assert len(calls) == 3  # no retry at all: failed fast
    assert len(fake.sleeps) == 1


def test_retry_budget_refills_over_its_window() -> None:
    from guilde_core.resilience import RetryBudget

    budget = RetryBudget(ratio=0.5, window=10.0, min_retries=0)
    for _ in range(4):
        budget.deposit(0.0)
    assert [budget.try_spend(1.0) for _ in range(3)] == [True, True, False]
    # two windows later the old calls and retries have slid out
    for _ in range(2):
        budget.deposit(25.0)
    assert budget.try_spend(25.0)
    assert not budget.try_spend(25.0)


def test_deadline_is_never_exceeded_and_timeouts_grow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMEOUT_DATABASE", "0.15")
    monkeypatch.setenv("TIMEOUT_DATABASE_MULTIPLIER", "2")
    monkeypatch.setenv("RETRY_DATABASE_DEADLINE", "0.6")
    monkeypatch.setenv("RETRY_DATABASE_MAX_ATTEMPTS", "10")
    monkeypatch.setenv("RETRY_DATABASE_BASE_DELAY", "0.01")
    reg = _registry(circuit_breaker_failure_threshold=100)
    seen: list[float | None] = []

    async def hang(timeout: float | None) -> None:
        seen.append(timeout)
        await asyncio.sleep(30)

    async def run() -> float:
        started = time.monotonic()
        with pytest.raises(OperationTimeoutError):
            await resilient_call("db", hang, service_type=ServiceType.DATABASE, registry=reg)
        return time.monotonic() - started

    elapsed = asyncio.run(run())
    assert elapsed <= 0.6 + 0.1, elapsed
    first, second = seen[0], seen[1]
    assert first == pytest.approx(0.15)
    assert first is not None
    assert second is not None
    assert second > first  # a larger timeout after a timeout
    assert all(t is not None and t <= 0.6 for t in seen)
    assert len(seen) >= 2


def test_retry_disabled_makes_one_attempt() -> None:
    fake = FakeTime()
    reg = _registry(retry_enabled=False)
    calls, attempt = _script(ServiceUnavailableError("503"), "ok")

    async def run() -> None:
        await resilient_call("api", attempt, registry=reg, clock=fake.clock, sleep=fake.sleep)

    with pytest.raises(ServiceUnavailableError):
        asyncio.run(run())
    assert len(calls) == 1


def test_timeouts_disabled_pass_none() -> None:
    reg = _registry(timeouts_enabled=False)
    calls, attempt = _script("ok")
    assert asyncio.run(resilient_call("api", attempt, registry=reg)) == "ok"
    assert calls == [None]


def test_foreign_errors_are_classified_and_retried() -> None:
    fake = FakeTime()
    reg = _registry()
    calls, attempt = _script(ConnectionResetError(104, "reset"), TimeoutError(), "ok")

    async def run() -> str:
        return await resilient_call(
            "api", attempt, registry=reg, clock=fake.clock, sleep=fake.sleep
        )

    assert asyncio.run(run()) == "ok"
    assert len(calls) == 3
    assert calls[2] is not None
    assert calls[1] is not None
    assert calls[2] > calls[1]  # the TimeoutError grew the next timeout


def test_retry_logging_and_outcome_counters(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeTime()
    reg = _registry()
    _, flaky = _script(ServiceUnavailableError("503"), "ok")
    _, good = _script("ok")
    _, bad = _script(ServiceUnavailableError("503"), ServiceUnavailableError("503"),
                     ServiceUnavailableError("503"), ServiceUnavailableError("503"))  # fmt: skip
    _, perm = _script(error_from_status(404))

    async def run() -> None:
        with correlation_scope("corr-123"):
            await resilient_call("api", flaky, registry=reg, clock=fake.clock, sleep=fake.sleep)
        await resilient_call("api", good, registry=reg, clock=fake.clock, sleep=fake.sleep)
        with pytest.raises(ServiceUnavailableError):
            await resilient_call("api", bad, registry=reg, clock=fake.clock, sleep=fake.sleep)
        with pytest.raises(GuildeError):
            await resilient_call("api", perm, registry=reg, clock=fake.clock, sleep=fake.sleep)

    with caplog.at_level(logging.INFO, logger="guilde.resilience"):
        asyncio.run(run())
    retry_lines = [r.getMessage() for r in caplog.records if "retrying api" in r.getMessage()]
    assert "attempt 1 failed" in retry_lines[0]
    assert "corr-123" in retry_lines[0]
    assert "next attempt in" in retry_lines[0]
    assert any("succeeded after 2 attempt(s)" in r.getMessage() for r in caplog.records)

    from prometheus_client import CollectorRegistry, generate_latest

    from guilde_core.resilience.metrics import ResilienceCollector

    prom = CollectorRegistry()
    prom.register(ResilienceCollector(reg))
    text = generate_latest(prom).decode()
    for kind in (
        "successful_without_retry",
        "successful_with_retry",
        "failed_without_retry",
        "failed_with_retry",
    ):
        assert f'retry_calls_total{{kind="{kind}",service="api"}} 1.0' in text


def test_first_try_success_builds_no_tenacity_machinery(monkeypatch: pytest.MonkeyPatch) -> None:
    import guilde_core.resilience._call as core

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("AsyncRetrying built on the fast path")

    monkeypatch.setattr(core, "AsyncRetrying", forbidden)
    _, attempt = _script("ok")
    assert asyncio.run(resilient_call("api", attempt, registry=_registry())) == "ok"


def test_open_breaker_fallback_and_cancellation() -> None:
    reg = _registry()
    reg.breaker("api", small_config(failure_threshold=1, recovery_timeout=60))
    fake = FakeTime()
    _, attempt = _script(AuthenticationError("401"), ServiceUnavailableError("503"))

    async def fallback(err: GuildeError) -> str:
        return f"fallback after {type(err).__name__}"

    async def run() -> list[str]:
        out = [
            await resilient_call("api", attempt, registry=reg, fallback=fallback,
                                 clock=fake.clock, sleep=fake.sleep),
        ]  # fmt: skip
        with pytest.raises(CircuitOpenError) as info:  # the 503 opened it; the retry refused
            await resilient_call("api", attempt, registry=reg, clock=fake.clock, sleep=fake.sleep)
        assert isinstance(info.value.__context__, ServiceUnavailableError)
        # what this call's own attempt met is the refusal's cause (the log says it too)
        assert isinstance(info.value.__cause__, ServiceUnavailableError)
        # the breaker is open now: the next call is refused at once
        out.append(await resilient_call("api", attempt, registry=reg, fallback=fallback))
        with pytest.raises(CircuitOpenError):
            await resilient_call("api", attempt, registry=reg)
        return out

    assert asyncio.run(run()) == [
        "fallback after AuthenticationError",
        "fallback after CircuitOpenError",
    ]

    async def cancelled() -> None:
        reg2 = _registry()

        async def hang(timeout: float | None) -> None:
            await asyncio.sleep(30)

        task = asyncio.ensure_future(resilient_call("api", hang, registry=reg2))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert reg2.breaker("api").calls == [0, 0, 1, 0]  # ignored, not failed

    asyncio.run(cancelled())


@settings(max_examples=200, deadline=None)
@given(
    attempt=st.integers(min_value=1, max_value=30),
    base=st.floats(min_value=0, max_value=600),
    multiplier=st.floats(min_value=1, max_value=10),
    max_delay=st.floats(min_value=0, max_value=3600),
)
def test_full_jitter_stays_within_bounds(
    attempt: int, base: float, multiplier: float, max_delay: float
) -> None:
    policy = RetryPolicy(
        max_attempts=5, base_delay=base, multiplier=multiplier, max_delay=max_delay,
        timeout=1, timeout_multiplier=1, max_timeout=1, deadline=10,
    )  # fmt: skip
    cap = min(max_delay, base * multiplier ** (attempt - 1))
    for _ in range(5):
        delay = full_jitter(attempt, policy)
        assert 0.0 <= delay <= cap


def test_a_circuit_opened_by_another_call_mid_retry_keeps_what_this_call_met(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two callers fail together; the breaker opens between this call's attempts. It ends in
    CircuitOpenError, but its own 429 is the cause and is in its log line (an on-call engineer
    reading 'circuit open' alone would not see the rate limit behind it)."""
    reg = _registry()
    reg.breaker("api", small_config(failure_threshold=2, recovery_timeout=60))
    fake = FakeTime()
    _, attempt = _script(RateLimitedError("429", service="api"))
    _, other = _script(ServiceUnavailableError("503", service="api"))

    async def sleep(delay: float) -> None:  # the other caller fails while this one waits
        await fake.sleep(delay)
        with pytest.raises(CircuitOpenError):  # its 503 opened it
            await resilient_call("api", other, registry=reg, clock=fake.clock, sleep=fake.sleep)

    async def run() -> CircuitOpenError:
        with pytest.raises(CircuitOpenError) as info:
            await resilient_call("api", attempt, registry=reg, clock=fake.clock, sleep=sleep)
        return info.value

    with caplog.at_level(logging.WARNING, logger="guilde.resilience"):
        refused = asyncio.run(run())
    assert isinstance(refused.__cause__, RateLimitedError)
    assert "CircuitOpenError after RateLimitedError" in caplog.text
