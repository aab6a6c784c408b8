"""Signals from the stack model: one per faulty node, the category of its cause.

The model already says *why* each node is not healthy, read from structured fields by the
health area (a check's ``latency_ms`` over its threshold, a breaker's recorded cause: a 429
storm that opened a breaker is ``upstream_rate_limited``, the open breaker a consequence).
This rule only turns that into signals: absent nodes never count; a node whose only reason is
the summary of a faulty child (``reports degraded: database — …``) is on the chain, not a
cause of its own.
"""

from __future__ import annotations

from collections.abc import Iterator

from agent.models import EvidenceRecord, Severity
from agent.rules.base import RuleInput, Signal
from guilde_core.stack import Node, StackModel

__all__ = ["model_signals", "parse_model", "summarises_children"]


#: keys of a node's details that hold the limit a measurement crossed
_LIMIT_WORDS = ("budget", "threshold", "warn", "limit", "max")


def parse_model(record: EvidenceRecord) -> StackModel | None:
    """The stack model a topology record holds (None when it holds none)."""
    data = record.get("data")
    if not record.get("ok", True) or not isinstance(data, dict) or "nodes" not in data:
        return None
    try:
        return StackModel.model_validate(data)
    except ValueError:
        return None


def summarises_children(model: StackModel, node: Node) -> bool:
    """Whether ``node``'s cause only repeats a faulty dependency's (it is on the chain)."""
    cause = node.cause
    if cause is None or not (
        cause.field == "report.status" or (cause.field or "").startswith("breakers.")
    ):
        return False
    return any(n.faulty for n, _ in model.walk(node.id) if n.id != node.id)


def _severity(node: Node) -> Severity:
    if node.status == "unhealthy":
        return "critical" if node.critical else "error"
    return "warning"


def model_signals(record: EvidenceRecord, context: RuleInput) -> Iterator[Signal]:
    model = parse_model(record)
    if model is None:
        return
    for node in model.explaining():
        cause = node.cause
        if cause is None or summarises_children(model, node):
            continue
        others = [r.summary for r in node.reasons if r is not cause][:2]
        limits = [
            f"{key}={value}"
            for key, value in node.details.items()
            if any(word in key for word in _LIMIT_WORDS) and isinstance(value, int | float)
        ]
        yield Signal(
            component=node.component,
            category=cause.category,
            severity=_severity(node),
            title=f"{node.name} ({node.id}) {node.status}: {cause.summary}",
            evidence_id=record["id"],
            detail="; ".join(
                [f"read from {cause.field}" if cause.field else "", *limits, *others]
            ).strip("; "),
            node=node.id,
            observed_at=cause.observed_at or node.observed_at,
        )
