"""A virtualised log view: a Line-API ``ScrollView`` that renders only the visible rows.

The lines live in a :class:`~console.logbuffer.LogBuffer`; the widget keeps no copy.
Adding lines changes the virtual size and repaints once per batch, never per line, and
a filter change costs one buffer scan, so 100,000 lines scroll and filter smoothly.
"""

from __future__ import annotations

import re
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from console.logbuffer import LogBuffer
from console.models import LogLine

__all__ = ["LogView"]

_LEVEL_STYLES = {
    0: Style(color="bright_black"),
    1: Style(color="green"),
    2: Style(color="yellow", bold=True),
    3: Style(color="red", bold=True),
    4: Style(color="white", bgcolor="red", bold=True),
}
_DIM = Style(color="bright_black")
_SOURCE = Style(color="cyan")
_MATCH = Style(bgcolor="dark_goldenrod", color="black")
_CURSOR = Style(reverse=True)
_PREFIX = 12 + 1 + 12 + 1 + 5 + 1


class LogView(ScrollView, can_focus=True):
    """Shows the view of a :class:`LogBuffer`; the cursor selects one line."""

    DEFAULT_CSS = """
    LogView {
        background: $surface;
        scrollbar-gutter: stable;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "cursor_page(-1)", "Page up", show=False),
        Binding("pagedown", "cursor_page(1)", "Page down", show=False),
        Binding("home", "cursor_home", "Top", show=False),
        Binding("end", "cursor_end", "Bottom", show=False),
    ]

    cursor: reactive[int] = reactive(-1, always_update=True)
    follow: reactive[bool] = reactive(True)

    class Selected(Message):
        """The cursor moved to a line."""

        def __init__(self, line: LogLine | None) -> None:
            self.line = line
            super().__init__()

    def __init__(
        self,
        buffer: LogBuffer,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.buffer = buffer
        self._width = 0
        self._cache: LRUCache[tuple[int, int, bool], Strip] = LRUCache(1024)
        self.renders = 0
        self._highlight: re.Pattern[str] | None = None
        self._generation = -1
        self._appended = 0

    # ------------------------------------------------------------- updates

    def sync(self) -> None:
        """Catch up with the buffer: one repaint for everything added since the last sync."""
        if self._generation != self.buffer.generation:
            self.rebuilt()
            return
        count = self.buffer.appended - self._appended
        self._appended = self.buffer.appended
        if count <= 0 and self.virtual_size.height == self.buffer.row_count:
            return
        count = min(count, self.buffer.view_len)
        if count > 0:
            view = self.buffer.view_lines()[-count:]
            self._width = max(self._width, _PREFIX + max(len(line.text) for line in view))
        self._resize()

    def rebuilt(self) -> None:
        """The view changed wholesale (filter, pretty toggle): re-measure and repaint."""
        self._generation = self.buffer.generation
        self._appended = self.buffer.appended
        self._cache.clear()
        self._width = 0
        self._highlight = _highlighter(self.buffer)
        view = self.buffer.view_lines()
        if view:
            self._width = _PREFIX + max(len(line.text) for line in view)
        if self.cursor >= self.buffer.view_len:
            self.cursor = self.buffer.view_len - 1
        self._resize()

    def _resize(self) -> None:
        height = self.buffer.row_count
        self.virtual_size = Size(self._width, height)
        if self.follow:
            self.scroll_end(animate=False, immediate=True, x_axis=False, force=True)
        self.refresh()

    # ------------------------------------------------------------- cursor

    def watch_cursor(self, value: int) -> None:
        self._cache.clear()
        self.refresh()
        line = self.buffer.view_line(value) if 0 <= value < self.buffer.view_len else None
        self.post_message(self.Selected(line))

    def _show_cursor(self) -> None:
        if self.cursor < 0:
            return
        row = self.buffer.row_of(self.cursor)
        top = round(self.scroll_y)
        if row < top:
            self.scroll_to(y=row, animate=False, immediate=True)
        elif row >= top + self.size.height:
            self.scroll_to(y=row - self.size.height + 1, animate=False, immediate=True)

    def action_cursor(self, delta: int) -> None:
        if not self.buffer.view_len:
            return
        start = self.cursor if self.cursor >= 0 else self.buffer.view_len - 1
        self.follow = False
        self.cursor = max(0, min(self.buffer.view_len - 1, start + delta))
        self._show_cursor()

    def action_cursor_page(self, direction: int) -> None:
        self.action_cursor(direction * max(1, self.size.height - 1))

    def action_cursor_home(self) -> None:
        self.action_cursor(-self.buffer.view_len)

    def action_cursor_end(self) -> None:
        self.action_cursor(self.buffer.view_len)
        self.follow = True

    def go_to(self, index: int) -> None:
        """Put the cursor on view line ``index`` and scroll it to the top."""
        if not self.buffer.view_len:
            return
        self.follow = False
        self.cursor = max(0, min(self.buffer.view_len - 1, index))
        self.scroll_to(y=self.buffer.row_of(self.cursor), animate=False, immediate=True)

    def watch_follow(self, follow: bool) -> None:
        if follow:
            self._resize()

    def on_click(self, event: events.Click) -> None:
        located = self.buffer.locate(round(self.scroll_y) + event.y)
        if located is not None:
            self.follow = False
            self.cursor = located[0]

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self.follow = False

    # ------------------------------------------------------------- rendering

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        style = self.rich_style
        located = self.buffer.locate(scroll_y + y)
        if located is None:
            return Strip.blank(width, style)
        index, sub = located
        line = self.buffer.view_line(index)
        key = (line.seq, sub, index == self.cursor)
        strip = self._cache.get(key)
        if strip is None:
            strip = self._strip_for(line, sub, index == self.cursor)
            self._cache[key] = strip
        return strip.crop_extend(scroll_x, scroll_x + width, style)

    def _strip_for(self, line: LogLine, sub: int, selected: bool) -> Strip:
        self.renders += 1
        level_style = _LEVEL_STYLES.get(line.rank, _LEVEL_STYLES[1])
        if self.buffer.pretty and line.json is not None:
            rows = line.pretty()
            body = rows[sub] if sub < len(rows) else ""
        else:
            body = line.text
        if sub == 0:
            stamp = line.ts.strftime("%H:%M:%S.%f")[:12] if line.ts.year > 1970 else " " * 12
            prefix = [
                Segment(stamp + " ", _DIM),
                Segment(f"{line.source[:12]:<12} ", _SOURCE),
                Segment(f"{line.level[:5].upper():<5} ", level_style),
            ]
        else:
            prefix = [Segment(" " * _PREFIX)]
        text = Text(body, style=level_style if line.rank >= 3 else "")
        if self._highlight is not None:
            text.highlight_regex(self._highlight, _MATCH)
        segments = prefix + list(text.render(self.app.console))
        strip = Strip(segments)
        if selected:
            strip = strip.apply_style(_CURSOR)
        return strip


def _highlighter(buffer: LogBuffer) -> re.Pattern[str] | None:
    """The pattern to highlight in shown lines (none for an inverse filter)."""
    flt = buffer.filter
    if not flt.text or flt.inverse:
        return None
    try:
        return re.compile(flt.text if flt.regex else re.escape(flt.text), re.IGNORECASE)
    except re.error:
        return None
