"""Dashboard: the stack as a tree (failing path highlighted, the reason on every unhealthy
component, absent ones greyed) with why the stack has its status, the selected component's
details, every check's latency sparkline, breakers, error rate, events."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Sparkline, Static, Tree

from console.messages import Topic
from console.screens.base import ConsoleScreen
from console.stackview import failing_paths, node_details, summary_lines
from console.style import CIRCUIT_STYLE, SEVERITY_STYLE, STATUS_STYLE, plain, styled
from console.widgets.json_view import JsonView
from console.widgets.stack_tree import StackTree
from console.widgets.target_row import TargetRow

if TYPE_CHECKING:
    from guilde_core.stack import Node

__all__ = ["DashboardScreen"]

EVENTS_SHOWN = 12


class DashboardScreen(ConsoleScreen):
    TOPICS: ClassVar[frozenset[Topic]] = frozenset(
        {"health", "topology", "circuits", "events", "targets"}
    )

    DEFAULT_CSS = """
    DashboardScreen #dash-top { height: 1fr; }
    DashboardScreen #dash-left { width: 2fr; }
    DashboardScreen #dash-stack-box { height: 3fr; border: round $primary; }
    DashboardScreen #dash-why { height: auto; max-height: 4; }
    DashboardScreen #dash-stack { height: 1fr; }
    DashboardScreen #dash-targets { height: 2fr; border: round $primary; }
    DashboardScreen #dash-side { width: 1fr; }
    DashboardScreen #dash-breakers { border: round $primary; height: auto; min-height: 4; }
    DashboardScreen #dash-errors { border: round $primary; height: 5; }
    DashboardScreen #dash-error-spark { height: 1; }
    DashboardScreen #dash-node { height: 1fr; }
    DashboardScreen #dash-events { height: 10; border: round $primary; }
    DashboardScreen.-stale #dash-stack-box, DashboardScreen.-stale #dash-targets,
    DashboardScreen.-stale #dash-events {
        border: round $warning;
    }
    """

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="dash-top"):
            with Vertical(id="dash-left"):
                with Vertical(id="dash-stack-box") as box:
                    box.border_title = "Stack"
                    box.border_subtitle = "enter: details · space: expand"
                    yield Static("", id="dash-why")
                    yield StackTree(id="dash-stack")
                targets = VerticalScroll(id="dash-targets")
                targets.border_title = "Health"
                with targets:
                    yield Static("waiting for the first health report…", id="dash-health-empty")
            with Vertical(id="dash-side"):
                breakers = Static("no breakers yet", id="dash-breakers")
                breakers.border_title = "Circuit breakers"
                yield breakers
                with Vertical(id="dash-errors") as errors:
                    errors.border_title = "Error rate"
                    yield Static("—", id="dash-error-rate")
                    yield Sparkline([], id="dash-error-spark")
                yield JsonView("select a component (enter) to see why", id="dash-node")
        table: DataTable[Text | str] = DataTable(id="dash-events", cursor_type="row")
        table.border_title = "Latest events"
        yield table

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one(StackTree).focus()

    def refresh_data(self, topics: frozenset[Topic]) -> None:
        every = "all" in topics
        if every or "topology" in topics or "health" in topics:
            self._show_stack()
        if every or "health" in topics:
            self._show_health()
        if every or "circuits" in topics:
            self._show_breakers()
        if every or "events" in topics:
            self._show_events()

    def _show_stack(self) -> None:
        """The tree, why the stack has its status, and the selected (else the first
        failing) component's details."""
        model = self.store.topology
        tree = self.query_one(StackTree)
        box = self.query_one("#dash-stack-box", Vertical)
        why = self.query_one("#dash-why", Static)
        stale = " (stale)" if self.store.connection.stale else ""
        if model is None:
            report = self.store.health
            tree.show_model(None)
            if report is not None and report.status not in ("healthy", "unknown"):
                # no model (an older dev3000): the deep report's checks say why
                lines = Text()
                for check in report.checks:
                    if check.status != "healthy" and check.why and not check.absent:
                        lines.append(f"{check.name}: {check.why}\n", style="yellow")
                why.update(lines)
            return
        title = Text("Stack — overall ")
        title.append(model.status, style=STATUS_STYLE.get(model.status, ""))
        box.border_title = title.markup + stale
        text = Text("\n").join(summary_lines(model))
        why.update(text)
        tree.show_model(model)
        node = tree.selected()
        if node is None:
            chains = failing_paths(model)
            node = chains[0][-1] if chains else None
        self._show_node(node)

    def _show_node(self, node: Node | None) -> None:
        view = self.query_one("#dash-node", JsonView)
        if node is None:
            view.show(None, "Component")
            return
        view.show(node_details(node), f"Component — {node.id}")

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[str]) -> None:
        self._show_node(self.query_one(StackTree).selected())

    def on_tree_node_selected(self, event: Tree.NodeSelected[str]) -> None:
        self._show_node(self.query_one(StackTree).selected())

    def _show_health(self) -> None:
        report = self.store.health
        box = self.query_one("#dash-targets", VerticalScroll)
        if report is None:
            return
        rate = report.error_rate_percent
        label = "—" if rate is None else f"{rate:.2f} %"
        self.query_one("#dash-error-rate", Static).update(label)
        self.query_one("#dash-error-spark", Sparkline).data = list(self.store.error_rate)
        overall = Text("Health — overall ")
        overall.append(report.status, style=STATUS_STYLE.get(report.status, ""))
        stale = " (stale)" if self.store.connection.stale else ""
        box.border_title = overall.markup + stale
        # the report's own checks and every target; what a target's report showed is in
        # the tree above
        checks = [c for c in report.checks if c.parent is None]
        rows = {row.check.name: row for row in box.query(TargetRow)}
        wanted = [c.name for c in checks]
        if list(rows) != wanted:
            box.remove_children()
            box.mount_all(
                TargetRow(check, self.store.latency.get(check.name, ())) for check in checks
            )
            if not checks:
                box.mount(Static("no checks reported", id="dash-health-empty"))
            return
        for check in checks:
            rows[check.name].show(check, self.store.latency.get(check.name, ()))

    def _show_breakers(self) -> None:
        summary = self.store.circuit_summary()
        text = Text()
        if not self.store.circuits:
            text.append("no breakers registered", style="dim")
        for state in ("closed", "half-open", "open", "disabled", "unknown"):
            if summary.get(state):
                text.append(f"{summary[state]:>3} ", style="bold")
                text.append(f"{state}\n", style=CIRCUIT_STYLE[state])
        for circuit in self.store.circuits:
            if circuit.state in ("open", "half-open"):
                text.append(f"  {circuit.state:<9} ", style=CIRCUIT_STYLE[circuit.state])
                text.append(f"{circuit.name} ({circuit.failure_count} failures)\n")
        self.query_one("#dash-breakers", Static).update(text)

    def _show_events(self) -> None:
        table = self.query_one("#dash-events", DataTable)
        table.clear(columns=True)  # columns re-measured for the new rows
        table.add_columns("time", "severity", "kind", "subject", "summary")
        for event in list(self.store.events)[-EVENTS_SHOWN:][::-1]:
            table.add_row(
                event.ts.strftime("%H:%M:%S") if event.ts else "",
                styled(event.severity, SEVERITY_STYLE),
                plain(event.kind),
                plain(event.subject),
                plain(event.summary),
            )
