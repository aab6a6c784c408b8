"""The model of the watched stack: components, what depends on what, status and *why*.

One graph, read by every surface: deep health fills its report from it, the agent diagnoses
over it, the console draws it, MCP and ``GET /api/v1/diag/topology`` serve it. Building it
(probing targets, reading breakers and a compose file) is the health area's job; this module
only holds the shapes, the shared vocabulary and the graph questions every reader asks.

* A :class:`Node` is a component: a service (an HTTP target), a datastore, an upstream
  provider, a host resource, or another check a service reports about itself. Its
  ``status`` always comes with the :class:`Reason` s that explain it, read from a structured
  field (a check's ``latency_ms`` over its threshold, a breaker's recorded cause, a report's
  ``error``) — never guessed from free text.
* An :class:`Edge` says ``source`` *depends on* ``target``.
* ``ever_up`` tells an incident (was up, went down) from a component that was never there:
  a non-critical node that never answered is ``absent`` — shown, greyed, not a fault.
* :class:`StackModel` keeps the invariant that a status other than healthy is explained by
  at least one node with a reason, and answers "what does X depend on", "what is the
  deepest unhealthy dependency under X" and "which chain leads there".
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "CATEGORIES",
    "CODE_CATEGORY",
    "COMPONENT_NAMES",
    "Category",
    "Edge",
    "EdgeSource",
    "Node",
    "NodeKind",
    "NodeSource",
    "Reason",
    "StackModel",
    "Status",
    "aggregate",
    "canonical",
    "compact",
    "rank",
    "worst",
]

Status = Literal["healthy", "degraded", "unhealthy"]
_RANK: dict[str, int] = {"healthy": 0, "degraded": 1, "unhealthy": 2}

#: what kind of fault a reason (and a diagnosis' finding or root cause) is — the one
#: vocabulary of the project
Category = Literal[
    "unreachable",
    "latency",
    "error_spike",
    "resource_exhaustion",
    "circuit_open",
    "upstream_rate_limited",
    "upstream_auth",
    "configuration",
    "unknown",
]
CATEGORIES: tuple[str, ...] = get_args(Category)

#: the project's error codes (``GuildeError.code``, the ``error_code`` a service logs or a
#: check records, ``unexpected_status`` of a check that got an answer it did not expect) →
#: category: what the health area reads from a check and the agent from a log line's fields
CODE_CATEGORY: dict[str, Category] = {
    "timeout": "latency",
    "connection_failed": "unreachable",
    "unavailable": "unreachable",
    "database_transient": "unreachable",
    "rate_limited": "upstream_rate_limited",
    "rate_limit_exceeded": "upstream_rate_limited",
    "authentication": "upstream_auth",
    "upstream_error": "error_spike",
    "circuit_open": "circuit_open",
    "configuration": "configuration",
    "permanent": "configuration",
    "invalid_input": "configuration",
    "pool_exhausted": "resource_exhaustion",
}

#: names (of checks, report entries, compose services, images, a log line's ``provider``)
#: → the canonical component
COMPONENT_NAMES: dict[str, str] = {
    "database": "database",
    "db": "database",
    "postgres": "database",
    "postgresql": "database",
    "pg": "database",
    "sqlite": "database",
    "mysql": "database",
    "mariadb": "database",
    "redis": "redis",
    "valkey": "redis",
    "openai": "openai",
    "anthropic": "anthropic",
    "openrouter": "openrouter",
    "disk": "disk",
    "memory": "memory",
    "cpu": "cpu",
    "config": "config",
    "configuration": "config",
}


def canonical(name: str, kind: str | None = None) -> str:
    """The canonical component of a check/service called ``name`` (of ``kind``/``type``):
    ``postgres`` → ``database``, a check ``cache`` of type ``redis`` → ``redis``; a name the
    table doesn't know stays itself (lower case)."""
    low = name.strip().lower()
    if low in COMPONENT_NAMES:
        return COMPONENT_NAMES[low]
    if kind and kind.strip().lower() in COMPONENT_NAMES:
        return COMPONENT_NAMES[kind.strip().lower()]
    return low


