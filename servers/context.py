"""What a host lends the area servers it mounts (``build_server(settings, context)``).

Run alone (``dev3000 mcp health``) an area server gets no context and works on its own;
mounted by dev3000's aggregate it gets the running app's parts, passed explicitly rather
than registered in module globals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from servers.browser.capture import BrowserCapture
from servers.circuits.logic import AuditSink
from servers.health.logic import HealthService, TargetsProvider

__all__ = ["ServerContext"]


@dataclass(frozen=True, slots=True)
class ServerContext:
    """Parts of the host the area servers use; each may be absent."""

    #: more health targets at check time (dev3000's runtime targets registry)
    targets: TargetsProvider | None = None
    #: the host's health service, read at call time: the health tools then share its checks,
    #: its deep round and what it has seen up (``targets`` is then not used)
    health: Callable[[], HealthService] | None = None
    #: receives the ``control_action`` event of every circuit control action (the timeline)
    audit: AuditSink | None = None
    #: the browser capture the host runs (``dev3000 serve --browser``), read at call time
    browser: Callable[[], BrowserCapture | None] | None = None
