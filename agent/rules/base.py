"""What a rule reads and what it produces.

A rule (an *evidence collector*) reads the evidence records of one role — the stack model,
error groups, the timeline, the breakers, the watched page's errors — and yields
:class:`Signal` s: one structured observation each, about one component, of one category,
citing the evidence record it was read from. The diagnosis (:mod:`agent.analyzers`) places
the signals on the question's path through the model; no rule decides a root cause.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from agent.models import EvidenceRecord, Severity
from guilde_core.stack import Category, StackModel

__all__ = ["Collector", "LatencyLimits", "RuleInput", "Signal"]


class LatencyLimits(Protocol):
    def latency_for(self, component: str) -> float: ...


@dataclass
class Signal:
    """One observation: ``component`` shows a ``category`` fault, read from ``evidence_id``.

    ``node`` is the model's node it was read from (None for evidence outside the model: a
    log line's fields, a timeline event). ``attributed`` is False when nothing structured
    named the component (a log line of the service without a ``provider`` field): such a
    signal is listed and supports a cause of the same category, but is never a cause of its
    own."""

    component: str
    category: Category
    severity: Severity
    title: str
    evidence_id: str
    detail: str = ""
    node: str | None = None
    attributed: bool = True
    observed_at: datetime | None = None


@dataclass
class RuleInput:
    """What every rule may read besides its own record."""

    records: list[EvidenceRecord]
    model: StackModel | None = None
    #: evidence older than this does not count (the question's window)
    since: datetime | None = None
    #: the dev3000 instance that answered (events another one wrote do not count)
    instance: str | None = None
    #: an error group this large is a spike
    spike_count: int = 5
    #: latency limits for evidence read outside the model (``latency_for(component)`` in ms)
    thresholds: LatencyLimits | None = None
    extra: dict[str, object] = field(default_factory=dict)


#: a rule: one evidence record (of the role it is registered for) → signals
Collector = Callable[[EvidenceRecord, RuleInput], Iterable[Signal]]
