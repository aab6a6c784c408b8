"""Metrics evidence: the error rate and latency of the question's component, from Prometheus.

One self-contained rule in two halves, like :mod:`agent.browser_evidence`:

* :func:`gather_metrics` (after the first pass), when the server offers the metrics area
  (``metrics_status``, ``metrics_query``, ``metrics_query_range``) and its status says a
  Prometheus is configured (unreachable: that status is the evidence): reads which scrape
  jobs exist (``up``), narrows them to the ones the focus names (the stack's components are
  the jobs that scrape them: ``backend``, ``agent`` …; no match: every job), and asks two
  range queries over the window — the share of 5xx responses and the p95 latency, per job,
  from the ``*_http_requests_total`` and ``*_request_duration_seconds`` series the stack's
  HTTP services export. Each answer is a numbered evidence record like any other, its
  excerpt the per-job last and max values (the points stay in ``data``).
* :func:`metrics_findings` (offline analysis) turns a job whose error rate is over
  :data:`ERROR_RATE_PERCENT` into an ``error_spike`` finding and a p95 over the component's
  latency threshold (:class:`~agent.analyzers.Thresholds`) into a ``latency`` finding, each
  citing its record.

Without a metrics area or a ``PROMETHEUS_URL`` nothing is gathered and nothing found.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from agent.models import EvidenceRecord, JsonValue
from agent.toolnames import find_tool

if TYPE_CHECKING:  # the analyzers import this module; they need no MCP client
    from agent.mcp_client import DiagTools, ToolOutcome

__all__ = [
    "ERROR_RATE_PERCENT",
    "error_rate_query",
    "gather_metrics",
    "latency_query",
    "metrics_findings",
]

#: an error rate over this (percent of responses that are 5xx) is a finding
ERROR_RATE_PERCENT = 5.0
#: … and over this a critical one
ERROR_RATE_CRITICAL_PERCENT = 25.0

Add = Callable[..., None]
#: ``record(evidence_id, outcome)`` → an evidence record (the gather pass's own builder)
MakeRecord = Callable[[str, "ToolOutcome"], EvidenceRecord]

_REQUESTS = '{{__name__=~".+_http_requests_total"{extra}{jobs}}}'
_BUCKETS = '{{__name__=~".+_request_duration_seconds_bucket"{jobs}}}'
_JOB_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")


class _Thresholds(Protocol):
    def latency_for(self, component: str) -> float: ...


def _jobs(jobs: list[str]) -> str:
    safe = [re.escape(j) for j in jobs if _JOB_NAME.match(j)]
    return f', job=~"{"|".join(safe)}"' if safe else ""


def error_rate_query(jobs: list[str], rate_window: str = "5m") -> str:
    """Percent of responses that are 5xx, per job (0 when there are none)."""
    sel = _jobs(jobs)
    errors = _REQUESTS.format(extra=', status=~"5.."', jobs=sel)
    every = _REQUESTS.format(extra="", jobs=sel)
    return (
        f"100 * (sum by (job) (rate({errors}[{rate_window}])) or "
        f"0 * sum by (job) (rate({every}[{rate_window}]))) / "
        f"sum by (job) (rate({every}[{rate_window}]))"
    )


def latency_query(jobs: list[str], rate_window: str = "5m", quantile: float = 0.95) -> str:
    """The ``quantile`` of request latency (seconds), per job."""
    buckets = _BUCKETS.format(jobs=_jobs(jobs))
    return f"histogram_quantile({quantile}, sum by (job, le) (rate({buckets}[{rate_window}])))"


def _kind(record: EvidenceRecord) -> str | None:
    query = str(record["arguments"].get("query", ""))
    if "_request_duration_seconds_bucket" in query:
        return "latency"
    if "_http_requests_total" in query and '"5.."' in query:
        return "error_rate"
    return None


def _series(data: Any) -> list[dict[str, Any]]:
    found = data.get("series") if isinstance(data, dict) else None
    return [s for s in found or [] if isinstance(s, dict)]


def _sample_labels(data: Any) -> list[dict[str, Any]]:
    samples = data.get("samples") if isinstance(data, dict) else None
    return [
        s["labels"]
        for s in samples or []
        if isinstance(s, dict) and isinstance(s.get("labels"), dict)
    ]


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _excerpt(kind: str, data: JsonValue) -> str:
    unit = "% 5xx" if kind == "error_rate" else "s p95"
    rows = [
        {
            "job": s.get("labels", {}).get("job", "?"),
            "last": s.get("last"),
            "max": s.get("max"),
        }
        for s in _series(data)
    ]
    return f"{kind} ({unit}) per job: " + json.dumps(rows, separators=(",", ":"))[:1000]


async def gather_metrics(
    tools: DiagTools,
    *,
    start_index: int,
    record_from_outcome: MakeRecord,
    focus: str | None = None,
    window_minutes: float | None = None,
) -> list[EvidenceRecord]:
    """Evidence records for the error rate and latency of the focus' jobs (module doc)."""
    status_tool = find_tool(tools, "metrics_status")
    instant = find_tool(tools, "metrics_instant")
    ranged = find_tool(tools, "metrics")
    if status_tool is None or instant is None or ranged is None:
        return []
    # the status never fails: without a PROMETHEUS_URL no query is sent (and none fails)
    status = await tools.call(status_tool, {})
    data = status.data if isinstance(status.data, dict) else {}
    if not status.ok or not data.get("configured"):
        return []
    if data.get("reachable") is False:
        return [record_from_outcome(f"E{start_index}", status)]  # Prometheus down: say so
    up = await tools.call(instant, {"query": "count by (job) (up)"})
    if not up.ok:
        return [record_from_outcome(f"E{start_index}", up)]
    jobs = sorted({str(labels["job"]) for labels in _sample_labels(up.data) if labels.get("job")})
    wanted = focus.strip().lower() if focus else ""
    named = [j for j in jobs if wanted and (wanted in j.lower() or j.lower() in wanted)]
    minutes = max(window_minutes or 15.0, 2.0)
    start = f"now-{int(minutes)}m"
    records: list[EvidenceRecord] = []
    for kind, query in (("error_rate", error_rate_query(named)), ("latency", latency_query(named))):
        outcome = await tools.call(ranged, {"query": query, "start": start})
        record = record_from_outcome(f"E{start_index + len(records)}", outcome)
        if outcome.ok:
            record["excerpt"] = _excerpt(kind, record["data"])
        records.append(record)
    return records


