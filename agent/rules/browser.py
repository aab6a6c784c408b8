"""Signals from the watched page: a browser error followed to its backend cause.

:func:`agent.browser_evidence.browser_findings` ties a page's failure to the backend log
lines with the same correlation id; the backend lines are classified by the log rule (their
structured fields), so the page's failure is attributed to what the backend failed on.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from agent.browser_evidence import PAGE_COMPONENT, Serving, browser_findings, browser_items
from agent.models import EvidenceRecord, RootCause
from agent.rules.base import RuleInput, Signal
from agent.rules.logs import error_group_signals, parse_time
from guilde_core.http.hosts import origin_of

__all__ = ["browser_signals"]


def browser_signals(record: EvidenceRecord, context: RuleInput) -> Iterator[Signal]:
    found: list[Signal] = []

    def add(**kw: Any) -> None:
        found.append(Signal(**kw))

    def classify(records: list[EvidenceRecord]) -> RootCause:
        for traced in records:
            for signal in error_group_signals(traced, RuleInput(records, context.model)):
                if signal.attributed:
                    return RootCause(
                        component=signal.component,
                        category=signal.category,
                        summary=signal.title,
                        confidence=0.5,
                    )
        return RootCause(component="backend", category="unknown", summary="", confidence=0)

    def serving(url: str) -> str | None:
        """The service node of the model at ``url``'s origin (the backend the page called)."""
        if context.model is None:
            return None
        origin = origin_of(url)
        if origin is None:
            return None
        for node in context.model.nodes:
            if (
                node.kind == "service"
                and node.url
                and node.counts
                and origin_of(node.url) == origin
            ):
                return node.component
        return None

    browser_findings(record, context.records, add, classify, serving)
    yield from found
    yield from _page_exceptions(record, context)
    yield from _slow_loads(record, context, serving)


def _slow_loads(record: EvidenceRecord, context: RuleInput, serving: Serving) -> Iterator[Signal]:
    """The watched page's slow loads (navigation warnings: over the capture's limit): a
    latency of the service at the origin of the slowest resource, else of the page."""
    slow = [item for item in browser_items(record["data"])
            if item.get("kind") == "navigation" and item.get("level") == "warning"]  # fmt: skip
    if not slow:
        return
    last = slow[-1]
    at = parse_time(last.get("ts"))
    if context.since is not None and at is not None and at < context.since:
        return  # before the question's window
    data = last.get("data") if isinstance(last.get("data"), dict) else {}
    assert isinstance(data, dict)
    slowest = next((s for s in data.get("slowest") or [] if isinstance(s, dict)), {})
    owner = serving(str(slowest.get("url") or "")) if slowest else None
    yield Signal(
        component=owner or PAGE_COMPONENT,
        category="latency",
        severity="warning",
        title=f"page: {len(slow)} slow load(s); {str(last.get('message', ''))[:200]}",
        evidence_id=record["id"],
        detail=f"load {data.get('load_ms')} ms; slowest: {str(slowest)[:300]}",
        observed_at=at,
    )


def _page_exceptions(record: EvidenceRecord, context: RuleInput) -> Iterator[Signal]:
    """The watched page's own uncaught exceptions: faults of the page, one per message."""
    seen: dict[str, list[dict[str, Any]]] = {}
    for item in browser_items(record["data"]):
        if item.get("kind") == "exception" and item.get("level") in ("error", "critical"):
            seen.setdefault(str(item.get("message", ""))[:200], []).append(item)
    for message, items in seen.items():
        last = items[-1]
        at = parse_time(last.get("ts"))
        if context.since is not None and at is not None and at < context.since:
            continue  # before the question's window
        where = str(last.get("url") or "")
        yield Signal(
            component=PAGE_COMPONENT,
            category="error_spike",
            severity="error",
            title=f"page: {len(items)}× {message[:160]}" + (f" ({where[:80]})" if where else ""),
            evidence_id=record["id"],
            detail=f"the watched page threw {message[:300]} (last at {last.get('ts')})",
            observed_at=at,
        )
