"""The process-wide registry (``get_registry``) and its reset for tests."""

from __future__ import annotations

from guilde_core.config import get_settings
from guilde_core.resilience._breaker import BreakerRegistry

__all__ = ["get_registry", "reset_registry"]

_registry: BreakerRegistry | None = None


def get_registry() -> BreakerRegistry:
    """The process-wide :class:`BreakerRegistry`: Redis-backed when
    ``CIRCUIT_BREAKER_REDIS_URL`` is set (its keys under this deployment's namespace,
    ``guilde:<DEV3000_DEPLOYMENT>:``), in-process memory otherwise."""
    global _registry
    if _registry is None:
        settings = get_settings()
        _registry = BreakerRegistry(redis_url=settings.circuit_breaker_redis_url)
    return _registry


def reset_registry(registry: BreakerRegistry | None = None) -> None:
    """Forget the process-wide registry (tests), or install ``registry`` as it."""
    global _registry
    _registry = registry
