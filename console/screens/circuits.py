"""Circuits: every breaker with its state and countdown; open/close/reset after confirming."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from rich.markup import escape
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.timer import Timer
from textual.widgets import DataTable, Static

from console.messages import Topic
from console.models import CircuitAction, CircuitInfo
from console.screens.base import ConsoleScreen
from console.screens.confirm import ConfirmScreen
from console.screens.prompt import PromptScreen
from console.style import CIRCUIT_STYLE, plain, styled
from console.widgets.json_view import JsonView

__all__ = ["CircuitsScreen"]

CONTROL_ACTIONS = ("open_circuit", "close_circuit", "reset_circuit")


def _countdown(circuit: CircuitInfo, now: datetime) -> str:
    remaining = circuit.seconds_to_half_open(now)
    if remaining is None:
        return "—"
    return f"{remaining:5.0f}s" if remaining > 0 else "due"


class CircuitsScreen(ConsoleScreen):
    TOPICS: ClassVar[frozenset[Topic]] = frozenset({"circuits"})
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("o", "open_circuit", "Open"),
        Binding("c", "close_circuit", "Close"),
        Binding("r", "reset_circuit", "Reset"),
        Binding("slash", "filter", "Filter"),
    ]

    DEFAULT_CSS = """
    CircuitsScreen #circuit-filter { height: 1; padding: 0 1; color: $text-muted; }
    CircuitsScreen #circuit-table { width: 3fr; height: 1fr; border: round $primary; }
    CircuitsScreen #circuit-detail { width: 2fr; }
    CircuitsScreen.-stale #circuit-table { border: round $warning; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.name_filter = ""
        self._ticker: Timer | None = None

    def compose_body(self) -> ComposeResult:
        yield Static("", id="circuit-filter")
        with Horizontal():
            table: DataTable[Text | str] = DataTable(id="circuit-table", cursor_type="row")
            table.border_title = "Circuit breakers"
            yield table
            yield JsonView(id="circuit-detail")

    def on_mount(self) -> None:
        self.query_one("#circuit-table", DataTable).add_columns(
            "name", "state", "failures", "last failure", "half-open in", "reason / last error"
        )
        self._ticker = self.set_interval(1.0, self._tick, pause=True)
        super().on_mount()
        self.query_one("#circuit-table", DataTable).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # control is hidden from the footer and refused in read-only mode
        return not (action in CONTROL_ACTIONS and self.console.readonly)

    # ------------------------------------------------------------------ data

    def shown_circuits(self) -> list[CircuitInfo]:
        needle = self.name_filter.lower()
        return [c for c in self.store.circuits if needle in c.name.lower()]

    def refresh_data(self, topics: frozenset[Topic]) -> None:
        table = self.query_one("#circuit-table", DataTable)
        selected = self.selected_name()
        table.clear()
        now = self.console.now()
        circuits = self.shown_circuits()
        for circuit in circuits:
            table.add_row(
                plain(circuit.name),
                styled(circuit.state, CIRCUIT_STYLE),
                str(circuit.failure_count),
                circuit.last_failure.strftime("%H:%M:%S") if circuit.last_failure else "—",
                _countdown(circuit, now),
                plain(circuit.reason or circuit.last_error),
                key=circuit.name,
            )
        if selected is not None and selected in {c.name for c in circuits}:
            table.move_cursor(row=table.get_row_index(selected))
        self.query_one("#circuit-filter", Static).update(
            plain(
                f"filter: {self.name_filter}  ({len(circuits)} of {len(self.store.circuits)})"
                if self.name_filter
                else f"{len(circuits)} breakers"
            )
        )
        table.border_title = "Circuit breakers" + (
            " (stale)" if self.store.connection.stale else ""
        )
        if self._ticker is not None:
            if any(c.state == "open" and c.retry_at for c in circuits):
                self._ticker.resume()
            else:
                self._ticker.pause()
        self._show_detail()

    def _tick(self) -> None:
        """Once a second while a breaker is open: update only the countdown cells."""
        table = self.query_one("#circuit-table", DataTable)
        now = self.console.now()
        for circuit in self.shown_circuits():
            if circuit.state == "open":
                table.update_cell(
                    circuit.name, table.ordered_columns[4].key, _countdown(circuit, now)
                )

    def on_screen_suspend(self) -> None:
        if self._ticker is not None:
            self._ticker.pause()

    def selected_name(self) -> str | None:
        table = self.query_one("#circuit-table", DataTable)
        if not table.row_count:
            return None
        try:
            return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except Exception:
            return None

    def selected(self) -> CircuitInfo | None:
        name = self.selected_name()
        return next((c for c in self.store.circuits if c.name == name), None)

    def _show_detail(self) -> None:
        circuit = self.selected()
        view = self.query_one("#circuit-detail", JsonView)
        if circuit is None:
            view.show(None, "Breaker")
        else:
            view.show(circuit.raw, f"Breaker — {circuit.name}")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    # --------------------------------------------------------------- actions

    def action_filter(self) -> None:
        def done(value: str | None) -> None:
            if value is not None:
                self.apply_argument(value)

        self.app.push_screen(PromptScreen("filter breakers by name", value=self.name_filter), done)

    def apply_argument(self, arg: str) -> None:
        self.name_filter = arg.strip()
        self.refresh_data(frozenset({"circuits"}))

    def _control(self, action: CircuitAction) -> None:
        if self.console.readonly:
            self.notify("read-only console: circuit control is disabled", severity="warning")
            return
        circuit = self.selected()
        if circuit is None:
            self.notify("select a breaker first", severity="warning")
            return
        name = circuit.name

        def done(reason: str | None) -> None:
            if reason is None:
                self.notify(f"{action} {name}: cancelled", timeout=2)
                return
            self.console.control_circuit(name, action, reason)

        self.app.push_screen(
            ConfirmScreen(
                f"{action.capitalize()} breaker {name}?",
                f"This will {action} the circuit breaker [b]{escape(name)}[/b] "
                f"(now {circuit.state}) for every process sharing it.",
                action_label=action.capitalize(),
            ),
            done,
        )

    def action_open_circuit(self) -> None:
        self._control("open")

    def action_close_circuit(self) -> None:
        self._control("close")

    def action_reset_circuit(self) -> None:
        self._control("reset")
