"""The offline diagnosis: the question's symptom, its path through the stack model, the cause.

1. The question is read as a symptom (:mod:`agent.symptom`): a component or route and a kind
   (slow, failing, rejected, overall) — the focus option overrides what it names.
2. The rules (:mod:`agent.rules`, one collector per evidence role) read the evidence into
   signals: the model's faulty nodes with the category of their cause, error groups by their
   ``error_code``/``provider`` fields, this deployment's recent timeline events, open
   breakers, the page's errors traced to the backend. Nothing is read from free text.
3. The symptom's path is the part of the model its entry nodes depend on (``walk``). The root
   cause is the deepest faulty node on it (a node that only repeats a faulty dependency's
   cause is on the chain, not a cause) whose category explains the symptom's kind
   (:mod:`agent.rules.categories`), the worst and most fundamental first; evidence outside
   the model (a rejected credential only the logs show) counts when its component is on the
   path. The chain from the symptom down to it is kept: ``orders slow ← backend degraded ←
   database: latency 801 ms > 100 ms``.
4. Faults off the path are *other problems*, never the root cause; absent optional services
   never count. When nothing on the path is wrong the answer is that the system looks healthy
   for that question, and what was checked.
5. The status agrees with the root cause: a cause means degraded or unhealthy (the worst on
   the path), no cause means healthy.

Nothing here does I/O.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from agent.browser_evidence import PAGE_COMPONENT
from agent.models import (
    EvidenceRecord,
    Finding,
    OverallStatus,
    RootCause,
    SymptomView,
)
from agent.rules import COLLECTORS, RuleInput, Signal
from agent.rules.categories import CATEGORY_RULES, explains, recommendation
from agent.rules.model import parse_model
from agent.symptom import COMPONENT_WORDS, about_the_page, read_symptom
from agent.toolnames import role_of
from guilde_core.config import Settings
from guilde_core.stack import Node, StackModel, aggregate, canonical

__all__ = [
    "DEFAULT_WINDOW_MINUTES",
    "HEALTHY_COMPONENT",
    "Analysis",
    "Thresholds",
    "analyse",
    "canonical_component",
    "supported",
]

#: evidence older than this (before the model's observation) does not count by default
DEFAULT_WINDOW_MINUTES = 15.0
#: the root cause's component when nothing on the symptom's path is wrong
HEALTHY_COMPONENT = "system"
SEVERITY_WEIGHT: dict[str, int] = {"info": 1, "warning": 2, "error": 3, "critical": 4}


def canonical_component(name: str) -> str:
    """A stable name for a component, as a person or a check calls it: ``postgres``/``db``
    → ``database``, ``cache`` → ``redis``."""
    low = name.strip().lower()
    return canonical(COMPONENT_WORDS.get(low, low))


@dataclass(frozen=True)
class Thresholds:
    """Limits the rules use that the stack model does not carry (the model's own reasons
    already hold each check's threshold)."""

    error_spike_count: int = 5
    #: latency limits of evidence read outside the model (Prometheus series), per component
    db_latency_ms: float = 100.0
    redis_latency_ms: float = 50.0
    api_latency_ms: float = 500.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Thresholds:
        return cls(
            db_latency_ms=settings.health_warn_db_latency_ms,
            redis_latency_ms=settings.health_warn_redis_latency_ms,
            api_latency_ms=settings.health_warn_api_latency_ms,
        )

    def latency_for(self, component: str) -> float:
        if component == "database":
            return self.db_latency_ms
        if component == "redis":
            return self.redis_latency_ms
        return self.api_latency_ms


@dataclass
class Analysis:
    """What the offline pass concluded for one question."""

    findings: list[Finding]
    root_cause: RootCause
    status: OverallStatus
    recommendations: list[str] = field(default_factory=list)
    symptom: SymptomView | None = None
    chain: list[str] = field(default_factory=list)
    other_problems: list[Finding] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)


