"""Build the stack model (:class:`guilde_core.stack.StackModel`) from one round of checks.

Sources, merged into one graph:

* **targets** (settings, targets file, runtime registry, compose — one :class:`Target` each)
  become nodes: services (http, tcp, metrics), datastores (redis, postgres) and host
  resources (disk, memory, cpu, as ``host/<name>`` under dev3000). A target's
  ``depends_on`` becomes "depends on" edges;
* each HTTP target's **own health report** (``{status, checks}``, the seed's deep report or
  any check map with ``status`` fields) becomes child nodes of it — ``backend/database``,
  ``backend/openai`` (from ``checks.external_apis``), ``backend/latency`` … —, each with the
  reasons read from its structured fields (:mod:`servers.health.reasons`);
* **breakers** of dev3000's registry hang under the component they protect: one shared
  through Redis (any process's) is merged into a report's child of the same component
  (``backend/database``, ``backend/openai``) or a target of that name; one of this process
  alone, or one nothing else matches, is a provider node under dev3000 (``dev3000/openai``);
* dev3000's **own checks** (the shared stores it runs on) are children of the ``dev3000``
  node; the directories its disk check watches are children of ``host/disk``;
* a **compose file** adds its services' ``depends_on`` edges (services no target probes are
  shown as absent nodes).

``ever_up`` is kept by the caller across rounds (ids of nodes seen up since dev3000
started): a non-critical target that never answered is ``absent`` — shown, never counted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from guilde_core.config import Settings
from guilde_core.redaction import redact
from guilde_core.stack import (
    Edge,
    EdgeSource,
    Node,
    NodeKind,
    NodeSource,
    Reason,
    StackModel,
    Status,
    aggregate,
    rank,
    worst,
)
from servers.circuits.models import Breaker
from servers.health.compose import ComposeService
from servers.health.models import CheckResult, Target
from servers.health.reasons import (
    SELF_CHECKS,
    canonical,
    circuit_reasons,
    node_kind,
    normalise_status,
    reasons_of,
)

__all__ = ["SELF_ID", "Observation", "build_topology", "self_node"]

#: the node of the diagnostic server itself (its own checks and breakers hang under it)
SELF_ID = "dev3000"
_RESOURCE_KINDS = frozenset({"disk", "memory", "cpu"})
_SERVICE_KINDS = frozenset({"http", "tcp", "metrics"})
_MAX_DETAILS = 24
_MAX_TEXT = 240
#: targets the settings declare by default depend on these (when both exist)
_BUILTIN_DEPENDS: dict[str, tuple[str, ...]] = {
    "backend": ("database", "redis"),
    "frontend": ("backend",),
    "agent": (SELF_ID,),
}


@dataclass
class Observation:
    """One round of checks: what the builder reads."""

    settings: Settings
    observed_at: datetime
    targets: Sequence[Target]
    results: Mapping[str, CheckResult]
    breakers: Sequence[Breaker] = ()
    #: dev3000's own checks (its shared stores): name → check mapping with a ``status``
    self_checks: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    compose: Sequence[ComposeService] = ()
    #: ids of nodes seen up since dev3000 started; the builder adds this round's
    ever_up: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)


class _Graph:
    def __init__(self, obs: Observation) -> None:
        self.obs = obs
        self.nodes: dict[str, dict[str, Any]] = {}
        self.edges: dict[tuple[str, str], EdgeSource] = {}
        self.notes = list(obs.notes)
        self.target_ids: dict[str, str] = {}

    # --- primitives ---------------------------------------------------------------------
    def unique(self, wanted: str) -> str:
        node_id, n = wanted, 2
        while node_id in self.nodes:
            node_id, n = f"{wanted}-{n}", n + 1
        return node_id

    def add(self, node: dict[str, Any]) -> str:
        node["id"] = self.unique(node["id"])
        self.nodes[node["id"]] = node
        return str(node["id"])

    def edge(self, source: str, target: str, origin: EdgeSource) -> None:
        if source != target and (source, target) not in self.edges:
            self.edges[(source, target)] = origin

    def seen_up(self, node_id: str, up: bool) -> bool:
        if up:
            self.obs.ever_up.add(node_id)
        return node_id in self.obs.ever_up

    def children_of(self, node_id: str) -> list[dict[str, Any]]:
        return [n for n in self.nodes.values() if n.get("parent") == node_id]

    # --- the parts ----------------------------------------------------------------------
    def self_node(self) -> str:
        taken = {t.name for t in self.obs.targets}
        wanted = SELF_ID if SELF_ID not in taken else f"{SELF_ID}-self"
        node_id = self.add(
            {
                "id": wanted,
                "name": SELF_ID,
                "kind": "service",
                "component": SELF_ID,
                "source": "builtin",
                "ever_up": self.seen_up(wanted, True),
                "observed_at": self.obs.observed_at,
            }
        )
        for name, check in self.obs.self_checks.items():
            self.child(node_id, name, check, field=f"checks.{name}", source="report")
        self.summarise(node_id)
        return node_id

    def child(
        self,
        parent: str,
        name: str,
        check: Mapping[str, Any],
        *,
        field: str,
        source: NodeSource,
        provider: bool = False,
        parent_component: str | None = None,
    ) -> str:
        """A check of ``parent``'s report as a node under it."""
        kind_hint = check.get("type") or check.get("kind") or check.get("backend")
        if name in SELF_CHECKS and parent_component:
            component = parent_component
        else:
            component = canonical(name, kind_hint if isinstance(kind_hint, str) else None)
        status = normalise_status(check.get("status"))
        node_id = f"{parent}/{name}"
        latency = check.get("latency_ms")
        node = {
            "id": node_id,
            "name": name,
            "kind": node_kind(component, provider=provider),
            "component": component,
            "parent": parent,
            "critical": check.get("critical") is True,
            "status": status,
            "reasons": reasons_of(
                check, field=field, component=component, settings=self.obs.settings
            ),
            "latency_ms": _number(latency),
            "error": _text(check.get("error")),
            "source": source,
            "details": _details(check),
            "observed_at": self.obs.observed_at,
        }
        node_id = self.add(node)
        node["ever_up"] = self.seen_up(node_id, status != "unhealthy")
        self.edge(parent, node_id, "report")
        return node_id

    def report(self, parent: str, component: str, report: Mapping[str, Any]) -> None:
        """The children of ``parent`` from its own health report's ``checks``."""
        checks = report.get("checks")
        if not isinstance(checks, Mapping):
            return
        for name, body in checks.items():
            if not isinstance(body, Mapping):
                continue
            if "status" in body:
                self.child(
                    parent, str(name), body, field=f"checks.{name}", source="report",
                    parent_component=component,
                )  # fmt: skip
                continue
            provider = name == "external_apis"
            for sub, sub_body in body.items():  # a group: external_apis, observability …
                if isinstance(sub_body, Mapping) and "status" in sub_body:
                    self.child(
                        parent, str(sub), sub_body, field=f"checks.{name}.{sub}",
                        source="report", provider=provider, parent_component=component,
                    )  # fmt: skip

    def summarise(self, node_id: str, reported: Status | None = None) -> None:
        """A node with children (a report): its status is the worse of its own and the one
        reported; a reported fault is explained by the worst child's cause."""
        node = self.nodes[node_id]
        own: Status = node.get("status", "healthy")
        kids = self.children_of(node_id)
        if reported is None:
            reported = worst(k["status"] for k in kids)
        status = worst([own, reported])
        reasons: list[Reason] = list(node.get("reasons", []))
        if rank(reported) > 0:
            culprits = sorted(
                (k for k in kids if k["status"] != "healthy" and k["reasons"]),
                key=lambda k: -rank(k["status"]),
            )
            if culprits:
                culprit = culprits[0]
                cause = Node.model_validate(culprit).cause
                assert cause is not None
                summary = f"reports {reported}: {culprit['name']} — {cause.summary}"
                category = cause.category
            else:
                summary, category = f"reports {reported}", "unknown"
            reported_reason = Reason(
                category=category, summary=summary[:_MAX_TEXT], field="report.status",
                value=reported,
            )  # fmt: skip
            # the report explains the node's own failure (a 503 because the database is down)
            reasons = [
                reported_reason,
                *(r.model_copy(update={"consequence": True}) for r in reasons),
            ]
        node["status"], node["reasons"] = status, reasons

    def target(self, t: Target, self_id: str) -> str:
        result = self.obs.results[t.name]
        kind: NodeKind
        if t.kind in _RESOURCE_KINDS:
            kind, wanted, parent_edge = "resource", f"host/{t.name}", True
        else:
            kind = "service" if t.kind in _SERVICE_KINDS else "datastore"
            wanted, parent_edge = t.name, False
        component = canonical(t.name, t.kind if t.kind in ("postgres", "redis") else None)
        if t.kind in _RESOURCE_KINDS:
            component = t.kind
        node: dict[str, Any] = {
            "id": wanted,
            "name": t.name,
            "kind": kind,
            "component": component,
            "critical": t.critical,
            "source": t.source,
            "url": _target_url(t),
        }
        details = dict(result.details)
        report = details.pop("report", None)
        directories = details.pop("directories", None)
        check = {
            **details,
            "status": result.status,
            "error": result.error,
            "error_code": result.error_code,
        }
        node.update(
            status=result.status,
            reasons=reasons_of(
                check, field=f"targets.{t.name}", component=component, settings=self.obs.settings
            ),
            latency_ms=result.latency_ms,
            error=_text(result.error),
            details=_details(details),
            observed_at=result.observed_at,
        )
        node_id = self.add(node)
        self.target_ids[t.name] = node_id
        answered = result.status != "unhealthy" or result.error_code == "unexpected_status"
        node["ever_up"] = self.seen_up(node_id, answered)
        node["absent"] = not t.critical and not node["ever_up"]
        if parent_edge:
            self.edge(self_id, node_id, "declared")
        if isinstance(directories, list):
            for i, entry in enumerate(directories):
                if isinstance(entry, Mapping):
                    role = str(entry.get("role") or "path")
                    self.child(
                        node_id, role, {**entry, "type": "disk"},
                        field=f"targets.{t.name}.directories[{i}]", source="report",
                        parent_component="disk",
                    )  # fmt: skip
        if isinstance(report, Mapping):
            self.report(node_id, component, report)
            self.summarise(node_id, normalise_status(report.get("status")))
        return node_id

    def resolve(self, name: str, declarer: str | None) -> str | None:
        """A name in ``depends_on`` → a node id: an id, a target, a child of the declarer
        with that component, a top-level node with that component, else any node with it."""
        if name in self.nodes:
            return name
        if name in self.target_ids:
            return self.target_ids[name]
        wanted = canonical(name)
        if declarer is not None:
            for kid in self.children_of(declarer):
                if kid["component"] == wanted:
                    return str(kid["id"])
        matching = [n for n in self.nodes.values() if n["component"] == wanted]
        top = [n for n in matching if n.get("parent") is None]
        return str((top or matching)[0]["id"]) if matching else None

    def declared(self) -> None:
        for t in self.obs.targets:
            node_id = self.target_ids.get(t.name)
            if node_id is None:
                continue
            for name in t.depends_on:
                dep = self.resolve(name, node_id)
                if dep is None:
                    self.notes.append(f"{t.name} depends on {name!r}: no such target or component")
                else:
                    self.edge(node_id, dep, "declared")
            if t.source == "settings" and not t.depends_on:
                for name in _BUILTIN_DEPENDS.get(t.name, ()):
                    dep = self.target_ids.get(name) or (name if name in self.nodes else None)
                    if dep is not None:
                        self.edge(node_id, dep, "declared")

    def breaker(self, b: Breaker, self_id: str) -> None:
        component = canonical(b.name)
        raw = {
            "status": b.status,
            "circuit_state": b.state.value,
            "failure_count": b.failure_count,
            "last_error": b.last_error,
            "forced": b.forced,
            "disabled": b.disabled,
        }
        hosts: list[dict[str, Any]] = []
        if b.backend != "memory":  # shared through Redis: another process's breaker too
            hosts = [
                n for n in self.nodes.values()
                if n.get("parent") is not None and n.get("source") == "report"
                and n["component"] == component and n["parent"] != self_id
            ]  # fmt: skip
            if not hosts and b.name in self.target_ids:
                hosts = [self.nodes[self.target_ids[b.name]]]
        if hosts:
            for node in hosts:
                self.merge_breaker(node, raw, b)
            return
        node_id = self.add(
            {
                "id": f"{self_id}/{b.name}",
                "name": b.name,
                "kind": node_kind(component, provider=component not in ("database", "redis")),
                "component": component,
                "parent": self_id,
                "status": b.status,
                "reasons": circuit_reasons(raw, f"breakers.{b.name}"),
                "error": _text(b.last_error) if b.status != "healthy" else None,
                "source": "breaker",
                "details": _details(raw),
                "observed_at": self.obs.observed_at,
            }
        )
        up = b.last_success_at is not None or b.status == "healthy"
        self.nodes[node_id]["ever_up"] = self.seen_up(node_id, up)
        self.edge(self_id, node_id, "breaker")

    def merge_breaker(self, node: dict[str, Any], raw: dict[str, Any], b: Breaker) -> None:
        status: Status = worst([node["status"], b.status])
        reasons: list[Reason] = list(node.get("reasons", []))
        if b.status != "healthy" and not any(r.category == "circuit_open" for r in reasons):
            extra = circuit_reasons(raw, f"breakers.{b.name}")
            if reasons:  # the node's own observation came first: the breaker follows it
                extra = [
                    r.model_copy(update={"consequence": True})
                    if r.category == "circuit_open"
                    else r
                    for r in extra
                ]
            reasons += extra
        node["status"], node["reasons"] = status, reasons
        node.setdefault("details", {})["breaker"] = _details(raw)
        if node.get("parent") is not None:  # its parent's report summary follows the child
            parent = self.nodes.get(str(node["parent"]))
            if parent is not None and rank(status) > rank(parent["status"]):
                parent["status"] = status
                self.summarise_after_breaker(parent, node)

    def summarise_after_breaker(self, parent: dict[str, Any], child: dict[str, Any]) -> None:
        cause = Node.model_validate(child).cause
        assert cause is not None
        parent["reasons"] = [
            Reason(
                category=cause.category,
                summary=f"depends on {child['name']} — {cause.summary}"[:_MAX_TEXT],
                field=f"breakers.{child['name']}",
            ),
            *(r.model_copy(update={"consequence": True}) for r in parent.get("reasons", [])),
        ]

    def compose(self) -> None:
        """The compose file's ``depends_on`` edges. A service is the target of its name, else
        the child of its dependent's report with its component (``postgres`` → that
        service's ``database``), else a node of its own that nothing probes (absent)."""
        services = {s.name: s for s in self.obs.compose}
        bound = {name: self.target_ids[name] for name in services if name in self.target_ids}
        for service in self.obs.compose:
            source = bound.get(service.name)
            if source is None:
                continue
            for dep in service.depends_on:
                if dep in bound:
                    continue
                dep_service = services.get(dep)
                wanted = canonical(dep, dep_service.image_name if dep_service else None)
                for kid in self.children_of(source):
                    if kid["component"] == wanted:
                        bound[dep] = str(kid["id"])
                        break

        def node_for(name: str) -> str:
            if name not in bound:
                service = services.get(name)
                component = canonical(name, service.image_name if service else None)
                bound[name] = self.add(
                    {
                        "id": f"compose/{name}",
                        "name": name,
                        "kind": "datastore" if component in ("database", "redis") else "service",
                        "component": component,
                        "source": "compose",
                        "absent": True,
                        "details": {"probed": False},
                    }
                )
            return bound[name]

        for service in self.obs.compose:
            source = node_for(service.name)
            for dep in service.depends_on:
                self.edge(source, node_for(dep), "compose")


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _text(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()[:_MAX_TEXT]


def _details(check: Mapping[str, Any]) -> dict[str, Any]:
    """The structured fields of a check (scalars and small mappings), bounded."""
    out: dict[str, Any] = {}
    for key, value in check.items():
        if key in ("status", "error", "critical") or len(out) >= _MAX_DETAILS:
            continue
        if value is None or isinstance(value, bool | int | float):
            if value is not None:
                out[key] = value
        elif isinstance(value, str):
            out[key] = value[:_MAX_TEXT]
        elif isinstance(value, Mapping) and all(
            isinstance(v, str | int | float | bool | None) for v in value.values()
        ):
            out[key] = {str(k): v for k, v in list(value.items())[:_MAX_DETAILS]}
    return out


def _target_url(t: Target) -> str | None:
    if t.kind == "tcp" and t.host:
        return f"tcp://{t.host}:{t.port}"
    if not t.url:
        return None
    if t.kind in ("http", "metrics") and t.path:
        return t.url.rstrip("/") + "/" + t.path.lstrip("/")
    return t.url


def build_topology(obs: Observation) -> StackModel:
    """The stack model of one round (redacted); ``obs.ever_up`` gains this round's."""
    graph = _Graph(obs)
    self_id = graph.self_node()
    for t in obs.targets:
        if t.kind == "external_api":  # dev3000's breakers: read below, one node each
            continue
        if t.name not in obs.results:
            graph.notes.append(f"{t.name}: no check result in this round")
            continue
        graph.target(t, self_id)
    graph.declared()
    for b in obs.breakers:
        graph.breaker(b, self_id)
    graph.compose()
    nodes = [Node.model_validate(redact(n)) for n in graph.nodes.values()]
    edges = [Edge(source=s, target=t, origin=o) for (s, t), o in graph.edges.items()]
    return StackModel(
        status=aggregate(nodes),
        observed_at=obs.observed_at,
        nodes=nodes,
        edges=edges,
        notes=[str(redact(n)) for n in graph.notes],
    )


def self_node(model: StackModel) -> Node:
    """The node of the diagnostic server itself in ``model``."""
    for node in model.nodes:
        if node.component == SELF_ID and node.source == "builtin" and node.parent is None:
            return node
    raise KeyError(SELF_ID)