def metrics_findings(record: EvidenceRecord, add: Add, thresholds: _Thresholds) -> None:
    """Findings for one metrics evidence record (see the module doc)."""
    kind = _kind(record)
    if kind is None:
        return
    for series in _series(record["data"]):
        job = str((series.get("labels") or {}).get("job") or "backend")
        last, peak = _number(series.get("last")), _number(series.get("max"))
        if last is None:
            continue
        if kind == "error_rate" and last > ERROR_RATE_PERCENT:
            add(
                title=f"{job}: {last:.1f}% of responses are 5xx (Prometheus; peak "
                f"{(peak or last):.1f}% in the window)",
                component=job,
                category="error_spike",
                severity="critical" if last >= ERROR_RATE_CRITICAL_PERCENT else "error",
                evidence_id=record["id"],
                detail=f"5xx share per {job} from its *_http_requests_total series, over "
                f"{ERROR_RATE_PERCENT:g}%",
            )
        elif kind == "latency":
            limit_ms = thresholds.latency_for(job)
            if last * 1000 > limit_ms:
                add(
                    title=f"{job}: p95 latency {last * 1000:.0f} ms (Prometheus; over "
                    f"{limit_ms:g} ms)",
                    component=job,
                    category="latency",
                    severity="warning",
                    evidence_id=record["id"],
                    detail=f"p95 of {job}'s *_request_duration_seconds histogram, peak "
                    f"{(peak or last) * 1000:.0f} ms in the window",
                )
