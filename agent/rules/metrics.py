"""Signals from Prometheus: the error rate and latency series of the question's components.

:func:`agent.metrics_evidence.metrics_findings` reads one range query's answer (the 5xx share or
the p95 latency per scrape job) against its limits; a job is the component its series describe.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from agent.metrics_evidence import metrics_findings
from agent.models import EvidenceRecord
from agent.rules.base import RuleInput, Signal

__all__ = ["metrics_signals"]


class _DefaultLimits:
    def latency_for(self, component: str) -> float:
        return {"database": 100.0, "redis": 50.0}.get(component, 500.0)


def metrics_signals(record: EvidenceRecord, context: RuleInput) -> Iterator[Signal]:
    found: list[Signal] = []

    def add(**kw: Any) -> None:
        found.append(Signal(**kw))

    metrics_findings(record, add, context.thresholds or _DefaultLimits())
    yield from found
