"""Dashboard: every target's health with a latency sparkline, breakers, error rate, events."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Sparkline, Static

from console.messages import Topic
from console.screens.base import ConsoleScreen
from console.style import CIRCUIT_STYLE, SEVERITY_STYLE, STATUS_STYLE, plain, styled
from console.widgets.target_row import TargetRow

__all__ = ["DashboardScreen"]

EVENTS_SHOWN = 12


class DashboardScreen(ConsoleScreen):
    TOPICS: ClassVar[frozenset[Topic]] = frozenset({"health", "circuits", "events", "targets"})

    DEFAULT_CSS = """
    DashboardScreen #dash-top { height: 1fr; }
    DashboardScreen #dash-targets { width: 2fr; border: round $primary; }
    DashboardScreen #dash-side { width: 1fr; }
    DashboardScreen #dash-breakers { border: round $primary; height: auto; min-height: 5; }
    DashboardScreen #dash-errors { border: round $primary; height: 6; }
    DashboardScreen #dash-error-spark { height: 2; }
    DashboardScreen #dash-events { height: 14; border: round $primary; }
    DashboardScreen.-stale #dash-targets, DashboardScreen.-stale #dash-events {
        border: round $warning;
    }
    """

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="dash-top"):
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
        table: DataTable[Text | str] = DataTable(id="dash-events", cursor_type="row")
        table.border_title = "Latest events"
        yield table

    def on_mount(self) -> None:
        super().on_mount()

    def refresh_data(self, topics: frozenset[Topic]) -> None:
        every = "all" in topics
        if every or "health" in topics:
            self._show_health()
        if every or "circuits" in topics:
            self._show_breakers()
        if every or "events" in topics:
            self._show_events()

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
        rows = {row.check.name: row for row in box.query(TargetRow)}
        wanted = [c.name for c in report.checks]
        if list(rows) != wanted:
            box.remove_children()
            box.mount_all(
                TargetRow(check, self.store.latency.get(check.name, ())) for check in report.checks
            )
            if not report.checks:
                box.mount(Static("no checks reported", id="dash-health-empty"))
            return
        for check in report.checks:
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
