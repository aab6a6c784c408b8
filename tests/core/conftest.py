"""Fixtures of the resilience tests: registries on each store, isolated per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from guilde_core.config import BreakerConfig, Settings
from guilde_core.resilience import (
    BreakerRegistry,
    DeadLetter,
    reset_dead_letter_store,
    reset_registry,
)

RegistryFactory = Callable[..., BreakerRegistry]


class FakeTime:
    """A controlled clock: ``sleep`` advances it instead of waiting."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        self.now += delay


def dead_letter(**overrides: Any) -> DeadLetter:
    """A dead letter with plausible values."""
    values: dict[str, Any] = {
        "service": "orders",
        "service_type": "third_party_api",
        "operation": None,
        "payload": {"order": 1},
        "reason": "non_retryable",
        "error_type": "PermanentError",
        "error_code": "permanent",
        "error": "HTTP 400",
        "attempts": 1,
        "at": datetime.now(UTC),
    }
    values.update(overrides)
    return DeadLetter.model_validate(values)


def small_config(**overrides: float) -> BreakerConfig:
    values: dict[str, float] = {
        "failure_threshold": 3,
        "recovery_timeout": 0.2,
        "half_open_requests": 2,
        "success_threshold": 2,
    }
    values.update(overrides)
    return BreakerConfig.model_validate(values)


@pytest.fixture(autouse=True)
def _fresh_resilience() -> Iterator[None]:
    reset_registry()
    reset_dead_letter_store()
    yield
    reset_registry()
    reset_dead_letter_store()


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> str:
    """Run the test once with the memory store and once with Redis."""
    return str(request.param)


@pytest.fixture
def make_registry(store: str, request: pytest.FixtureRequest) -> RegistryFactory:
    """``make_registry(**settings)`` → a registry on the parametrised store."""
    prefix = request.getfixturevalue("redis_prefix") if store == "redis" else ""
    url = request.getfixturevalue("redis_url") if store == "redis" else None

    def make(follow_settings: bool = False, **settings: object) -> BreakerRegistry:
        """``follow_settings``: read ``get_settings()`` on each use (reload tests)."""
        return BreakerRegistry(
            redis_url=url,
            prefix=prefix,
            settings=None if follow_settings else Settings(**settings),  # type: ignore[arg-type]
        )

    return make