NodeKind = Literal["service", "datastore", "provider", "resource", "check"]
NodeSource = Literal["settings", "file", "registry", "builtin", "report", "breaker", "compose"]
EdgeSource = Literal["declared", "report", "breaker", "compose"]


def rank(status: Status) -> int:
    """0 healthy, 1 degraded, 2 unhealthy."""
    return _RANK[status]


def aggregate(nodes: Iterable[Node]) -> Status:
    """The stack's status from its nodes: the worst critical status; a non-critical fault
    only degrades; absent nodes don't count."""
    out: Status = "healthy"
    for node in nodes:
        if not node.counts:
            continue
        status: Status = node.status
        if not node.critical and status == "unhealthy":
            status = "degraded"
        out = worst([out, status])
    return out


def worst(statuses: Iterable[Status]) -> Status:
    """The worst of ``statuses`` (healthy when there are none)."""
    out: Status = "healthy"
    for status in statuses:
        if _RANK[status] > _RANK[out]:
            out = status
    return out


class Reason(BaseModel):
    """Why a node is not healthy: one structured observation."""

    model_config = ConfigDict(extra="forbid")

    category: Category
    summary: str = Field(description="One line a person reads: 'latency 801 ms > 100 ms'.")
    field: str | None = Field(
        None, description="Where it was read, e.g. 'checks.database.latency_ms', 'last_error'."
    )
    value: float | str | None = Field(None, description="The observed value.")
    threshold: float | None = Field(None, description="The limit it crossed, if any.")
    observed_at: datetime | None = None
    consequence: bool = Field(
        False,
        description="Follows from an earlier reason of the same node (the breaker open after "
        "a 429 storm): that earlier reason is the cause.",
    )


