"""The console's view of the stack model: parsing ``/api/v1/diag/topology`` and the deep
report's nested checks, the tree's rows (failing path, reasons, absent greyed), and the
dashboard and Health screens drawing them from a recording (no server, no clock)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable

from console.app import ConsoleApp
from console.models import parse_deep_health, parse_topology
from console.screens.dashboard import DashboardScreen
from console.screens.health import HealthScreen
from console.stackview import failing_paths, node_label, roots, rows, summary_lines
from console.widgets.json_view import JsonView
from console.widgets.stack_tree import StackTree
from guilde_core.stack import StackModel
from tests.console.conftest import dig, screen_text, wait_for

pytestmark = pytest.mark.anyio

RECORDING = json.loads((Path(__file__).parent / "data" / "recording.json").read_text())
NOW = datetime(2026, 1, 22, 10, 30, 5, tzinfo=UTC)
TS = "2026-01-22T10:29:40Z"


def _node(node_id: str, status: str = "healthy", **extra: Any) -> dict[str, Any]:
    name = node_id.rsplit("/", 1)[-1]
    body: dict[str, Any] = {"id": node_id, "name": name, "kind": "service", "component": name}
    body.update({"status": status, "ever_up": True, **extra})
    if status != "healthy" and "reasons" not in extra:
        body["reasons"] = [{"category": "latency", "summary": f"{name} slow"}]
    return body


def _model(nodes: list[dict[str, Any]], edges: list[tuple[str, str]], status: str) -> StackModel:
    return StackModel.model_validate(
        {
            "status": status,
            "observed_at": TS,
            "nodes": nodes,
            "edges": [{"source": s, "target": t} for s, t in edges],
        }
    )


def test_the_failing_path_runs_from_the_entry_point_to_the_deepest_fault() -> None:
    model = _model(
        [
            _node("frontend", critical=True),
            _node("backend", "degraded", critical=True),
            _node(
                "backend/database",
                "degraded",
                critical=True,
                kind="datastore",
                parent="backend",
                reasons=[{"category": "latency", "summary": "latency 801 ms > 100 ms"}],
            ),
            _node("backend/redis", kind="datastore", parent="backend"),
            _node(
                "agent",
                "unhealthy",
                absent=True,
                ever_up=False,
                reasons=[{"category": "unreachable", "summary": "connection refused"}],
            ),
            _node("dev3000"),
        ],
        [
            ("frontend", "backend"),
            ("backend", "backend/database"),
            ("backend", "backend/redis"),
            ("agent", "dev3000"),
        ],
        "degraded",
    )
    # entry points: frontend (nothing depends on it); dev3000 too, since only the absent
    # agent depends on it; absent last
    assert [n.id for n in roots(model)] == ["frontend", "dev3000", "agent"]
    chains = failing_paths(model)
    assert [[n.id for n in c] for c in chains] == [["frontend", "backend", "backend/database"]]
    shown = rows(model)
    assert [r.key for r in shown] == [
        "frontend",
        "frontend>backend",
        "frontend>backend>backend/database",  # the fault first among backend's dependencies
        "frontend>backend>backend/redis",
        "dev3000",
        "agent",
        "agent>dev3000",
    ]
    by_key = {r.key: r for r in shown}
    assert by_key["frontend>backend>backend/database"].on_path
    assert by_key["frontend"].on_path  # healthy itself, but the path to the fault runs here
    assert by_key["frontend"].expanded
    assert not by_key["frontend>backend>backend/redis"].on_path
    assert not by_key["agent"].on_path  # absent: never on a failing path
    # the reason on the unhealthy row, the absent row greyed with no fault shown
    database = node_label(model.node("backend/database"), on_path=True)
    assert "latency 801 ms > 100 ms" in database.plain
    assert any("underline" in str(span.style) for span in database.spans)
    agent = node_label(model.node("agent"))
    assert "absent" in agent.plain
    assert "connection refused" not in agent.plain
    assert {str(span.style) for span in agent.spans} == {"dim"}
    assert [line.plain for line in summary_lines(model)] == [
        "▲ frontend ← backend ← database: latency 801 ms > 100 ms"
    ]


def test_a_cycle_is_shown_once_and_a_healthy_stack_says_what_was_checked() -> None:
    model = _model(
        [_node("a"), _node("b"), _node("ghost", "unhealthy", absent=True, ever_up=False)],
        [("a", "b"), ("b", "a")],
        "healthy",
    )
    shown = rows(model)
    # nothing is an entry point in a cycle: it is shown from its first component, once
    assert [r.key for r in shown] == ["a", "a>b", "a>b>a", "ghost"]
    assert [r.cycle for r in shown] == [False, False, True, False]
    assert failing_paths(model) == []
    assert [line.plain for line in summary_lines(model)] == [
        "all 2 counted components healthy (1 absent, not counted)"
    ]


def test_parse_topology_is_tolerant_of_a_newer_dev3000_and_refuses_junk() -> None:
    payload = json.loads(json.dumps(RECORDING["topology"]))
    payload["nodes"][0]["new_field"] = {"from": "a newer dev3000"}
    payload["nodes"][2]["reasons"][0]["weight"] = 3
    payload["edges"][0]["since"] = TS
    payload["version"] = 2
    model = parse_topology(payload)
    assert model is not None
    assert model.node("payments-api").reasons[0].category == "latency"
    assert parse_topology({"nodes": "?"}) is None
    assert parse_topology(["not", "a", "model"]) is None
    # a status the nodes contradict is not drawn as if it were true
    assert parse_topology({**RECORDING["topology"], "status": "healthy"}) is None
    # secrets in a node are masked before anything is shown
    leaky = json.loads(json.dumps(RECORDING["topology"]))
    leaky["nodes"][0]["url"] = "postgresql://app:hunter2-very-secret@db:5432/app"
    parsed = parse_topology(leaky)
    assert parsed is not None
    assert "hunter2-very-secret" not in parsed.model_dump_json()


def test_the_deep_reports_targets_come_with_their_nested_checks_and_why() -> None:
    report = parse_deep_health(
        {
            "status": "degraded",
            "checks": {
                "database": {"status": "healthy"},
                "targets": {
                    "backend": {
                        "status": "degraded",
                        "reasons": [
                            {"category": "circuit_open", "summary": "open", "consequence": True},
                            {"category": "latency", "summary": "reports degraded: database"},
                        ],
                        "children": {
                            "database": {
                                "status": "degraded",
                                "reasons": [{"category": "latency"}],  # an anonymous summary
                                "children": {"replica": {"status": "healthy"}},
                            }
                        },
                    },
                    "agent": {"status": "unhealthy", "absent": True, "error": "refused"},
                },
            },
        }
    )
    names = [c.name for c in report.checks]
    assert names == [
        "database",
        "targets/backend",
        "targets/backend/database",
        "targets/backend/database/replica",
        "targets/agent",
    ]
    backend, database, replica = report.checks[1:4]
    assert backend.why == "reports degraded: database"  # the cause, not its consequence
    assert "children" not in backend.details  # its children are rows of their own
    assert (database.parent, database.depth, database.label) == ("targets/backend", 1, "database")
    assert database.why == "latency"
    assert (replica.parent, replica.depth, replica.why) == ("targets/backend/database", 2, "")
    agent = report.check("targets/agent")
    assert agent is not None
    assert agent.absent
    assert agent.why == "refused"


async def test_dashboard_draws_the_tree_and_health_nests_the_checks() -> None:
    app = ConsoleApp("http://dev3000.test:3001", live=False, clock=lambda: NOW)
    async with app.run_test(size=(130, 40)) as pilot:
        app.load_recording(RECORDING)
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        tree = screen.query_one(StackTree)
        await wait_for(pilot, lambda: len(tree.shown) == 7, what="the tree's rows")
        text = screen_text(app)
        assert "Stack — overall" in text
        # why the stack is unhealthy, without a keypress: the chain and the cause
        assert "orders-api ← payments-api ← openai: last error: openai answered 429" in text
        # the first failing component's details are shown before any key
        detail = screen.query_one("#dash-node", JsonView)
        assert dig(detail.data, "id") == "payments-api/openai"
        assert dig(detail.data, "reasons", 0, "category") == "upstream_rate_limited"
        # the cursor on the absent service: its details say it is not counted
        tree.focus()
        tree.select(str(tree.key_of("search-api")))
        await pilot.press("enter")
        await wait_for(pilot, lambda: dig(detail.data, "id") == "search-api")
        assert "not counted" in str(dig(detail.data, "status"))
        # the tree keeps the cursor when the model is refreshed with the same structure
        app.store.update_topology(parse_topology(RECORDING["topology"]))
        app.publish("topology")
        await pilot.pause()
        assert tree.selected_key() == "search-api"

        await pilot.press("2")
        health = app.screen
        assert isinstance(health, HealthScreen)
        table = health.query_one("#health-checks", DataTable)
        await wait_for(pilot, lambda: table.row_count > 0, what="the checks")
        row = [str(c) for c in table.get_row("targets/payments-api")]
        assert row[1] == "degraded"
        assert "640 ms over 500 ms" in row[4]  # the why column
        assert "because" in str(table.border_title)
