"""Logs: live tail (follow/pause), sources merged by time, level and text filters, JSON
pretty-print, jump to a time, trace a correlation id — over a bounded buffer."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import Select, Static

from console.logbuffer import FilterError, LogFilter
from console.messages import Topic
from console.models import LEVELS, LogLine, parse_ts
from console.screens.base import ConsoleScreen
from console.screens.prompt import PromptScreen
from console.widgets.log_view import LogView

__all__ = ["LogsScreen", "parse_jump_time"]

ALL_SOURCES = "*"


def parse_jump_time(text: str, reference: datetime | None) -> datetime:
    """``"10:32"``, ``"10:32:05"`` (on the reference day, UTC) or an ISO timestamp."""
    text = text.strip()
    try:
        clock = time.fromisoformat(text)
    except ValueError:
        parsed = parse_ts(text)
        if parsed is None:
            raise ValueError(f"not a time: {text!r} (use HH:MM[:SS] or ISO 8601)") from None
        return parsed
    day = (reference or datetime.now(UTC)).astimezone(UTC).date()
    return datetime.combine(day, clock, tzinfo=UTC)


class LogsScreen(ConsoleScreen):
    TOPICS: ClassVar[frozenset[Topic]] = frozenset({"logs"})
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter"),
        Binding("exclamation_mark", "toggle_inverse", "Inverse"),
        Binding("x", "toggle_regex", "Regex/text"),
        Binding("f", "toggle_follow", "Follow"),
        Binding("space", "toggle_pause", "Pause"),
        Binding("p", "toggle_pretty", "JSON pretty"),
        Binding("g", "jump", "Jump to time"),
        Binding("t", "trace", "Trace id"),
        Binding("s", "next_source", "Source", show=False),
        Binding("l", "next_level", "Level", show=False),
        Binding("escape", "clear", "Clear filters"),
    ]

    DEFAULT_CSS = """
    LogsScreen #log-toolbar { height: 3; }
    LogsScreen #log-source { width: 30; }
    LogsScreen #log-level { width: 26; }
    LogsScreen #log-status { height: 1; padding: 0 1; background: $boost; }
    LogsScreen #log-view { height: 1fr; border: round $primary; }
    LogsScreen.-stale #log-view { border: round $warning; }
    """

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="log-toolbar"):
            yield Select[str](
                [("all sources (merged)", ALL_SOURCES)],
                value=ALL_SOURCES,
                allow_blank=False,
                id="log-source",
            )
            yield Select[str](
                [(f"level ≥ {level}", level) for level in LEVELS],
                value=LEVELS[0],
                allow_blank=False,
                id="log-level",
            )
        view = LogView(self.store.logs, id="log-view")
        view.border_title = "Logs"
        yield view
        yield Static("", id="log-status")

    def on_mount(self) -> None:
        super().on_mount()
        self.log_view.focus()

    @property
    def log_view(self) -> LogView:
        return self.query_one("#log-view", LogView)

    # ------------------------------------------------------------------ data

    def refresh_data(self, topics: frozenset[Topic]) -> None:
        if "all" in topics:
            self._sync_sources()
            self.log_view.rebuilt()
        elif "logs" in topics:
            self._sync_sources()
            self.log_view.sync()
        self._status()

    def _sync_sources(self) -> None:
        select = self.query_one("#log-source", Select)
        sources = sorted(self.store.logs.sources)
        known = getattr(self, "_known_sources", None)
        if known == sources:
            return
        self._known_sources = sources
        current = self.store.logs.filter.source or ALL_SOURCES
        options: list[tuple[Text | str, str]] = [("all sources (merged)", ALL_SOURCES)]
        options += [(Text(s), s) for s in sources]
        if current != ALL_SOURCES and current not in sources:
            options.append((Text(current), current))
        with self.prevent(Select.Changed):
            select.set_options(options)
            select.value = current

    def _status(self) -> None:
        buffer = self.store.logs
        state = (
            "PAUSED"
            if self.console.logs_paused
            else ("following" if self.log_view.follow else "scrolled")
        )
        pending = self.console.pending_logs
        text = (
            f"{state}  {buffer.view_len:,} shown / {len(buffer):,} buffered (max {buffer.maxlen:,})"
        )
        if pending:
            text += f"  +{pending:,} waiting"
        if buffer.pretty:
            text += "  JSON pretty"
        text += f"  │ {buffer.filter.describe()}"
        cursor = self.log_view.cursor
        if 0 <= cursor < buffer.view_len:
            line = buffer.view_line(cursor)
            if line.correlation_id:
                text += f"  │ line id={line.correlation_id}"
        if text != getattr(self, "_status_text", None):
            self._status_text = text
            # one row of fixed height: no layout pass for a new status text
            self.query_one("#log-status", Static).update(Text(text), layout=False)
        title = "Logs" + (" (stale)" if self.store.connection.stale else "")
        if self.log_view.border_title != title:
            self.log_view.border_title = title

    def set_filter(self, new: LogFilter) -> bool:
        try:
            self.store.logs.set_filter(new)
        except FilterError as exc:
            self.notify(str(exc), severity="error", title="Filter")
            return False
        self.log_view.rebuilt()
        self._status()
        return True

    # --------------------------------------------------------------- handlers

    def on_select_changed(self, event: Select.Changed) -> None:
        flt = self.store.logs.filter
        if event.select.id == "log-source":
            value = event.value
            source = None if value == ALL_SOURCES or value is Select.NULL else str(value)
            self.set_filter(flt.with_(source=source))
        elif event.select.id == "log-level" and isinstance(event.value, str):
            self.set_filter(flt.with_(min_level=event.value))

    def on_log_view_selected(self, message: LogView.Selected) -> None:
        self._status()

    # --------------------------------------------------------------- actions

    def action_filter(self) -> None:
        flt = self.store.logs.filter
        kind = "regex" if flt.regex else "text"

        def done(value: str | None) -> None:
            if value is not None:
                self.set_filter(flt.with_(text=value))

        self.app.push_screen(
            PromptScreen(f"/ filter ({kind}{', inverse' if flt.inverse else ''})", value=flt.text),
            done,
        )

    def apply_argument(self, arg: str) -> None:
        self.set_filter(self.store.logs.filter.with_(text=arg))

    def action_toggle_inverse(self) -> None:
        flt = self.store.logs.filter
        self.set_filter(flt.with_(inverse=not flt.inverse))

    def action_toggle_regex(self) -> None:
        flt = self.store.logs.filter
        self.set_filter(flt.with_(regex=not flt.regex))

    def action_toggle_follow(self) -> None:
        self.log_view.follow = not self.log_view.follow
        self._status()

    def action_toggle_pause(self) -> None:
        self.console.set_logs_paused(not self.console.logs_paused)
        self._status()

    def action_toggle_pretty(self) -> None:
        self.store.logs.set_pretty(not self.store.logs.pretty)
        self.log_view.rebuilt()
        self._status()

    def action_next_source(self) -> None:
        sources = [None, *sorted(self.store.logs.sources)]
        current = self.store.logs.filter.source
        index = sources.index(current) if current in sources else 0
        source = sources[(index + 1) % len(sources)]
        self.query_one("#log-source", Select).value = source or ALL_SOURCES

    def action_next_level(self) -> None:
        index = LEVELS.index(self.store.logs.filter.min_level)
        self.query_one("#log-level", Select).value = LEVELS[(index + 1) % len(LEVELS)]

    def action_clear(self) -> None:
        self.query_one("#log-source", Select).value = ALL_SOURCES
        self.query_one("#log-level", Select).value = LEVELS[0]
        self.set_filter(LogFilter())
        self.log_view.follow = True

    def jump_to(self, when: datetime) -> int:
        index = self.store.logs.index_at(when)
        self.log_view.go_to(index)
        self._status()
        return index

    def action_jump(self) -> None:
        def done(value: str | None) -> None:
            if not value:
                return
            try:
                when = parse_jump_time(value, self.store.logs.last_ts)
            except ValueError as exc:
                self.notify(str(exc), severity="error", title="Jump")
                return
            self.jump_to(when)

        self.app.push_screen(PromptScreen("jump to time (HH:MM[:SS] or ISO, UTC)"), done)

    def selected_line(self) -> LogLine | None:
        cursor = self.log_view.cursor
        buffer = self.store.logs
        return buffer.view_line(cursor) if 0 <= cursor < buffer.view_len else None

    def trace(self, correlation_id: str) -> None:
        """Show only the lines of one correlation id, from every source, in time order."""
        flt = LogFilter(correlation_id=correlation_id or None)
        self.query_one("#log-source", Select).value = ALL_SOURCES
        self.query_one("#log-level", Select).value = LEVELS[0]
        if self.set_filter(flt) and correlation_id:
            self.console.fetch_trace(correlation_id)

    def action_trace(self) -> None:
        line = self.selected_line()
        current = (line.correlation_id if line else None) or ""

        def done(value: str | None) -> None:
            if value is not None:
                self.trace(value.strip())

        self.app.push_screen(PromptScreen("trace correlation id", value=current), done)
