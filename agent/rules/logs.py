"""Signals from error groups (and log lines): only what their structured fields say.

A group's category is its sample's ``error_code`` field (the project's error codes, see
:data:`guilde_core.stack.CODE_CATEGORY`); its component the ``provider`` field, else the
model's node the ``service`` field names. Nothing is guessed from text: a log file's name is
no component, a ``postgresql://`` inside another message is no database. A group that names
no component is listed (*unattributed*) and may support a cause of the same category; a
group large enough is an error spike of the component it is attributed to. Groups last seen
before the question's window do not count.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from agent.models import EvidenceRecord, Severity
from agent.rules.base import RuleInput, Signal
from guilde_core.stack import CODE_CATEGORY, Category, canonical

__all__ = ["error_group_signals", "parse_time"]


def parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _groups(data: Any) -> list[Mapping[str, Any]]:
    if isinstance(data, Mapping):
        for key in ("groups", "results", "entries", "items"):
            value = data.get(key)
            if isinstance(value, list):
                return [g for g in value if isinstance(g, Mapping)]
    return []


def _component(fields: Mapping[str, Any], context: RuleInput) -> tuple[str, bool]:
    # the service's own structured fields, and OpenTelemetry's names for the same
    for key in ("provider", "component", "dependency", "peer.service", "peer_service"):
        value = fields.get(key)
        if isinstance(value, str) and value.strip():
            return canonical(value), True
    if isinstance(fields.get("db.system"), str) and fields.get("db.system"):
        return canonical("database"), True
    service = fields.get("service")
    if isinstance(service, str) and service.strip() and context.model is not None:
        named = [n for n in context.model.nodes if n.name == service or n.id == service]
        if named:
            return named[0].component, True
    return (str(service) if isinstance(service, str) and service else "logs"), False


def error_group_signals(record: EvidenceRecord, context: RuleInput) -> Iterator[Signal]:
    for group in _groups(record.get("data")):
        sample = group.get("sample") if isinstance(group.get("sample"), Mapping) else group
        assert isinstance(sample, Mapping)
        level = str(sample.get("level") or group.get("level") or "error").lower()
        if level in ("debug", "info"):
            continue
        seen = parse_time(group.get("last_seen") or sample.get("ts"))
        if context.since is not None and seen is not None and seen < context.since:
            continue  # before the question's window
        fields = sample.get("fields") if isinstance(sample.get("fields"), Mapping) else {}
        assert isinstance(fields, Mapping)
        code = fields.get("error_code")
        category: Category | None = CODE_CATEGORY.get(code) if isinstance(code, str) else None
        count = group.get("count")
        count = count if isinstance(count, int) and not isinstance(count, bool) else 1
        spike = count >= context.spike_count and level in ("error", "critical", "fatal")
        if category is None and not spike:
            continue
        component, attributed = _component(fields, context)
        message = str(sample.get("message") or group.get("fingerprint") or "")[:200]
        severity: Severity = "error" if spike or level in ("critical", "fatal") else "warning"
        if category is not None:
            yield Signal(
                component=component,
                category=category,
                severity=severity,
                title=f"{count}× {message[:160]} (error_code {code})",
                evidence_id=record["id"],
                detail=f"log fields: error_code={code}"
                + (f", provider={fields.get('provider')}" if fields.get("provider") else ""),
                attributed=attributed,
                observed_at=seen,
            )
        if spike:
            yield Signal(
                component=component,
                category="error_spike",
                severity="warning" if category is not None else "error",
                title=f"error spike: {count}× {message[:160]}",
                evidence_id=record["id"],
                attributed=attributed,
                observed_at=seen,
            )
