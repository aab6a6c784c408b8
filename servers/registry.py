"""The server areas: THE list of diagnostic MCP servers.

One :class:`ServerArea` per area — its name (the prefix of its tools: the area server names
them ``<area>_<tool>`` itself, the same standalone and in the aggregate, which mounts it as
it is), a one-line description and the function that builds its FastMCP server. ``dev3000 mcp <area>`` and ``python -m servers`` serve them, dev3000's aggregate
mounts them, and the tests and docs check against this list; a new area added here is
picked up by all of them.

The build functions import their server module when called, so reading the list (the
``dev3000`` command line does at start) costs no FastMCP import.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastmcp import FastMCP

    from guilde_core.config import Settings
    from servers.context import ServerContext

__all__ = ["AREAS", "ServerArea", "ServerBuilder"]

#: ``build(settings, context) -> FastMCP``; ``None`` settings are read from the environment,
#: ``None`` context means the server runs on its own (no host lends it parts)
ServerBuilder = Callable[["Settings | None", "ServerContext | None"], "FastMCP"]


@dataclass(frozen=True)
class ServerArea:
    """One MCP server: ``name`` (lower-case, its tools' prefix), what it is for, its builder."""

    name: str
    description: str
    build: ServerBuilder


def _health(settings: Settings | None, context: ServerContext | None = None) -> FastMCP:
    from servers.health.server import build_server

    return build_server(settings, context)


def _circuits(settings: Settings | None, context: ServerContext | None = None) -> FastMCP:
    from servers.circuits.server import build_server

    return build_server(settings, context)


def _logs(settings: Settings | None, context: ServerContext | None = None) -> FastMCP:
    from servers.logs.server import build_server

    return build_server(settings, context)


def _system(settings: Settings | None, context: ServerContext | None = None) -> FastMCP:
    from servers.system.server import build_server

    return build_server(settings, context)


def _metrics(settings: Settings | None, context: ServerContext | None = None) -> FastMCP:
    from servers.metrics.server import build_server

    return build_server(settings, context)


def _browser(settings: Settings | None, context: ServerContext | None = None) -> FastMCP:
    from servers.browser.server import build_server

    # mounted by a host it reads the host's capture; on its own (``dev3000 mcp browser``)
    # it runs one of its own
    return build_server(settings, capture=context.browser if context else None)


#: name → area, in the order they are listed and mounted
AREAS: Mapping[str, ServerArea] = MappingProxyType(
    {
        area.name: area
        for area in (
            ServerArea(
                "health", "health checks of the stack's targets (deep, per target)", _health
            ),
            ServerArea("circuits", "circuit breakers: state, transitions, control", _circuits),
            ServerArea("logs", "log sources: tail, search, error groups, traces", _logs),
            ServerArea("system", "host, process, versions, effective configuration", _system),
            ServerArea(
                "metrics", "PromQL on the stack's Prometheus: instant and range queries", _metrics
            ),
            ServerArea(
                "browser", "the watched page: errors, failed requests, screenshots", _browser
            ),
        )
    }
)
