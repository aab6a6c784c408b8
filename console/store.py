"""The console's last known data, kept between refreshes (no Textual, no I/O).

Workers write into the store; screens read from it. ``update_*`` methods return whether
anything changed, so the app only repaints when there is something new (idle CPU stays
low when the system is quiet).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from console.connection import ConnectionInfo
from console.logbuffer import LogBuffer
from console.models import CircuitInfo, CircuitState, Event, HealthReport, Target

if TYPE_CHECKING:
    from guilde_core.stack import StackModel

__all__ = ["HISTORY", "ConsoleStore"]

#: points of latency / error-rate history kept per check for the sparklines
HISTORY = 60


@dataclass
class ConsoleStore:
    """Everything the screens show."""

    log_capacity: int = 100_000
    event_capacity: int = 2_000
    health: HealthReport | None = None
    #: dev3000's model of the watched stack (``GET /api/v1/diag/topology``)
    topology: StackModel | None = None
    targets: list[Target] = field(default_factory=list)
    circuits: list[CircuitInfo] = field(default_factory=list)
    events: deque[Event] = field(default_factory=deque)
    latency: dict[str, deque[float]] = field(default_factory=dict)
    error_rate: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY))
    connection: ConnectionInfo = field(default_factory=ConnectionInfo)
    stream: ConnectionInfo = field(default_factory=ConnectionInfo)
    updated_at: datetime | None = None
    logs: LogBuffer = field(init=False)
    gaps: int = 0
    _event_ids: set[str] = field(default_factory=set, repr=False)

    def __post_init__(self) -> None:
        self.logs = LogBuffer(self.log_capacity)
        self.events = deque(maxlen=self.event_capacity)

    def update_health(self, report: HealthReport) -> bool:
        changed = report != self.health
        self.health = report
        self.updated_at = datetime.now(UTC)
        if changed:
            for check in report.checks:
                history = self.latency.setdefault(check.name, deque(maxlen=HISTORY))
                if check.latency_ms is not None:
                    history.append(check.latency_ms)
            rate = report.error_rate_percent
            if rate is not None:
                self.error_rate.append(rate)
        return changed

    def update_topology(self, model: StackModel | None) -> bool:
        changed = model != self.topology
        self.topology = model
        return changed

    def update_targets(self, targets: list[Target]) -> bool:
        changed = targets != self.targets
        self.targets = targets
        return changed

    def update_circuits(self, circuits: list[CircuitInfo]) -> bool:
        changed = circuits != self.circuits
        self.circuits = circuits
        return changed

    def add_events(self, events: list[Event]) -> list[Event]:
        """Append events not seen yet (by id); return the new ones."""
        fresh: list[Event] = []
        for event in events:
            if event.kind == "gap":
                self.gaps += 1
            elif event.id in self._event_ids:
                continue
            if len(self.events) == self.events.maxlen:
                self._event_ids.discard(self.events[0].id)
            self.events.append(event)
            self._event_ids.add(event.id)
            fresh.append(event)
        return fresh

    def circuit_summary(self) -> dict[CircuitState, int]:
        """How many breakers are in each state."""
        summary: dict[CircuitState, int] = {}
        for circuit in self.circuits:
            summary[circuit.state] = summary.get(circuit.state, 0) + 1
        return summary
