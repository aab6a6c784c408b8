"""dev3000's runtime targets inside the health logic (``servers.health``).

* :func:`to_health_target` — a registry :class:`~dev3000.targets_store.Target` as THE
  target model of the health area (``source="registry"``), its ``depends_on`` included.
* :func:`targets_provider` — the targets provider the app passes to its
  :class:`~servers.health.logic.HealthService` and to the health MCP server it mounts, so
  deep health, the health MCP tools and the poller all see the runtime targets.
* :func:`check_target` — one target checked now (used when a target is added or changed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from guilde_core.redaction import redact

if TYPE_CHECKING:
    from dev3000.targets_store import Target, TargetsStore
    from servers.health.logic import HealthService, TargetsProvider
    from servers.health.models import Target as HealthTarget

__all__ = ["check_target", "targets_provider", "to_health_target"]


def to_health_target(target: Target) -> HealthTarget:
    """The health area's view of a registry target."""
    from servers.health.models import Target as HealthTarget

    data: dict[str, Any] = {
        "name": target.name,
        "critical": target.critical,
        "timeout": target.timeout,
        "source": "registry",
        "expected_status": target.expected_status,
        "depends_on": target.depends_on,
    }
    if target.kind == "tcp":
        parts = urlsplit(target.url)
        data.update(kind="tcp", host=parts.hostname or "127.0.0.1", port=parts.port)
    elif target.kind == "http":
        data.update(kind="http", url=target.url, path=target.path)
    else:
        data.update(kind=target.kind, url=target.url)
    return HealthTarget.model_validate(data)


def targets_provider(store: Callable[[], TargetsStore]) -> TargetsProvider:
    """``async () -> list[HealthTarget]`` over the registry returned by ``store()``."""

    async def provide() -> list[HealthTarget]:
        return [to_health_target(t) for t in await store().all()]

    return provide


async def check_target(health: HealthService, target: Target) -> dict[str, Any]:
    """Check ``target`` now; the check result as JSON (redacted)."""
    (result,) = await health.run([to_health_target(target)])
    data: dict[str, Any] = redact(result.model_dump(mode="json"))
    return data
