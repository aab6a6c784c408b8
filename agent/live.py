"""Live scenarios: the sandbox with chaos faults injected, diagnosed through dev3000.

A ``source: live`` scenario names fault ids of ``dev3000 chaos``; :func:`live_target`
starts the sandbox and dev3000 pointed at it, injects the faults, yields dev3000's MCP URL
and clears the faults afterwards. It needs the tools engineer's sandbox and chaos packages.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from guilde_core.errors import ConfigurationError

__all__ = ["live_target"]


@asynccontextmanager
async def live_target(scenario: Any) -> AsyncIterator[str]:
    """dev3000's MCP URL with the scenario's faults injected into a running sandbox."""
    try:
        harness = importlib.import_module("tools.chaos.scenario")
    except ModuleNotFoundError as exc:
        raise ConfigurationError(
            f"scenario {scenario.name!r} is live: it needs the sandbox and chaos tools "
            "(tools.chaos.scenario), which are not installed"
        ) from exc
    async with harness.live_stack(scenario.faults) as url:
        yield str(url)
