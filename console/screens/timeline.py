"""Timeline: the live event stream, filtered by kind / severity / source; select to inspect.

Browser events (source ``browser``: console errors, exceptions, failed requests, page loads,
screenshots) show like any other; ``:timeline browser`` shows only them, and a screenshot
event's detail carries the URL of its PNG on dev3000."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import DataTable, Select

from console.messages import Topic
from console.models import Event
from console.screens.base import ConsoleScreen
from console.style import SEVERITY_STYLE, plain, styled
from console.widgets.json_view import JsonView

__all__ = ["TimelineScreen"]

ANY = "*"
SEVERITIES = ("debug", "info", "warning", "error", "critical")
SOURCES = frozenset(
    {"browser", "process", "health", "circuits", "logs", "config", "dev3000", "alerts"}
)


class TimelineScreen(ConsoleScreen):
    TOPICS: ClassVar[frozenset[Topic]] = frozenset({"events"})

    DEFAULT_CSS = """
    TimelineScreen #tl-toolbar { height: 3; }
    TimelineScreen #tl-toolbar Select { width: 1fr; }
    TimelineScreen #tl-events { width: 3fr; height: 1fr; border: round $primary; }
    TimelineScreen #tl-detail { width: 2fr; }
    TimelineScreen.-stale #tl-events { border: round $warning; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.kind: str | None = None
        self.severity: str | None = None
        self.source: str | None = None
        self._shown = 0
        self._shown_last_id: str | None = None
        self._options: dict[str, list[str]] = {}

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="tl-toolbar"):
            yield Select[str]([("any kind", ANY)], value=ANY, allow_blank=False, id="tl-kind")
            yield Select[str](
                [("any severity", ANY)] + [(f"severity ≥ {s}", s) for s in SEVERITIES],
                value=ANY,
                allow_blank=False,
                id="tl-severity",
            )
            yield Select[str]([("any source", ANY)], value=ANY, allow_blank=False, id="tl-source")
        with Horizontal():
            table: DataTable[Text | str] = DataTable(id="tl-events", cursor_type="row")
            table.border_title = "Events"
            yield table
            yield JsonView(hint="select an event to see its data", id="tl-detail")

    def on_mount(self) -> None:
        self.query_one("#tl-events", DataTable).add_columns(
            "time", "severity", "source", "kind", "subject", "summary"
        )
        super().on_mount()
        self.query_one("#tl-events", DataTable).focus()

    def matches(self, event: Event) -> bool:
        if self.kind and event.kind != self.kind:
            return False
        if self.source and event.source != self.source:
            return False
        if self.severity:
            rank = SEVERITIES.index(self.severity)
            level = SEVERITIES.index(event.severity) if event.severity in SEVERITIES else 1
            if level < rank:
                return False
        return True

    def shown_events(self) -> list[Event]:
        return [e for e in self.store.events if self.matches(e)]

    def refresh_data(self, topics: frozenset[Topic]) -> None:
        self._sync_options()
        table = self.query_one("#tl-events", DataTable)
        events = list(self.store.events)
        # append only what is new when the shown rows are still a prefix of the store
        start = 0
        if "all" not in topics and self._shown_last_id is not None:
            for index in range(len(events) - 1, -1, -1):
                if events[index].id == self._shown_last_id:
                    start = index + 1
                    break
            else:
                start = -1
        if "all" in topics or start < 0 or table.row_count > len(events):
            table.clear()
            start = 0
        for event in events[start:]:
            if self.matches(event):
                self._add(table, event)
        if events:
            self._shown_last_id = events[-1].id
        table.border_title = f"Events ({table.row_count})" + (
            " (stale)" if self.store.connection.stale else ""
        )

    def _add(self, table: DataTable[Text | str], event: Event) -> None:
        key = event.id or f"gap-{table.row_count}"
        if key in table.rows:
            return
        table.add_row(
            event.ts.strftime("%H:%M:%S") if event.ts else "",
            styled(event.severity, SEVERITY_STYLE),
            plain(event.source),
            plain(event.kind),
            plain(event.subject),
            plain(event.summary),
            key=key,
        )

    def _sync_options(self) -> None:
        for attr, select_id, label in (
            ("kind", "#tl-kind", "any kind"),
            ("source", "#tl-source", "any source"),
        ):
            values = sorted({getattr(e, attr) for e in self.store.events if getattr(e, attr)})
            current = getattr(self, attr)
            if current and current not in values:
                values.append(current)
            if self._options.get(attr) == values:
                continue
            self._options[attr] = values
            select = self.query_one(select_id, Select)
            with self.prevent(Select.Changed):
                select.set_options([(label, ANY)] + [(plain(v), v) for v in values])
                select.value = current or ANY

    def on_select_changed(self, event: Select.Changed) -> None:
        value = None if event.value in (ANY, Select.NULL) else str(event.value)
        if event.select.id == "tl-kind":
            self.kind = value
        elif event.select.id == "tl-severity":
            self.severity = value
        elif event.select.id == "tl-source":
            self.source = value
        self.refresh_data(frozenset({"all"}))

    def selected_event(self) -> Event | None:
        table = self.query_one("#tl-events", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return next((e for e in self.store.events if e.id == key), None)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        selected = self.selected_event()
        detail = self.query_one("#tl-detail", JsonView)
        if selected is None:
            detail.show(None, "Event")
            return
        detail.show(
            {
                "id": selected.id,
                "ts": selected.ts.isoformat() if selected.ts else None,
                "source": selected.source,
                "kind": selected.kind,
                "severity": selected.severity,
                "subject": selected.subject,
                "summary": selected.summary,
                "correlation_id": selected.correlation_id,
                "data": selected.data,
                **self._screenshot_link(selected),
            },
            f"Event — {selected.kind}",
        )

    def _screenshot_link(self, event: Event) -> dict[str, str]:
        path = event.data.get("path") if event.kind == "browser_screenshot" else None
        if not isinstance(path, str) or not path.startswith("/api/v1/browser/screenshots/"):
            return {}
        return {"screenshot_url": self.console.url + path}

    def apply_argument(self, arg: str) -> None:
        """``:timeline <kind>`` filters by kind; ``:timeline <source>`` (browser, process,
        health, circuits, logs …) by source."""
        if arg:
            if arg in SOURCES:
                self.source = arg
            else:
                self.kind = arg
            self._sync_options()
            self.refresh_data(frozenset({"all"}))
