"""The stack model's invariants and graph questions (guilde_core.stack)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from guilde_core.stack import Edge, Node, Reason, StackModel, Status, aggregate, compact

NOW = datetime(2026, 12, 3, tzinfo=UTC)


def _node(node_id: str, status: Status = "healthy", **kw: object) -> Node:
    reasons = (
        [Reason(category="latency", summary=f"{node_id} slow", field="latency_ms")]
        if status != "healthy"
        else []
    )
    return Node.model_validate(
        {
            "id": node_id,
            "name": node_id.rsplit("/", 1)[-1],
            "kind": "service",
            "component": node_id.rsplit("/", 1)[-1],
            "status": status,
            "reasons": reasons,
            "ever_up": True,
            **kw,
        }
    )


def _model(nodes: list[Node], edges: list[tuple[str, str]]) -> StackModel:
    return StackModel(
        status=aggregate(nodes),
        observed_at=NOW,
        nodes=nodes,
        edges=[Edge(source=a, target=b) for a, b in edges],
    )


def test_a_status_other_than_healthy_needs_a_reason() -> None:
    with pytest.raises(ValidationError, match="without a reason"):
        Node(id="db", name="db", kind="datastore", component="database", status="degraded")


def test_stack_status_must_agree_with_its_nodes() -> None:
    with pytest.raises(ValidationError, match="disagrees"):
        StackModel(status="degraded", observed_at=NOW, nodes=[_node("backend")])
    with pytest.raises(ValidationError, match="disagrees"):
        StackModel(
            status="healthy",
            observed_at=NOW,
            nodes=[_node("backend", "unhealthy", critical=True)],
        )


def test_absent_nodes_never_set_the_status_and_non_critical_faults_only_degrade() -> None:
    absent = _node("agent", "unhealthy", absent=True, ever_up=False)
    frontend = _node("frontend", "unhealthy")
    model = _model([_node("backend"), absent, frontend], [])
    assert model.status == "degraded"
    assert [n.id for n in model.explaining()] == ["frontend"]
    assert _model([_node("backend"), absent], []).status == "healthy"


def test_edges_must_name_known_nodes_and_ids_be_unique() -> None:
    with pytest.raises(ValidationError, match="unknown node"):
        _model([_node("backend")], [("backend", "database")])
    with pytest.raises(ValidationError, match="unique"):
        _model([_node("backend"), _node("backend")], [])


def test_deepest_fault_follows_the_dependency_chain() -> None:
    nodes = [
        _node("frontend"),
        _node("backend", "degraded", critical=True),
        _node("backend/database", "degraded", critical=True),
        _node("backend/redis"),
        _node("worker", "unhealthy", critical=True),  # off the path
    ]
    edges = [
        ("frontend", "backend"),
        ("backend", "backend/database"),
        ("backend", "backend/redis"),
    ]
    model = _model(nodes, edges)
    chain = model.deepest_fault("frontend")
    assert chain is not None
    assert [n.id for n in chain] == ["frontend", "backend", "backend/database"]
    assert model.deepest_fault("backend/redis") is None
    assert [n.id for n in model.dependents("backend")] == ["frontend"]
    assert {n.id for n in model.roots()} == {"frontend", "worker"}


def test_deepest_fault_prefers_the_worst_status_then_the_longest_chain() -> None:
    nodes = [
        _node("backend", "degraded"),
        _node("backend/redis", "degraded"),
        _node("backend/openai", "unhealthy"),
    ]
    model = _model(nodes, [("backend", "backend/redis"), ("backend", "backend/openai")])
    chain = model.deepest_fault("backend")
    assert chain is not None
    assert chain[-1].id == "backend/openai"


def test_cycles_are_walked_once() -> None:
    nodes = [_node("a"), _node("b", "degraded")]
    model = _model(nodes, [("a", "b"), ("b", "a")])
    assert [n.id for n, _ in model.walk("a")] == ["a", "b"]
    chain = model.deepest_fault("a")
    assert chain is not None
    assert [n.id for n in chain] == ["a", "b"]


def test_the_cause_is_the_first_reason_that_is_no_consequence() -> None:
    node = Node(
        id="backend/openai",
        name="openai",
        kind="provider",
        component="openai",
        parent="backend",
        status="unhealthy",
        reasons=[
            Reason(category="circuit_open", summary="breaker open", consequence=True),
            Reason(category="upstream_rate_limited", summary="429", field="last_error"),
        ],
    )
    assert node.cause is not None
    assert node.cause.category == "upstream_rate_limited"
    only = node.model_copy(update={"reasons": node.reasons[:1]})
    assert only.cause is not None
    assert only.cause.category == "circuit_open"
    model = _model([_node("backend"), node], [("backend", "backend/openai")])
    assert [n.id for n in model.children("backend")] == ["backend/openai"]


def test_compact_json_leaves_defaults_out_keeps_status_and_reads_back() -> None:
    model = _model(
        [_node("backend", "degraded", critical=True), _node("agent", ever_up=False)],
        [("agent", "backend")],
    )
    data = compact(model)
    agent = data["nodes"][1]
    assert agent == {"id": "agent", "name": "agent", "kind": "service", "component": "agent",
                     "status": "healthy"}  # fmt: skip
    assert data["edges"] == [{"source": "agent", "target": "backend"}]
    assert "consequence" not in str(data)
    assert StackModel.model_validate(data) == model
