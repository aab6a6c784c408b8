"""Offline analysis: rule-based analyzers that turn evidence into findings.

Each analyzer reads the evidence records of one kind (deep health, circuit breakers,
error groups, timeline) and produces findings that cite the evidence ids they come from:
a dependency unreachable, a slow dependency over its threshold, a breaker open and why,
an error spike with its signature, pool/disk/memory exhaustion, auth or rate-limit
failures upstream, bad configuration. :func:`pick_root_cause` then ranks the findings —
severity first, then how fundamental the category is in a causal chain (a pool exhausted
explains a breaker opening, which explains an error spike), then how many independent
sources agree — so the offline engine names the cause, not the loudest symptom.

The analyzers only read what the tools returned; nothing here does I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from agent.browser_evidence import browser_findings, is_browser_record
from agent.metrics_evidence import is_metrics_record, metrics_findings
from agent.models import Category, EvidenceRecord, Finding, RootCause, Severity
from agent.tool_names import role_of
from guilde_core.config import Settings

__all__ = [
    "Analysis",
    "Thresholds",
    "analyse",
    "canonical_component",
    "pick_root_cause",
    "recommendations_for",
]

SEVERITY_WEIGHT: dict[str, int] = {"info": 1, "warning": 2, "error": 3, "critical": 4}
#: lower = more fundamental in a causal chain
CAUSAL_RANK: dict[str, int] = {
    "configuration": 0,
    "upstream_auth": 1,
    "resource_exhaustion": 2,
    "unreachable": 3,
    "upstream_rate_limited": 4,
    "latency": 5,
    "circuit_open": 6,
    "error_spike": 7,
    "unknown": 8,
}

_PATTERNS: list[tuple[Category, re.Pattern[str]]] = [
    (
        "upstream_auth",
        re.compile(
            r"\b40[13]\b|unauthori[sz]ed|authenticationerror|authentication (?:failed|error)|"
            r"invalid (?:api[ _-]?key|credential|token)|bad credential|forbidden|permission denied"
        ),
    ),
    (
        "upstream_rate_limited",
        re.compile(r"\b429\b|rate[ _-]?limit|too many requests|ratelimiterror|quota exceeded"),
    ),
    (
        "configuration",
        re.compile(
            r"config(?:uration)? (?:error|invalid|reload failed)|invalid config|misconfigur|"
            r"bad config|invalid (?:value|setting)|configurationerror|config_reload|"
            r"reload failed|not a valid (?:integer|number|url)"
        ),
    ),
    (
        "resource_exhaustion",
        re.compile(
            r"pool (?:exhausted|timeout|is full)|pooltimeout|queuepool|too many (?:connections|"
            r"clients)|connection pool|no space left|disk (?:full|space)|out of memory|"
            r"memoryerror|memory pressure|exhausted|enospc"
        ),
    ),
    (
        "unreachable",
        re.compile(
            r"refused|unreachable|could not connect|cannot connect|connectionfailed|"
            r"unable to open database|connection (?:error|failed|"
            r"reset|closed)|connectionerror|name or service not known|no route to host|"
            r"econnrefused|dns|host not found|connect call failed|server closed the connection"
        ),
    ),
    ("latency", re.compile(r"timed? ?out|timeout|deadline exceeded|slow")),
]

_COMPONENT_ALIASES: dict[str, tuple[str, ...]] = {
    "database": ("postgresql", "postgres", "database", "psycopg", "sqlalchemy", "sqlite", "db"),
    "redis": ("redis", "cache"),
    "openai": ("openai",),
    "anthropic": ("anthropic",),
    "openrouter": ("openrouter",),
    "disk": ("disk", "enospc", "no space left"),
    "memory": ("memory", "oom"),
}


def canonical_component(name: str) -> str:
    """A stable name for a component: ``postgresql``/``db`` → ``database`` etc."""
    low = name.strip().lower()
    for canon, aliases in _COMPONENT_ALIASES.items():
        if low == canon or low in aliases:
            return canon
    for canon, aliases in _COMPONENT_ALIASES.items():
        if any(re.search(rf"(?<![a-z]){re.escape(a)}(?![a-z])", low) for a in aliases):
            return canon
    return low or "unknown"


def _is_provider(name: str) -> bool:
    return canonical_component(name) in _COMPONENT_ALIASES


def _component_in_text(text: str) -> str | None:
    low = text.lower()
    for canon, aliases in _COMPONENT_ALIASES.items():
        if any(re.search(rf"(?<![a-z]){re.escape(a)}(?![a-z])", low) for a in aliases):
            return canon
    return None


def _category_of(text: str) -> Category | None:
    low = text.lower()
    for category, pattern in _PATTERNS:
        if pattern.search(low):
            return category
    return None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)


def _num(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.rstrip("%"))
        except ValueError:
            return None
    return None


@dataclass(frozen=True)
class Thresholds:
    """Warning thresholds (defaults mirror the ``HEALTH_WARN_*`` settings)."""

    db_latency_ms: float = 100.0
    redis_latency_ms: float = 50.0
    api_latency_ms: float = 500.0
    memory_percent: float = 80.0
    cpu_percent: float = 70.0
    disk_percent: float = 90.0
    error_spike_count: int = 5

    @classmethod
    def from_settings(cls, settings: Settings) -> Thresholds:
        return cls(
            db_latency_ms=settings.health_warn_db_latency_ms,
            redis_latency_ms=settings.health_warn_redis_latency_ms,
            api_latency_ms=settings.health_warn_api_latency_ms,
            memory_percent=settings.health_warn_memory_percent,
            cpu_percent=settings.health_warn_cpu_percent,
        )

    def latency_for(self, component: str) -> float:
        if component == "database":
            return self.db_latency_ms
        if component == "redis":
            return self.redis_latency_ms
        return self.api_latency_ms


@dataclass
class Analysis:
    """Findings of the offline pass plus the root cause and overall status they imply."""

    findings: list[Finding]
    root_cause: RootCause
    status: str
    recommendations: list[str] = field(default_factory=list)


class _Builder:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.findings: list[Finding] = []
        self._seen: dict[tuple[str, str, str], Finding] = {}

    def add(
        self,
        *,
        title: str,
        component: str,
        category: Category,
        severity: Severity,
        evidence_id: str,
        detail: str = "",
    ) -> None:
        component = canonical_component(component)
        key = (component, category, evidence_id)
        if key in self._seen:
            existing = self._seen[key]
            if SEVERITY_WEIGHT[severity] > SEVERITY_WEIGHT[existing.severity]:
                existing.severity = severity
            return
        finding = Finding(
            id=f"{self.prefix}{len(self.findings) + 1}",
            title=title,
            detail=detail[:600],
            component=component,
            category=category,
            severity=severity,
            evidence_ids=[evidence_id],
        )
        self._seen[key] = finding
        self.findings.append(finding)


def _role(tool: str) -> str:
    return role_of(tool)


# --- health --------------------------------------------------------------------------------
def _iter_checks(
    data: Any, path: tuple[str, ...] = (), owner: str | None = None
) -> Iterator[tuple[str, dict[str, Any], str | None]]:
    """Every dict that looks like a check (has a ``status``) with its name, and the target
    whose own health report it comes from (an HTTP check keeps the report a backend answers
    in ``details.report``: its database, disk, error-rate … checks are that backend's)."""
    if isinstance(data, list):
        for item in data:
            if isinstance(item, dict):
                yield from _iter_checks(item, path, owner)
        return
    if not isinstance(data, dict):
        return
    name = ""
    if "status" in data and path and path[-1] not in ("metrics", "diagnostics"):
        name = str(data.get("name") or data.get("target") or path[-1])
        yield name, data, owner
    details = data.get("details")
    report = details.get("report") if isinstance(details, dict) else None
    if name and isinstance(report, dict) and isinstance(report.get("checks"), dict):
        yield from _iter_checks(report["checks"], (name, "checks"), name)
    for key, value in data.items():
        if key in ("details", "pool", "history", "metrics_snapshot"):
            continue
        if isinstance(value, dict | list):
            yield from _iter_checks(value, (*path, str(key)), owner)


def _health(record: EvidenceRecord, b: _Builder, t: Thresholds) -> None:
    eid = record["id"]
    data = record.get("data")
    if not isinstance(data, dict | list):
        return
    for name, check, owner in _iter_checks(data):
        found_before = len(b.findings)
        status = str(check.get("status", "")).lower()
        kind = str(check.get("kind") or check.get("type") or "")
        # a check's name says what it is (a "redis" check of an in-memory cache is the cache);
        # its kind helps when the name does not ("primary" of kind postgres)
        component = canonical_component(name)
        if component not in _COMPONENT_ALIASES and kind:
            by_kind = canonical_component(kind)
            component = by_kind if by_kind in _COMPONENT_ALIASES else component
        if owner is not None and component not in _COMPONENT_ALIASES:
            # the backend's own error-rate, latency, config … checks are the backend's
            component = canonical_component(owner)
            if component not in _COMPONENT_ALIASES and not _is_provider(name):
                name = f"{owner} {name}"
            else:
                component = canonical_component(name)
        details = check.get("details") if isinstance(check.get("details"), dict) else {}
        merged: dict[str, Any] = {**(details or {}), **check}
        error_text = _text(merged.get("error") or merged.get("message") or "")
        critical = bool(merged.get("critical", True))
        bad = status in ("unhealthy", "down", "failed", "error")
        degraded = status in ("degraded", "warning", "warn")
        sev: Severity = ("critical" if critical else "error") if bad else "warning"
        label = f"{name} is {status}" if status else name

        # circuit state reported by the check (external APIs in the deep report)
        cstate = str(merged.get("circuit_state") or "").lower().replace("_", "-")
        if cstate in ("open", "forced-open"):
            b.add(
                title=f"{name}: circuit breaker {cstate}",
                component=name,
                category="circuit_open",
                severity="error",
                evidence_id=eid,
                detail=error_text,
            )

        # resource exhaustion: pool, disk, memory
        pool = merged.get("pool") if isinstance(merged.get("pool"), dict) else None
        if pool:
            size = _num(pool.get("size") or pool.get("max_size") or pool.get("max"))
            available = _num(pool.get("available") or pool.get("idle"))
            in_use = _num(pool.get("in_use") or pool.get("used"))
            waiting = _num(pool.get("waiting") or pool.get("requests_waiting")) or 0
            if size and (
                (in_use is not None and in_use >= size)
                or (available is not None and available <= 0)
                or waiting > 0
            ):
                b.add(
                    title=f"{name}: connection pool exhausted",
                    component=component,
                    category="resource_exhaustion",
                    severity="critical" if bad or waiting > 0 else "error",
                    evidence_id=eid,
                    detail=f"pool {pool}",
                )
        conn_avail = _num(merged.get("connections_available"))
        if conn_avail is not None and conn_avail <= 0:
            b.add(
                title=f"{name}: no server connections left ({merged.get('connections_in_use')} "
                "in use)",
                component=component,
                category="resource_exhaustion",
                severity="critical" if bad else "error",
                evidence_id=eid,
            )
        error_rate = _num(merged.get("error_rate_percent"))
        if error_rate is not None and error_rate >= 5 and check.get("status") != "healthy":
            b.add(
                title=f"{name}: error rate {error_rate:g}%",
                component=component,
                category="error_spike",
                severity="error" if bad else "warning",
                evidence_id=eid,
            )
        for key in ("percent", "used_percent", "disk_percent", "memory_percent", "usage_percent"):
            pct = _num(merged.get(key))
            if pct is None:
                continue
            label = f"{name} {key} {check.get('kind') or ''}".lower()
            kind = "disk" if "disk" in label else component
            if "mem" in label:
                kind = "memory"
            limit = t.memory_percent if kind == "memory" else t.disk_percent
            if kind not in ("disk", "memory"):
                continue
            if pct >= limit:
                b.add(
                    title=f"{kind} usage at {pct:g}% (threshold {limit:g}%)",
                    component=kind,
                    category="resource_exhaustion",
                    severity="critical" if pct >= 97 or bad else ("error" if pct >= 95 else sev),
                    evidence_id=eid,
                    detail=error_text,
                )

        budget = _num(merged.get("budget_mb"))
        used = next(
            (
                v
                for v in (_num(merged.get(k)) for k in ("used_mb", "scratch_used_mb", "grown_mb"))
                if v is not None
            ),
            None,
        )
        if budget and used is not None and used > budget and (bad or degraded):
            what = "grown by" if "grown_mb" in merged and "used_mb" not in merged else "using"
            b.add(
                title=f"{name} over its budget: {what} {used:g} MB (budget {budget:g} MB)",
                component=component,
                category="resource_exhaustion",
                severity=sev,
                evidence_id=eid,
                detail=error_text,
            )

        # latency over threshold (a round trip, or a p99 over a window)
        p99 = merged.get("latency_ms") is None and merged.get("p99_latency_ms") is not None
        latency = _num(merged.get("latency_ms") if not p99 else merged.get("p99_latency_ms"))
        threshold = _num(
            merged.get("threshold_ms") or merged.get("warn_latency_ms") or merged.get("warn_ms")
        ) or (t.latency_for(component))
        if latency is not None and latency > threshold and not error_text:
            b.add(
                title=f"{name} slow: {'p99 ' if p99 else ''}{latency:.0f} ms "
                f"(threshold {threshold:.0f} ms)",
                component=component,
                category="latency",
                severity="error" if bad or latency > 5 * threshold else "warning",
                evidence_id=eid,
            )

        if not (bad or degraded) or not (error_text or bad):
            continue
        category = _category_of(error_text) if error_text else None
        if category is None and error_text and name.split()[-1] in ("config", "configuration"):
            category = "configuration"  # a configuration check's error is a bad configuration
        if category is None and bad:
            if len(b.findings) > found_before:
                continue  # already explained by a specific finding of this check
            category = "unreachable" if "connect" in error_text.lower() else "unknown"
        if category is None:
            continue
        if category == "unknown":
            sev = "warning"  # a symptom without a cause (e.g. HTTP 503) never outranks a cause
        b.add(
            title=f"{label}" + (f": {error_text[:160]}" if error_text else ""),
            component=component,
            category=category,
            severity=sev,
            evidence_id=eid,
            detail=error_text,
        )


# --- circuits --------------------------------------------------------------------------------
def _breakers(data: Any) -> list[dict[str, Any]]:
    if isinstance(data, list):
        return [d for d in data if isinstance(d, dict)]
    if isinstance(data, dict):
        for key in ("breakers", "circuits", "items", "snapshots"):
            if isinstance(data.get(key), list):
                return [d for d in data[key] if isinstance(d, dict)]
        if "state" in data and "name" in data:
            return [data]
        return [{"name": k, **v} for k, v in data.items() if isinstance(v, dict) and "state" in v]
    return []


def _circuits(record: EvidenceRecord, b: _Builder) -> None:
    eid = record["id"]
    for br in _breakers(record.get("data")):
        name = str(br.get("name") or "?")
        state = str(br.get("state") or "").lower().replace("_", "-")
        if state not in ("open", "half-open", "forced-open"):
            continue
        why = _text(
            br.get("last_failure")
            or br.get("last_error")
            or br.get("reason")
            or br.get("opened_reason")
            or ""
        )
        failures = br.get("failures", br.get("failure_count"))
        forced = bool(br.get("forced")) or state == "forced-open"
        detail = f"state={state} failures={failures} last failure: {why}".strip()
        if forced:
            detail = f"forced {state} by hand (a manual override, not failures); {detail}"
        b.add(
            title=f"circuit '{name}' is {'forced ' if forced else ''}{state}"
            + (f" after {failures} failures" if failures else ""),
            component=name,
            category="circuit_open",
            severity="error" if state != "half-open" else "warning",
            evidence_id=eid,
            detail=detail,
        )
        cause = _category_of(why) if why else None
        if cause is not None and cause != "circuit_open":
            b.add(
                title=f"'{name}' failing upstream: {why[:160]}",
                component=name,
                category=cause,
                # half-open: the failures are history, the breaker is already probing again
                severity="error" if state != "half-open" else "info",
                evidence_id=eid,
                detail=why,
            )


# --- error groups / logs ------------------------------------------------------------------------
def _groups(data: Any) -> list[dict[str, Any]]:
    if isinstance(data, list):
        return [d for d in data if isinstance(d, dict)]
    if isinstance(data, dict):
        for key in ("groups", "error_groups", "items", "entries", "results", "errors"):
            if isinstance(data.get(key), list):
                return [d for d in data[key] if isinstance(d, dict)]
    return []


def _errors(record: EvidenceRecord, b: _Builder, t: Thresholds) -> None:
    eid = record["id"]
    for group in _groups(record.get("data")):
        count = int(_num(group.get("count") or group.get("occurrences") or 1) or 1)
        signature = _text(
            group.get("signature")
            or group.get("fingerprint")
            or group.get("message")
            or group.get("key")
        )
        raw_sample = group.get("sample") or group.get("example") or group.get("line") or ""
        entry = raw_sample if isinstance(raw_sample, dict) else {}
        sample = _text(entry.get("message") if entry else raw_sample)
        if entry.get("fields"):
            sample = f"{sample} {_text(entry['fields'])}"
        text = f"{signature} {group.get('exception') or ''} {sample}"
        said = f"{signature} {group.get('exception') or ''} {_text(entry.get('message') or '')}"
        level = str(group.get("level") or entry.get("level") or "error").lower()
        if level in ("debug", "info"):
            continue
        sources = group.get("sources") if isinstance(group.get("sources"), list) else []
        service = str(group.get("service") or "")
        logger = str(entry.get("logger") or "")
        source = str(group.get("source") or (sources[0] if sources else ""))
        if service:
            origin = service
        elif logger:
            origin = logger.split(".")[0]  # sandbox.orders → the sandbox service
        else:
            origin = re.split(r"[/\\]", source)[-1].split(".")[0] if source else "backend"
        component = _component_in_text(said if raw_sample else text) or canonical_component(origin)
        if component in ("log", "logs", "jsonl", "", "app", "sandbox", "errors"):
            component = "backend"
        category = _category_of(text)
        spike = count >= t.error_spike_count
        if category is None and not spike:
            continue
        severity: Severity = "error" if spike or level in ("critical", "fatal") else "warning"
        if category is not None:
            b.add(
                title=f"{count}× {signature[:140]}",
                component=component,
                category=category,
                severity=severity,
                evidence_id=eid,
                detail=sample[:400],
            )
        if spike:
            b.add(
                title=f"error spike: {count}× {signature[:140]}",
                component="backend" if category is not None else component,
                category="error_spike",
                severity="error" if category is None else "warning",
                evidence_id=eid,
                detail=sample[:400],
            )


# --- timeline --------------------------------------------------------------------------------
def _events(data: Any) -> list[dict[str, Any]]:
    if isinstance(data, list):
        return [d for d in data if isinstance(d, dict)]
    if isinstance(data, dict):
        for key in ("events", "items", "results"):
            if isinstance(data.get(key), list):
                return [d for d in data[key] if isinstance(d, dict)]
    return []


def _timeline(record: EvidenceRecord, b: _Builder) -> None:
    eid = record["id"]
    for event in _events(record.get("data")):
        kind = str(event.get("kind") or "")
        if kind in ("chaos", "agent_run"):  # fault injection is not evidence of anything
            continue
        severity = str(event.get("severity") or "info").lower()
        if severity not in ("warning", "error", "critical"):
            continue
        summary = _text(event.get("summary"))
        subject = str(event.get("subject") or "")
        text = f"{summary} {_text(event.get('data'))}"
        if kind == "config_reload":
            b.add(
                title=f"configuration reload failed: {summary[:160]}",
                component=subject or "configuration",
                category="configuration",
                severity="error",
                evidence_id=eid,
                detail=text[:400],
            )
            continue
        category = _category_of(text)
        if kind == "circuit_transition" and "open" in text.lower():
            category = category or "circuit_open"
        if category is None:
            continue
        sev: Severity = "error" if severity in ("error", "critical") else "warning"
        b.add(
            title=f"{kind or 'event'} {subject}: {summary[:160]}",
            component=_component_in_text(f"{subject} {summary}") or subject or "backend",
            category=category,
            severity=sev,
            evidence_id=eid,
            detail=text[:400],
        )


def _logs(record: EvidenceRecord, b: _Builder, t: Thresholds) -> None:
    data = record.get("data")
    entries = _groups(data) or _events(data)
    if entries and any("signature" in e or "count" in e for e in entries):
        _errors(record, b, t)
        return
    eid = record["id"]
    for entry in entries[:200]:
        level = str(entry.get("level") or "").lower()
        if level not in ("error", "critical", "fatal", "warning"):
            continue
        text = _text(entry.get("message") or entry.get("msg") or entry.get("raw") or entry)
        category = _category_of(text)
        if category is None:
            continue
        b.add(
            title=f"log: {text[:160]}",
            component=_component_in_text(text) or "backend",
            category=category,
            severity="error" if level != "warning" else "warning",
            evidence_id=eid,
            detail=text[:400],
        )


# --- ranking ---------------------------------------------------------------------------------
_RECOMMENDATIONS: dict[str, str] = {
    "unreachable": "Restore connectivity to {c}: check that it is running, its host/port and "
    "network policy; callers will recover when it answers.",
    "latency": "Find why {c} is slow (load, locks, network); raise timeouts only as a stopgap.",
    "error_spike": "Inspect the failing code path of {c} (see the error signature) and roll "
    "back the change that introduced it.",
    "resource_exhaustion": "Free or enlarge {c} (pool size, disk, memory) and look for leaks "
    "holding it.",
    "circuit_open": "Fix what made the {c} breaker trip; it will half-open after its recovery "
    "timeout (close it by hand only once the cause is gone, with approval).",
    "upstream_rate_limited": "Slow down calls to {c} (client-side rate limit, backoff "
    "honouring Retry-After) or raise the quota.",
    "upstream_auth": "Replace the credential used for {c}: it was rejected (401/403); "
    "retrying will not help.",
    "configuration": "Correct the invalid configuration of {c} and reload it.",
    "unknown": "Gather more evidence about {c} (logs, traces) before acting.",
}


def recommendations_for(root: RootCause, findings: Iterable[Finding]) -> list[str]:
    """A few concrete next steps, the root cause's first."""
    out = [_RECOMMENDATIONS[root.category].format(c=root.component)]
    for f in findings:
        if f.severity in ("error", "critical") and (f.component, f.category) != (
            root.component,
            root.category,
        ):
            text = _RECOMMENDATIONS[f.category].format(c=f.component)
            if text not in out:
                out.append(text)
        if len(out) >= 4:
            break
    return out


def pick_root_cause(
    findings: list[Finding], question: str = "", focus: str | None = None
) -> RootCause:
    """Rank (component, category) groups of findings and name the most likely cause."""
    if not findings:
        return RootCause(
            component="system",
            category="unknown",
            summary="No evidence of a fault was found in health, breakers, error logs or "
            "the timeline.",
            confidence=0.2,
        )
    groups: dict[tuple[str, str], list[Finding]] = {}
    for f in findings:
        groups.setdefault((f.component, f.category), []).append(f)
    hint = f"{question} {focus or ''}".lower()
    # components whose breaker is open or whose errors spike are explained by a more
    # fundamental finding on the same component: the chain collapses onto its cause
    components_in_trouble = {f.component for f in findings if f.severity != "warning"}

    def score(key: tuple[str, str]) -> tuple[float, int]:
        members = groups[key]
        component, category = key
        sev = max(SEVERITY_WEIGHT[m.severity] for m in members)
        sources = len({e for m in members for e in m.evidence_ids})
        value = sev * 10.0 + (8 - CAUSAL_RANK[category]) * 1.5 + min(sources, 3) * 2.0
        if component in components_in_trouble and CAUSAL_RANK[category] <= 5:
            value += 2.0
        if component != "backend" and any(
            re.search(rf"(?<![a-z]){re.escape(a)}(?![a-z])", hint)
            for a in (component, *_COMPONENT_ALIASES.get(component, ()))
        ):
            value += 3.0  # the question names it (or an alias: "the cache" is redis)
        return value, -CAUSAL_RANK[category]

    best = max(groups, key=score)
    members = groups[best]
    lead = max(members, key=lambda m: SEVERITY_WEIGHT[m.severity])
    evidence_ids = sorted({e for m in members for e in m.evidence_ids}, key=_eid_key)
    related = [
        f
        for f in findings
        if f.component == best[0] and f.category != best[1] and f.severity != "warning"
    ]
    summary = lead.title
    if related:
        titles = list(dict.fromkeys(r.title for r in related))  # each once, in rank order
        summary += "; which explains: " + "; ".join(titles[:3])
        evidence_ids = sorted(
            set(evidence_ids) | {e for r in related for e in r.evidence_ids}, key=_eid_key
        )
    sources = len({e for m in members for e in m.evidence_ids})
    confidence = 0.45 + 0.15 * min(sources, 3) + (0.1 if lead.severity != "warning" else 0.0)
    return RootCause(
        component=best[0],
        category=lead.category,
        summary=summary[:600],
        confidence=round(min(confidence, 0.95), 2),
        evidence_ids=evidence_ids,
    )


def _eid_key(eid: str) -> tuple[int, str]:
    digits = re.sub(r"\D", "", eid)
    return (int(digits) if digits else 0, eid)


def _overall_status(records: list[EvidenceRecord], findings: list[Finding]) -> str:
    for record in records:
        data = record.get("data")
        if _role(record["tool"]) == "health" and isinstance(data, dict):
            status = str(data.get("status", "")).lower()
            if status in ("healthy", "degraded", "unhealthy"):
                if status == "healthy" and any(f.severity != "warning" for f in findings):
                    return "degraded"
                return status
    if any(f.severity == "critical" for f in findings):
        return "unhealthy"
    if findings:
        return "degraded"
    return "healthy" if records else "unknown"


def analyse(
    records: list[EvidenceRecord],
    *,
    question: str = "",
    focus: str | None = None,
    thresholds: Thresholds | None = None,
    finding_prefix: str = "F",
) -> Analysis:
    """Run every analyzer over the evidence records; rank the findings."""
    t = thresholds or Thresholds()
    b = _Builder(finding_prefix)
    for record in records:
        if not record.get("ok", True):
            continue
        role = _role(str(record.get("tool", "")))
        if is_browser_record(record):  # its own rule: browser error → backend cause
            browser_findings(record, records, b.add, lambda rs: analyse(rs).root_cause)
        elif is_metrics_record(record):  # its own rule: Prometheus error rate and latency
            metrics_findings(record, b.add, t)
        elif role == "health":
            _health(record, b, t)
        elif role == "circuits":
            _circuits(record, b)
        elif role == "errors":
            _errors(record, b, t)
        elif role == "timeline":
            _timeline(record, b)
        elif role == "logs":
            _logs(record, b, t)
    findings = sorted(
        b.findings,
        key=lambda f: (-SEVERITY_WEIGHT[f.severity], CAUSAL_RANK[f.category], f.id),
    )
    root = pick_root_cause(findings, question, focus)
    return Analysis(
        findings=findings,
        root_cause=root,
        status=_overall_status(records, findings),
        recommendations=recommendations_for(root, findings),
    )
