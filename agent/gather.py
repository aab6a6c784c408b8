"""Gather: one deterministic first pass over MCP, in parallel, kept as numbered evidence.

The pass calls, concurrently, whichever of these the server offers: deep health (the seed
§6.2 report), every health check (disk, memory, HTTP targets …), the circuit-breaker list,
error groups from the logs, and the recent timeline; then the watched page's errors and the
backend log lines their correlation ids lead to (:mod:`agent.browser_evidence`), and the error
rate and latency series of the focus from Prometheus (:mod:`agent.metrics_evidence`). Each answer
(or error) becomes an :class:`~agent.models.EvidenceRecord` numbered ``E1, E2, …`` after the
evidence already held, so follow-up questions in a
session keep citing stable ids.
"""

from __future__ import annotations

import asyncio
import json

from agent.browser_evidence import gather_browser
from agent.mcp_client import DiagTools, ToolOutcome, ToolSpec
from agent.metrics_evidence import gather_metrics
from agent.models import EvidenceRecord, JsonValue, ToolArguments
from agent.safety import redact_data
from agent.tool_names import GATHER, GATHER_ARGUMENTS
from guilde_core.redaction import redact_text

__all__ = [
    "EXCERPT_CHARS",
    "excerpt_of",
    "fit_arguments",
    "gather",
    "record_from_outcome",
]

EXCERPT_CHARS = 1200


def _compact(value: JsonValue) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, separators=(",", ":"), sort_keys=False)


_FINE = {"healthy", "ok", "closed"}
_KEEP_WHEN_FINE = ("name", "kind", "status", "state")


def _what_is_wrong_first(value: JsonValue) -> JsonValue:
    """``value`` with every part that reports itself fine (``status: healthy``, a closed
    breaker) cut down to its name and status, so an excerpt spends its characters on what is
    wrong (the full answer stays in the evidence record's ``data``)."""
    if isinstance(value, list):
        return [_what_is_wrong_first(v) for v in value]
    if not isinstance(value, dict):
        return value
    state = str(value.get("status") or value.get("state") or "").lower()
    if (
        state in _FINE
        and _all_fine(value)
        and ({"name", "kind", "type", "latency_ms", "critical", "circuit_state"} & set(value))
    ):
        return {k: value[k] for k in _KEEP_WHEN_FINE if k in value}
    return {k: _what_is_wrong_first(v) for k, v in value.items()}


def _all_fine(value: JsonValue) -> bool:
    """No part of ``value`` reports a status or state other than fine (a healthy HTTP check
    can carry its target's degraded health report)."""
    if isinstance(value, list):
        return all(_all_fine(v) for v in value)
    if not isinstance(value, dict):
        return True
    for key in ("status", "state"):
        field = value.get(key)
        if isinstance(field, str) and field.lower() not in _FINE:
            return False
    return all(_all_fine(v) for v in value.values() if isinstance(v, dict | list))


def excerpt_of(outcome: ToolOutcome, limit: int = EXCERPT_CHARS) -> str:
    """A redacted, trimmed excerpt of a tool's answer (with a note when trimmed); the parts
    that report themselves healthy are cut down to their status first."""
    text = (
        outcome.error
        if not outcome.ok
        else (_compact(_what_is_wrong_first(outcome.data)) or outcome.text)
    )
    text = redact_text(text or "")
    if len(text) > limit:
        text = f"{text[:limit]} … [trimmed {len(text) - limit} of {len(text)} chars]"
    return text


def record_from_outcome(evidence_id: str, outcome: ToolOutcome, *, turn: int) -> EvidenceRecord:
    """The evidence record (plain dict, checkpoint-friendly) of one tool outcome, gathered
    for question ``turn`` of the session."""
    return EvidenceRecord(
        id=evidence_id,
        tool=outcome.name,
        arguments=redact_data(outcome.arguments),
        ok=outcome.ok,
        data=outcome.data,
        error=outcome.error,
        excerpt=excerpt_of(outcome),
        turn=turn,
    )


def fit_arguments(spec: ToolSpec, wanted: ToolArguments) -> ToolArguments:
    """Keep only the wanted arguments the tool's input schema declares."""
    props = spec.input_schema.get("properties")
    if not isinstance(props, dict):
        return {}
    return {k: v for k, v in wanted.items() if k in props}


def resolve_roles(tools: DiagTools) -> dict[str, str]:
    """The gather roles whose tool (:data:`agent.tool_names.GATHER`) the server offers."""
    return {role: name for role, name in GATHER.items() if tools.spec(name) is not None}


def _wanted_args(role: str, focus: str | None, window_minutes: float | None) -> ToolArguments:
    wanted: ToolArguments = {}
    if window_minutes:
        seconds = int(window_minutes * 60)
        wanted |= {
            "window_minutes": window_minutes,
            "minutes": window_minutes,
            "since_seconds": seconds,
            "window_seconds": seconds,
            "since": f"{int(window_minutes)}m",
        }
    wanted |= GATHER_ARGUMENTS.get(role, {})
    del focus  # focus ranks findings; it never narrows what is gathered
    return wanted


async def gather(
    tools: DiagTools,
    *,
    start_index: int = 1,
    turn: int = 0,
    focus: str | None = None,
    window_minutes: float | None = None,
) -> list[EvidenceRecord]:
    """Run the first pass concurrently; return the evidence records in a stable order."""
    roles = resolve_roles(tools)
    plan: list[tuple[str, ToolArguments]] = []
    for role, name in roles.items():
        spec = tools.spec(name)
        assert spec is not None
        plan.append((name, fit_arguments(spec, _wanted_args(role, focus, window_minutes))))
    outcomes = await asyncio.gather(*(tools.call(n, a) for n, a in plan))
    records = [
        record_from_outcome(f"E{start_index + i}", outcome, turn=turn)
        for i, outcome in enumerate(outcomes)
    ]
    # the watched page's errors and the backend lines their correlation ids lead to
    records += await gather_browser(
        tools,
        start_index=start_index + len(records),
        record_from_outcome=lambda eid, outcome: record_from_outcome(eid, outcome, turn=turn),
    )
    # the focus' error rate and latency from Prometheus (when the server has the metrics area)
    records += await gather_metrics(
        tools,
        start_index=start_index + len(records),
        record_from_outcome=lambda eid, outcome: record_from_outcome(eid, outcome, turn=turn),
        focus=focus,
        window_minutes=window_minutes,
    )
    return records