class Node(BaseModel):
    """One component of the watched stack."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="Unique path: 'backend', 'backend/database', 'host/disk'.")
    name: str = Field(description="Display name: 'database'.")
    kind: NodeKind
    component: str = Field(description="Canonical component: database, redis, openai, backend …")
    parent: str | None = Field(None, description="The node whose own report showed this one.")
    critical: bool = False
    status: Status = "healthy"
    reasons: list[Reason] = Field(default_factory=list)
    ever_up: bool = Field(False, description="Answered at least once since dev3000 started.")
    absent: bool = Field(
        False, description="Never answered and not critical: shown, greyed, not an incident."
    )
    latency_ms: float | None = None
    observed_at: datetime | None = None
    error: str | None = Field(None, description="The last error, redacted.")
    url: str | None = Field(None, description="Where it is probed, credentials redacted.")
    source: NodeSource = "settings"
    details: dict[str, Any] = Field(default_factory=dict, description="Redacted, bounded.")

    @property
    def counts(self) -> bool:
        """Whether this node's status may set the stack's (absent nodes never do)."""
        return not self.absent

    @property
    def faulty(self) -> bool:
        return self.counts and self.status != "healthy"

    @property
    def cause(self) -> Reason | None:
        """The first reason that is not a consequence of another (None when healthy)."""
        first = self.reasons[0] if self.reasons else None
        return next((r for r in self.reasons if not r.consequence), first)

    @model_validator(mode="after")
    def _explained(self) -> Node:
        if self.status != "healthy" and not self.reasons:
            raise ValueError(f"node {self.id!r} is {self.status} without a reason")
        return self


class Edge(BaseModel):
    """``source`` depends on ``target``."""

    model_config = ConfigDict(extra="forbid")

    source: str
    target: str
    origin: EdgeSource = "declared"


class StackModel(BaseModel):
    """The graph of the watched stack at one moment."""

    model_config = ConfigDict(extra="forbid")

    status: Status
    observed_at: datetime
    nodes: list[Node] = Field(default_factory=list)
    edges: list[Edge] = Field(default_factory=list)
    notes: list[str] = Field(
        default_factory=list, description="Problems building the model (a bad compose file …)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> StackModel:
        ids = [n.id for n in self.nodes]
        if len(ids) != len(set(ids)):
            raise ValueError("node ids must be unique")
        known = set(ids)
        for edge in self.edges:
            if edge.source not in known or edge.target not in known:
                raise ValueError(f"edge {edge.source}->{edge.target} names an unknown node")
        expected = aggregate(self.nodes)
        if self.status != expected:
            raise ValueError(f"stack status {self.status} disagrees with its nodes ({expected})")
        return self

    # --- lookups -------------------------------------------------------------------------
    def node(self, node_id: str) -> Node:
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    def get(self, node_id: str) -> Node | None:
        try:
            return self.node(node_id)
        except KeyError:
            return None

    def by_component(self, component: str) -> list[Node]:
        """Nodes that are ``component`` (by canonical component, name or id)."""
        low = component.lower()
        return [n for n in self.nodes if low in (n.component.lower(), n.name.lower(), n.id)]

    def dependencies(self, node_id: str) -> list[Node]:
        """What ``node_id`` depends on directly (declared, reported or behind a breaker)."""
        return [self.node(e.target) for e in self.edges if e.source == node_id]

    def children(self, node_id: str) -> list[Node]:
        """The nodes whose ``parent`` is ``node_id`` (what its own report showed)."""
        return [n for n in self.nodes if n.parent == node_id]

    def dependents(self, node_id: str) -> list[Node]:
        """What depends on ``node_id`` directly."""
        return [self.node(e.source) for e in self.edges if e.target == node_id]

    def roots(self) -> list[Node]:
        """Nodes nothing depends on (the entry points a user's symptom usually names)."""
        targets = {e.target for e in self.edges}
        return [n for n in self.nodes if n.id not in targets]

    def explaining(self) -> list[Node]:
        """Counted nodes that are not healthy — each carries its reasons."""
        return [n for n in self.nodes if n.faulty]

    # --- paths ---------------------------------------------------------------------------
    def walk(self, node_id: str) -> Iterator[tuple[Node, list[str]]]:
        """Breadth-first over ``node_id`` and everything it depends on, with the path of ids
        from ``node_id`` to each node (cycles are visited once)."""
        start = self.node(node_id)
        seen = {start.id}
        queue: deque[tuple[Node, list[str]]] = deque([(start, [start.id])])
        while queue:
            node, path = queue.popleft()
            yield node, path
            for dep in self.dependencies(node.id):
                if dep.id not in seen:
                    seen.add(dep.id)
                    queue.append((dep, [*path, dep.id]))

    def deepest_fault(self, node_id: str) -> list[Node] | None:
        """The chain from ``node_id`` to the deepest faulty node on its dependency paths.

        "Deepest" is the faulty node whose own dependencies hold no further fault; among
        several, the worst status wins, then the longest chain (the most fundamental
        cause), then the stable order of the nodes. None when nothing on the paths is
        faulty. Whether the chain *explains* the symptom (a slow database explains slow
        orders; it does not explain a 401) is the diagnosis' question, not the graph's."""
        candidates: list[tuple[int, int, int, list[str]]] = []
        order = {n.id: i for i, n in enumerate(self.nodes)}
        for node, path in self.walk(node_id):
            if not node.faulty:
                continue
            below = any(n.faulty for n, _ in self.walk(node.id) if n.id != node.id)
            if below:
                continue
            candidates.append((-_RANK[node.status], -len(path), order[node.id], path))
        if not candidates:
            return None
        candidates.sort()
        return [self.node(i) for i in candidates[0][3]]


def compact(model: StackModel) -> dict[str, Any]:
    """``model`` as JSON for readers that pay per character (an LLM, a terminal): fields at
    their default are left out — except a node's ``status`` — so an absent ``ever_up`` means
    false and an absent ``reasons`` none. ``StackModel.model_validate`` reads it back."""
    data: dict[str, Any] = model.model_dump(mode="json", exclude_defaults=True)
    for raw, node in zip(data.get("nodes", []), model.nodes, strict=True):
        raw["status"] = node.status
    return data
