"""Where dev3000's shared Redis keys live: ``guilde:<DEV3000_DEPLOYMENT>:dev3000:``.

Under it: ``timeline`` (the stream the instances share, :mod:`dev3000.timeline.fanout`),
``targets`` (the runtime targets registry, :mod:`dev3000.targets_store`) and
``ratelimit:<route>:<caller>`` (the API's buckets). The breakers' keys sit beside it, under
the deployment's namespace (``guilde:<deployment>:cbr::<name>``), shared with every process
of the stack.
"""

from __future__ import annotations

from guilde_core.config import Settings

__all__ = ["dev3000_prefix"]


def dev3000_prefix(settings: Settings) -> str:
    """``guilde:<DEV3000_DEPLOYMENT>:dev3000:`` (see the module doc)."""
    return f"{settings.redis_namespace}dev3000:"
