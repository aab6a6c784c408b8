"""Fixtures of the resilience tests: registries on each store, isolated per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from guilde_core.config import BreakerConfig, Settings
from guilde_core.resilience import BreakerRegistry, reset_dead_letter_store, reset_registry

RegistryFactory = Callable[..., BreakerRegistry]


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
