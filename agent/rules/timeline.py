"""Signals from the timeline: recent, this deployment's, structured.

An event counts when it is inside the question's window and was written by the dev3000 that
answers (an event another instance wrote into a shared Redis carries ``origin_instance``).
A failed configuration reload is a ``configuration`` fault of its subject; an event whose
``data`` holds an ``error_code`` has that code's category. Fault injection (``chaos``) and
the agent's own runs are no evidence of anything; a transition's free-text summary is never
read for a category.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from agent.models import EvidenceRecord, Severity
from agent.rules.base import RuleInput, Signal
from agent.rules.logs import parse_time
from guilde_core.stack import CODE_CATEGORY, Category, canonical

__all__ = ["timeline_signals"]


def _events(data: Any) -> list[Mapping[str, Any]]:
    if isinstance(data, Mapping) and isinstance(data.get("events"), list):
        return [e for e in data["events"] if isinstance(e, Mapping)]
    return []


def timeline_signals(record: EvidenceRecord, context: RuleInput) -> Iterator[Signal]:
    data = record.get("data")
    instance = data.get("instance") if isinstance(data, Mapping) else None
    instance = instance if isinstance(instance, str) else context.instance
    for event in _events(data):
        kind = str(event.get("kind") or "")
        if kind in ("chaos", "agent_run"):
            continue
        severity = str(event.get("severity") or "info").lower()
        if severity not in ("warning", "error", "critical"):
            continue
        ts = parse_time(event.get("ts"))
        if context.since is not None and ts is not None and ts < context.since:
            continue
        body = event.get("data") if isinstance(event.get("data"), Mapping) else {}
        assert isinstance(body, Mapping)
        origin = body.get("origin_instance")
        if instance and isinstance(origin, str) and origin and origin != instance:
            continue  # another deployment's event
        subject = str(event.get("subject") or "")
        summary = str(event.get("summary") or "")[:200]
        category: Category | None = None
        if kind == "config_reload":
            category = "configuration"
        code = body.get("error_code")
        if category is None and isinstance(code, str):
            category = CODE_CATEGORY.get(code)
        if category is None:
            continue
        sev: Severity = "error" if severity in ("error", "critical") else "warning"
        yield Signal(
            component=canonical(subject) if subject else "configuration",
            category=category,
            severity=sev,
            title=f"{kind} {subject}: {summary}",
            evidence_id=record["id"],
            attributed=bool(subject),
            observed_at=ts,
        )
