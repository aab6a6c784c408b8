"""Signals from the breaker list: which breakers are open, by their recorded state.

An open or forced-open breaker is a ``circuit_open`` signal of the component it protects;
why it opened is the stack model's business (the breaker's node carries the cause read from
its ``last_error`` — a 429 storm is ``upstream_rate_limited``, the open breaker its
consequence), so this rule adds no category of its own from the error's text. A half-open
breaker is already probing again: a warning.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from agent.models import EvidenceRecord, Severity
from agent.rules.base import RuleInput, Signal
from guilde_core.stack import canonical

__all__ = ["circuit_signals"]


def _breakers(data: Any) -> list[Mapping[str, Any]]:
    if isinstance(data, Mapping) and isinstance(data.get("breakers"), list):
        return [b for b in data["breakers"] if isinstance(b, Mapping)]
    return []


def circuit_signals(record: EvidenceRecord, context: RuleInput) -> Iterator[Signal]:
    del context
    for breaker in _breakers(record.get("data")):
        state = str(breaker.get("state") or "").lower().replace("_", "-")
        if state not in ("open", "half-open", "forced-open"):
            continue
        name = str(breaker.get("name") or "?")
        forced = bool(breaker.get("forced")) or state == "forced-open"
        failures = breaker.get("failure_count")
        severity: Severity = "warning" if state == "half-open" else "error"
        yield Signal(
            component=canonical(name),
            category="circuit_open",
            severity=severity,
            title=f"circuit '{name}' is {'forced ' if forced else ''}{state}"
            + (f" after {failures} failures" if failures else ""),
            evidence_id=record["id"],
            detail="forced open by hand (a manual override, not failures)" if forced else "",
        )
