"""Signals from the watched page: a browser error followed to its backend cause.

:func:`agent.browser_evidence.browser_findings` ties a page's failure to the backend log
lines with the same correlation id; the backend lines are classified by the log rule (their
structured fields), so the page's failure is attributed to what the backend failed on.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from agent.browser_evidence import browser_findings
from agent.models import EvidenceRecord, RootCause
from agent.rules.base import RuleInput, Signal
from agent.rules.logs import error_group_signals

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

    browser_findings(record, context.records, add, classify)
    yield from found
