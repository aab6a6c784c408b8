"""Browser evidence: a browser error followed through its correlation id to its backend cause.

One self-contained rule in two halves:

* :func:`gather_browser` (after the first pass) reads the watched page's recent errors
  (``browser_recent_errors``) and, for the newest few failed requests and errors that carry a
  correlation id, the backend's log lines with that id (``logs_trace``) — each answer a
  numbered evidence record like any other.
* :func:`browser_findings` (offline analysis) classifies the backend lines of each traced id
  with the ordinary analyzers and adds a finding that ties the browser symptom to that cause:
  the component and category of the backend's failure, citing the browser record and the
  trace. So "the checkout page shows an error" is diagnosed to the database the backend
  could not reach, not to the page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from agent.models import Category, EvidenceRecord, JsonObject, JsonValue, RootCause, Severity
from agent.toolnames import find_tool

if TYPE_CHECKING:  # the analyzers import this module; they need no MCP client
    from agent.mcp_client import DiagTools, ToolOutcome

__all__ = [
    "MAX_TRACED",
    "PAGE_COMPONENT",
    "Serving",
    "browser_findings",
    "browser_items",
    "gather_browser",
]

#: correlation ids followed into the backend's logs per diagnosis
MAX_TRACED = 3
#: the component the watched page's own failures are about (its uncaught exceptions)
PAGE_COMPONENT = "frontend"

Add = Callable[..., None]
#: ``record(evidence_id, outcome)`` → an evidence record (the gather pass's own builder)
MakeRecord = Callable[[str, "ToolOutcome"], EvidenceRecord]
#: evidence records → the root cause the ordinary analyzers see in them
Classify = Callable[[list[EvidenceRecord]], RootCause]


def browser_items(data: Any) -> list[dict[str, Any]]:
    records = data.get("records") if isinstance(data, dict) else None
    return [r for r in records or [] if isinstance(r, dict)]


def _traceable(records: list[dict[str, Any]]) -> list[str]:
    """Correlation ids of the newest error-level records, newest first, each once."""
    ids: list[str] = []
    for record in reversed(records):
        cid = record.get("correlation_id")
        if cid and record.get("level") in ("error", "critical") and cid not in ids:
            ids.append(str(cid))
        if len(ids) >= MAX_TRACED:
            break
    return ids


async def gather_browser(
    tools: DiagTools, *, start_index: int, record_from_outcome: MakeRecord
) -> list[EvidenceRecord]:
    """Evidence records for the browser's errors and the backend lines they trace to."""
    errors_tool = find_tool(tools, "browser_errors")
    if errors_tool is None:
        return []
    outcome = await tools.call(errors_tool, {"limit": 50})
    if not outcome.ok or not browser_items(outcome.data):
        return []  # no capture runs, or the page is fine: nothing to cite
    evidence = [record_from_outcome(f"E{start_index}", outcome)]
    trace_tool = find_tool(tools, "trace")
    if trace_tool is None:
        return evidence
    for cid in _traceable(browser_items(outcome.data)):
        traced = await tools.call(trace_tool, {"correlation_id": cid, "limit": 50})
        evidence.append(record_from_outcome(f"E{start_index + len(evidence)}", traced))
    return evidence


def _backend_lines(record: EvidenceRecord) -> list[JsonObject]:
    data = record["data"]
    entries = data.get("entries") if isinstance(data, dict) else None
    return [
        e
        for e in (entries if isinstance(entries, list) else [])
        if isinstance(e, dict) and not str(e.get("source", "")).startswith("browser")
    ]


#: the page's URL of a failed request → the component of the stack model that serves it
#: (None: no node of the model is at that origin)
Serving = Callable[[str], "str | None"]


def browser_findings(
    record: EvidenceRecord,
    records: list[EvidenceRecord],
    add: Add,
    classify: Classify,
    serving: Serving | None = None,
) -> None:
    """Findings for one browser evidence record (see the module doc).

    A backend failure its log lines type (an ``error_code``, a dependency they name) is the
    cause. One they do not type is still a fault the user saw: the page's request failed and
    the service that answered it logged an error under the same correlation id — an error of
    that service's own code path (``error_spike``, as a 5xx of a health probe is), attributed
    to the model's node at the request's origin. The page's own uncaught exceptions are
    faults of the page (:data:`PAGE_COMPONENT`): :mod:`agent.rules.browser` reads them."""
    traces = {
        str(r["arguments"].get("correlation_id")): r
        for r in records
        if r["ok"] and r["arguments"].get("correlation_id")
    }
    linked: set[str] = set()
    for item in browser_items(record["data"]):
        cid = str(item.get("correlation_id") or "")
        trace = traces.get(cid)
        if not cid or trace is None or cid in linked:
            continue
        lines = _backend_lines(trace)
        # the backend's own lines, classified by the ordinary analyzers
        cause = classify(
            [
                EvidenceRecord(
                    id=trace["id"],
                    tool="logs_search",
                    arguments={},
                    ok=True,
                    data={"results": list[JsonValue](lines)},
                    error=None,
                    excerpt="",
                )
            ]
        )
        failed = [str(e.get("message", "")) for e in lines
                  if e.get("level") in ("error", "critical")]  # fmt: skip
        category: Category = cause.category
        component = cause.component
        attributed = True
        if category == "unknown":
            if not failed or item.get("level") not in ("error", "critical"):
                continue
            url = str(item.get("url") or "")
            owner = serving(url) if serving is not None and url else None
            category, component, attributed = "error_spike", owner or component, owner is not None
        linked.add(cid)
        first = failed[0] if failed else str(lines[0].get("message", "")) if lines else ""
        severity: Severity = "error"
        add(
            title=f"browser {item.get('message', '')[:120]} (request {cid[:12]}) ← backend: "
            f"{first[:120]}",
            component=component,
            category=category,
            severity=severity,
            attributed=attributed,
            evidence_id=record["id"],
            detail=f"the page's failure and the backend's log line share correlation id {cid} "
            f"(trace {trace['id']}): {first[:300]}",
        )
        add(
            title=f"backend log for browser request {cid[:12]}: {first[:140]}",
            component=component,
            category=category,
            severity=severity,
            attributed=attributed,
            evidence_id=trace["id"],
            detail=first[:400],
        )