def _latest_model(records: list[EvidenceRecord]) -> tuple[StackModel | None, str | None]:
    for record in reversed(records):
        if role_of(str(record.get("tool", ""))) == "topology":
            model = parse_model(record)
            if model is not None:
                return model, record["id"]
    return None, None


def _instance(records: list[EvidenceRecord]) -> str | None:
    for record in records:
        data = record.get("data")
        if role_of(str(record.get("tool", ""))) == "timeline" and isinstance(data, dict):
            value = data.get("instance")
            if isinstance(value, str):
                return value
    return None


def _signals(records: list[EvidenceRecord], context: RuleInput) -> list[Signal]:
    out: list[Signal] = []
    seen: set[tuple[str, str, str, str | None, str]] = set()
    for record in records:
        if not record.get("ok", True):
            continue
        collector = COLLECTORS.get(role_of(str(record.get("tool", ""))))
        if collector is None:
            continue
        for signal in collector(record, context):
            key = (signal.component, signal.category, signal.evidence_id, signal.node, signal.title)
            if key not in seen:
                seen.add(key)
                out.append(signal)
    return out


@dataclass
class _Path:
    """The symptom's path: each node reachable from an entry, with the ids leading to it."""

    routes: dict[str, list[str]]
    components: set[str]

    @classmethod
    def of(cls, model: StackModel | None, entry: list[str]) -> _Path:
        routes: dict[str, list[str]] = {}
        if model is not None:
            for start in entry:
                for node, ids in model.walk(start):
                    if node.id not in routes or len(ids) > len(routes[node.id]):
                        routes[node.id] = ids
        components = {model.node(i).component for i in routes} if model is not None else set()
        return cls(routes, components)

    def holds(self, signal: Signal, model: StackModel | None) -> bool:
        if model is None:
            return signal.attributed
        if signal.node is not None:
            return signal.node in self.routes
        return signal.attributed and signal.component in self.components

    def route_to(self, signal: Signal, model: StackModel) -> list[str]:
        if signal.node is not None and signal.node in self.routes:
            return self.routes[signal.node]
        # a signal about a component, read outside the model (a log line, a failed request
        # of the page): the component's own nodes, not the checks it reports on itself
        # (backend/errors is the backend's check, not a part the fault sits in)
        matching = [
            ids for node_id, ids in self.routes.items()
            if model.node(node_id).component == signal.component
        ]  # fmt: skip
        own = [ids for ids in matching if model.node(ids[-1]).kind != "check"]
        return max(own or matching, key=len) if matching else []


def _link(node: Node, leaf: bool) -> str:
    cause = node.cause
    if leaf and cause is not None:
        return f"{node.name}: {cause.summary}"
    measured = f", {node.latency_ms:.0f} ms" if node.latency_ms is not None else ""
    return f"{node.name} {node.status}{measured}"


def _current(signal: Signal, model: StackModel | None) -> bool:
    """Whether the model still sees the fault: a fault it shows now outranks one whose
    component has recovered (a log line of a failure minutes ago, inside the question's
    window, about a component every node of which is healthy again). A component the model
    does not hold cannot be judged: it counts as current."""
    if model is None:
        return True
    if signal.node is not None:
        node = model.get(signal.node)
        return node is None or node.faulty
    nodes = [n for n in model.by_component(signal.component) if n.counts]
    return not nodes or any(n.faulty for n in nodes)


def _score(
    signal: Signal, kind: str, depth: int, model: StackModel | None
) -> tuple[int, bool, int, int, bool, int]:
    return (
        explains(signal.category, signal.component, kind),  # type: ignore[arg-type]
        _current(signal, model),
        SEVERITY_WEIGHT[signal.severity],
        -CATEGORY_RULES[signal.category].causal_rank,
        signal.node is not None,
        depth,
    )


def _finding(signal: Signal, fid: str, evidence: list[str] | None = None) -> Finding:
    return Finding(
        id=fid,
        title=signal.title[:300],
        detail=signal.detail[:600],
        component=signal.component,
        category=signal.category,
        severity=signal.severity,
        evidence_ids=evidence or [signal.evidence_id],
    )


