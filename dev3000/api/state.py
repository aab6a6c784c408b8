"""What the routers of one dev3000 app share (``app.state.dev3000``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends
from starlette.requests import HTTPConnection

from guilde_core.config import Settings
from guilde_core.events import EventKind, Severity, TimelineEvent, make_event
from guilde_core.http.auth import Keyring
from guilde_core.http.ratelimit import RateLimiter

if TYPE_CHECKING:
    from dev3000.alerts import AlertIntake
    from dev3000.supervisor import Supervisor
    from dev3000.targets_store import TargetsStore
    from dev3000.timeline.bus import EventBus
    from dev3000.timeline.service import TimelineService
    from dev3000.timeline.stream import StreamManager
    from servers.browser.capture import BrowserCapture
    from servers.health.logic import HealthService

__all__ = ["AppState", "StateDep", "get_state"]


@dataclass(slots=True)
class AppState:
    """Mutable state of one app: swapped wholesale on configuration reload.

    Slotted: a part that needs a new piece of state adds a typed field here."""

    settings: Settings
    keyring: Keyring
    limiter: RateLimiter | None
    bus: EventBus
    targets: TargetsStore
    #: deep health, the stack model and target checks, the runtime targets included (its
    #: deep round is shared by every caller and cached; see ``HealthService.snapshot``)
    health: HealthService
    #: the WebSocket/SSE stream of the timeline (set when the app is built)
    stream: StreamManager | None = None
    #: the timeline's files, fan-out and sources while the app runs with timeline sources
    timeline: TimelineService | None = None
    #: the ``--run`` commands under supervision while the app runs
    supervisors: list[Supervisor] = field(default_factory=list)
    #: the browser capture while the app runs with one (``--browser``)
    browser: BrowserCapture | None = None
    #: the alert intake and its investigations (``POST /api/v1/alerts``)
    alerts: AlertIntake | None = None
    #: the start of every shared key of this app (:func:`dev3000.redis_keys.dev3000_prefix`)
    redis_prefix: str = ""
    started_wall: float = field(default_factory=time.time)
    started_mono: float = field(default_factory=time.monotonic)
    ready: bool = False
    draining: bool = False
    reloads: int = 0
    on_drain: list[Callable[[], None]] = field(default_factory=list)

    @property
    def uptime(self) -> float:
        return time.monotonic() - self.started_mono

    def emit(
        self,
        *,
        kind: EventKind,
        subject: str,
        summary: str,
        source: str = "dev3000",
        severity: Severity = "info",
        data: dict[str, Any] | None = None,
    ) -> TimelineEvent:
        """Publish a timeline event (redacted by ``make_event``) on the bus."""
        event = make_event(
            source=source, kind=kind, subject=subject, summary=summary, severity=severity, data=data
        )
        self.bus.publish(event)
        return event

    def drain(self) -> None:
        """Readiness turns unhealthy at once (SIGTERM)."""
        if not self.draining:
            self.draining = True
            for hook in list(self.on_drain):
                hook()


def get_state(conn: HTTPConnection) -> AppState:
    """FastAPI dependency: the :class:`AppState` of the app serving ``conn``."""
    state = conn.app.state.dev3000
    assert isinstance(state, AppState)
    return state


#: ``state: StateDep`` in a route's parameters
StateDep = Annotated[AppState, Depends(get_state)]
