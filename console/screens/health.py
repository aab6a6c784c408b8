"""Health: every check of the deep report — every target with, nested under it, what its
own report showed — each with why it is not healthy; the runtime registry; drill into one;
run a deep check now."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable

from console.messages import Topic
from console.models import CheckResult, HealthReport
from console.screens.base import ConsoleScreen
from console.stackview import declared_targets, node_details
from console.style import STATUS_STYLE, plain, styled
from console.widgets.json_view import JsonView

__all__ = ["HealthScreen"]


_WHY_STYLE = {"degraded": "yellow", "unhealthy": "red"}


def _latency(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} ms"


def _because(report: HealthReport) -> str:
    """`` — because <check>: <why>`` for a status other than healthy: the worst counted
    check with a reason, the deepest of equals (the cause, not the service it fails)."""
    if report.status in ("healthy", "unknown"):
        return ""
    rank = {"degraded": 1, "unhealthy": 2}
    candidates = [c for c in report.checks if c.why and not c.absent and c.status in rank]
    if not candidates:
        return ""
    best = max(candidates, key=lambda c: (rank[c.status], c.depth))
    return f" — because {best.name}: {best.why}"


class HealthScreen(ConsoleScreen):
    TOPICS: ClassVar[frozenset[Topic]] = frozenset({"health", "topology", "targets"})
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("d", "deep_check", "Deep check now"),
        Binding("enter", "drill", "Details", show=False),
    ]

    DEFAULT_CSS = """
    HealthScreen #health-left { width: 3fr; }
    HealthScreen #health-checks { height: 2fr; border: round $primary; }
    HealthScreen #health-targets { height: 1fr; border: round $primary; }
    HealthScreen #health-detail { width: 2fr; }
    HealthScreen.-stale #health-checks { border: round $warning; }
    """

    def compose_body(self) -> ComposeResult:
        with Horizontal():
            with Vertical(id="health-left"):
                checks: DataTable[Text | str] = DataTable(id="health-checks", cursor_type="row")
                checks.border_title = "Checks"
                yield checks
                targets: DataTable[Text | str] = DataTable(id="health-targets", cursor_type="row")
                targets.border_title = "Targets"
                yield targets
            yield JsonView(id="health-detail")

    def on_mount(self) -> None:
        self.query_one("#health-checks", DataTable).add_columns(
            "check", "status", "latency", "critical", "why"
        )
        self.query_one("#health-targets", DataTable).add_columns(
            "target", "source", "status", "critical", "depends on", "url"
        )
        super().on_mount()
        self.query_one("#health-checks", DataTable).focus()

    def refresh_data(self, topics: frozenset[Topic]) -> None:
        if "all" in topics or "health" in topics:
            self._show_checks()
        if "all" in topics or "targets" in topics or "topology" in topics:
            self._show_targets()

    def _show_checks(self) -> None:
        table = self.query_one("#health-checks", DataTable)
        report = self.store.health
        selected = self._selected_key(table)
        table.clear()
        if report is None:
            return
        table.border_title = f"Checks — overall {report.status}{_because(report)}" + (
            " (stale)" if self.store.connection.stale else ""
        )
        for check in report.checks:
            absent = check.absent
            name = ("  " * check.depth + "└ " + check.label) if check.parent else check.name
            table.add_row(
                plain(name, "dim" if absent else ""),
                Text("absent", style="dim") if absent else styled(check.status, STATUS_STYLE),
                _latency(check.latency_ms),
                "" if check.critical is None else ("yes" if check.critical else "no"),
                plain(check.why, "dim" if absent else _WHY_STYLE.get(check.status, "")),
                key=check.name,
            )
        if selected is not None and selected in {c.name for c in report.checks}:
            table.move_cursor(row=table.get_row_index(selected))
        self._show_detail()

    def _show_targets(self) -> None:
        """Every target from dev3000's model — one list, with the source that declared each
        (the runtime registry's are those ``/api/v1/targets`` changes); the registry alone
        when dev3000 serves no model."""
        table = self.query_one("#health-targets", DataTable)
        selected = self._selected_key(table)
        table.clear()
        model = self.store.topology
        if model is not None:
            table.border_title = "Targets (settings, targets file, registry, built in)"
            for node in declared_targets(model):
                deps = ", ".join(d.name for d in model.dependencies(node.id) if d.parent is None)
                table.add_row(
                    plain(node.name, "dim" if node.absent else ""),
                    plain(node.source),
                    Text("absent", style="dim") if node.absent
                    else styled(node.status, STATUS_STYLE),
                    "yes" if node.critical else "no",
                    plain(deps),
                    plain(node.url),
                    key=f"target:{node.id}",
                )  # fmt: skip
            if selected is not None and selected in {k.value for k in table.rows}:
                table.move_cursor(row=table.get_row_index(selected))
            return
        table.border_title = "Runtime registry (/api/v1/targets)"
        for target in self.store.targets:
            table.add_row(
                plain(target.name),
                "registry",
                styled(target.status, STATUS_STYLE),
                "" if target.critical is None else ("yes" if target.critical else "no"),
                "",
                plain(target.url),
                key=f"target:{target.name}",
            )

    @staticmethod
    def _selected_key(table: DataTable[Text | str]) -> str | None:
        if not table.row_count:
            return None
        try:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except Exception:
            return None
        return key

    def selected_check(self) -> CheckResult | None:
        report = self.store.health
        key = self._selected_key(self.query_one("#health-checks", DataTable))
        return report.check(key) if report is not None and key else None

    def _show_detail(self) -> None:
        check = self.selected_check()
        detail = self.query_one("#health-detail", JsonView)
        if check is None:
            detail.show(None, "Details")
            return
        detail.show(
            {
                "name": check.name,
                "status": check.status,
                "latency_ms": check.latency_ms,
                "critical": check.critical,
                "observed_at": check.observed_at.isoformat() if check.observed_at else None,
                "why": check.why or None,
                "absent": check.absent,
                "error": check.error,
                "details": check.details,
            },
            f"Details — {check.name}",
        )

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "health-checks":
            self._show_detail()
        elif event.data_table.id == "health-targets" and event.row_key.value:
            name = event.row_key.value.removeprefix("target:")
            model = self.store.topology
            node = model.get(name) if model is not None else None
            if node is not None:
                detail = self.query_one("#health-detail", JsonView)
                detail.show(node_details(node), f"Target — {node.name}")
                return
            for target in self.store.targets:
                if target.name == name:
                    self.query_one("#health-detail", JsonView).show(target.raw, f"Target — {name}")

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "health-checks":
            self.action_drill()

    def action_drill(self) -> None:
        self._show_detail()
        self.query_one("#health-detail", JsonView).focus()

    def action_deep_check(self) -> None:
        self.notify("running a deep check…", timeout=2)
        self.console.run_deep_check()

    def apply_argument(self, arg: str) -> None:
        table = self.query_one("#health-checks", DataTable)
        for index, check in enumerate(self.store.health.checks if self.store.health else ()):
            if arg.lower() in check.name.lower():
                table.move_cursor(row=index)
                self.action_drill()
                return