def _eid_key(eid: str) -> tuple[int, str]:
    digits = "".join(ch for ch in eid if ch.isdigit())
    return (int(digits) if digits else 0, eid)


def _checked(model: StackModel | None, path: _Path) -> list[str]:
    if model is None:
        return []
    out: list[str] = []
    for node_id in path.routes:
        node = model.node(node_id)
        state = "absent (never answered; not counted)" if node.absent else node.status
        measured = f", {node.latency_ms:.0f} ms" if node.latency_ms is not None else ""
        out.append(f"{node.id}: {state}{measured}")
    return out


def analyse(
    records: list[EvidenceRecord],
    *,
    question: str = "",
    focus: str | None = None,
    thresholds: Thresholds | None = None,
    finding_prefix: str = "F",
    window_minutes: float | None = None,
) -> Analysis:
    """The offline diagnosis of ``question`` over the evidence ``records``."""
    t = thresholds or Thresholds()
    model, model_eid = _latest_model(records)
    symptom = read_symptom(question, focus, model)
    now = model.observed_at if model is not None else datetime.now(UTC)
    window = timedelta(minutes=window_minutes or DEFAULT_WINDOW_MINUTES)
    context = RuleInput(
        records=records,
        model=model,
        since=now - window,
        instance=_instance(records),
        spike_count=t.error_spike_count,
        thresholds=t,
    )
    signals = _signals(records, context)
    path = _Path.of(model, symptom.entry)
    if about_the_page(question, focus) or (
        symptom.kind == "overall" and symptom.component is None and symptom.route is None
    ):
        # the page the browser capture watches: on the path of a question about what users
        # see, and of one about the whole stack (its signals name the frontend)
        path.components.add(PAGE_COMPONENT)
    on_path = [s for s in signals if path.holds(s, model)]

    def depth(signal: Signal) -> int:
        return len(path.route_to(signal, model)) if model is not None else 0

    def relevant(signal: Signal) -> bool:
        # a fault that cannot cause this kind of symptom and that the model no longer shows
        # (its component is healthy again) is no answer to the question: it stays listed
        return bool(explains(signal.category, signal.component, symptom.kind)) or _current(
            signal, model
        )

    candidates = [s for s in on_path if s.attributed and relevant(s)]
    services = [
        n
        for n in (model.node(i) for i in symptom.entry)
        if n.kind == "service" and n.source != "builtin" and n.counts
    ] if model is not None else []  # fmt: skip
    if not candidates and services:
        # errors in the watched logs that name no component are the application's: with
        # nothing on the path to explain them, they are the (critical) entry service's own
        entry = sorted(services, key=lambda n: not n.critical)[0]
        candidates = [
            replace(s, component=entry.component, node=entry.id, attributed=True)
            for s in signals
            if not s.attributed and s.severity in ("error", "critical")
        ]
        on_path += candidates
        candidates = [s for s in candidates if relevant(s)]
    best = max(candidates, key=lambda s: _score(s, symptom.kind, depth(s), model), default=None)

    counter = iter(range(1, 10_000))
    findings: list[Finding] = []
    other: list[Finding] = []
    for signal in sorted(
        signals,
        key=lambda s: (-SEVERITY_WEIGHT[s.severity], CATEGORY_RULES[s.category].causal_rank),
    ):
        finding = _finding(signal, f"{finding_prefix}{next(counter)}")
        off_path = signal not in on_path and signal.attributed
        if off_path and (best is None or signal.component != best.component):
            other.append(finding)
        else:
            findings.append(finding)

    checked = _checked(model, path)
    if best is None:
        cited = [model_eid] if model_eid else sorted({s.evidence_id for s in signals})[:1]
        what = "; ".join(checked[:12]) or (
            "no model of the stack was available"
            if model is None
            else "the stack model, in which nothing serves that symptom"
        )
        summary = f"{symptom.label}: the system looks healthy for that question. Checked: {what}."
        if other:
            summary += " Other problems (not on this path): " + "; ".join(
                f.title for f in other[:3]
            )
        root = RootCause(
            component=HEALTHY_COMPONENT,
            category="unknown",
            summary=summary[:800],
            confidence=0.8 if model is not None else 0.3,
            evidence_ids=cited,
        )
        recs = [recommendation(f.category, f.component) for f in other[:3]]
        return Analysis(
            findings=findings,
            root_cause=root,
            status="healthy" if model is not None or records else "unknown",
            recommendations=list(dict.fromkeys(recs)),
            symptom=symptom,
            chain=[],
            other_problems=other,
            checked=checked,
        )

    chain: list[str] = [symptom.label]
    status: OverallStatus = "degraded"
    if model is not None:
        ids = path.route_to(best, model)
        for i, node_id in enumerate(ids):
            node = model.node(node_id)
            chain.append(_link(node, leaf=i == len(ids) - 1 and best.node is not None))
        if aggregate(model.node(i) for i in ids) == "unhealthy":
            status = "unhealthy"
    if best.node is None:
        chain.append(f"{best.component}: {best.title}")
    supporting = [
        s
        for s in signals
        if s.component == best.component or (not s.attributed and s.category == best.category)
    ]
    evidence_ids = sorted({s.evidence_id for s in supporting}, key=_eid_key)
    sources = len(evidence_ids)
    confidence = 0.5 + 0.1 * min(sources, 3) + (0.1 if best.node is not None else 0.0)
    if not explains(best.category, best.component, symptom.kind):
        confidence -= 0.2
    summary = best.title
    if len(chain) > 1:
        summary += " — chain: " + " ← ".join(chain)
    related = [s.title for s in supporting if s is not best and s.category != best.category]
    if related:
        summary += "; which explains: " + "; ".join(dict.fromkeys(related[:3]))
    root = RootCause(
        component=best.component,
        category=best.category,
        summary=summary[:800],
        confidence=round(min(max(confidence, 0.2), 0.95), 2),
        evidence_ids=evidence_ids,
    )
    recs = [recommendation(best.category, best.component)]
    for f in [*findings, *other]:
        if f.severity in ("error", "critical"):
            recs.append(recommendation(f.category, f.component))
    return Analysis(
        findings=findings,
        root_cause=root,
        status=status,
        recommendations=list(dict.fromkeys(recs))[:4],
        symptom=symptom,
        chain=chain,
        other_problems=other,
        checked=checked,
    )


def supported(
    records: list[EvidenceRecord],
    component: str,
    category: str,
    cited: Sequence[str],
    offline_root: RootCause | None = None,
) -> bool:
    """Whether the records ``cited`` show ``component`` with a ``category`` fault, read by the
    same rules as the offline pass; a claim that nothing is wrong holds only when the offline
    pass found nothing on the symptom's path either."""
    if category == "unknown" or canonical_component(component) in (HEALTHY_COMPONENT, "none"):
        return offline_root is not None and offline_root.component == HEALTHY_COMPONENT
    model, _ = _latest_model(records)
    context = RuleInput(records=records, model=model, instance=_instance(records))
    wanted = set(cited)
    target = canonical_component(component)
    for signal in _signals([r for r in records if r["id"] in wanted], context):
        if signal.category == category and canonical_component(signal.component) == target:
            return True
    if model is None:
        return False
    # a health report cited for a fault the model shows: it must hold that component's check
    shown = [
        s
        for s in _signals([r for r in records if role_of(r["tool"]) == "topology"], context)
        if s.category == category and canonical_component(s.component) == target
    ]
    names = {model.node(s.node).name for s in shown if s.node is not None}
    for record in records:
        if record["id"] in wanted and role_of(record["tool"]) in ("health", "checks"):
            text = json.dumps(record.get("data"), default=str)
            if any(f'"{name}"' in text for name in names):
                return True
    return False
