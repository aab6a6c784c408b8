"""The bounded, filterable, time-ordered log buffer behind the Logs screen (no Textual).

* Holds at most ``maxlen`` lines; the oldest go first.
* Lines from every source are merged in time order (an out-of-order line is inserted
  where it belongs).
* A :class:`LogFilter` (source, minimum level, plain or regex text, inverse, correlation
  id) selects the *view*: the subsequence the widget shows. Appending only tests the new
  lines; changing the filter rescans the buffer once.
* Pretty-printed JSON takes several rows per line: :meth:`LogBuffer.locate` maps a screen
  row to ``(line, row within line)`` through cached prefix sums, so the widget can render
  only the rows on screen.
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from itertools import accumulate

from console.models import LogLine, level_rank

__all__ = ["FilterError", "LogBuffer", "LogFilter"]


class FilterError(ValueError):
    """The filter text is not a valid regular expression."""


@dataclass(frozen=True, slots=True)
class LogFilter:
    """What the Logs screen shows; the default shows everything."""

    text: str = ""
    regex: bool = True
    inverse: bool = False
    min_level: str = "debug"
    source: str | None = None
    correlation_id: str | None = None

    def with_(self, **changes: object) -> LogFilter:
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def active(self) -> bool:
        return bool(
            self.text or self.source or self.correlation_id or level_rank(self.min_level) > 0
        )

    def describe(self) -> str:
        parts = [f"source={self.source or 'all (merged)'}", f"level≥{self.min_level}"]
        if self.text:
            kind = "regex" if self.regex else "text"
            parts.append(f"{'NOT ' if self.inverse else ''}{kind} /{self.text}/")
        if self.correlation_id:
            parts.append(f"trace={self.correlation_id}")
        return "  ".join(parts)

    def compile(self) -> Callable[[LogLine], bool]:
        """A predicate for this filter; raises :class:`FilterError` on a bad regex."""
        rank = level_rank(self.min_level)
        source = self.source
        correlation = self.correlation_id
        inverse = self.inverse
        search: Callable[[str], object] | None = None
        if self.text:
            if self.regex:
                try:
                    search = re.compile(self.text, re.IGNORECASE).search
                except re.error as exc:
                    raise FilterError(f"bad regular expression {self.text!r}: {exc}") from exc
            else:
                needle = self.text.lower()

                def contains(text: str) -> bool:
                    return needle in text.lower()

                search = contains

        def predicate(line: LogLine) -> bool:
            if line.rank < rank:
                return False
            if source is not None and line.source != source:
                return False
            if (
                correlation is not None
                and line.correlation_id != correlation
                and correlation not in line.text
            ):
                return False
            if search is None:
                return True
            found = bool(search(line.text))
            return found is not inverse

        return predicate


def _key(line: LogLine) -> tuple[datetime, int]:
    return line.key


class LogBuffer:
    """Bounded merged log buffer with a filtered view (see the module doc)."""

    def __init__(self, maxlen: int = 100_000) -> None:
        if maxlen < 1:
            raise ValueError("maxlen must be >= 1")
        self.maxlen = maxlen
        self._lines: list[LogLine] = []
        self._start = 0
        self._view: list[LogLine] = []
        self._vstart = 0
        self._offsets: list[int] | None = None  # prefix sums of pretty rows (view)
        self.filter = LogFilter()
        self._match: Callable[[LogLine], bool] = self.filter.compile()
        self._seq = 0
        self.sources: dict[str, int] = {}
        self.evicted = 0
        self.pretty = False
        #: lines appended to the end of the view so far / bumped when the view is rebuilt
        self.appended = 0
        self.generation = 0

    # ------------------------------------------------------------------ sizes

    def __len__(self) -> int:
        return len(self._lines) - self._start

    @property
    def view_len(self) -> int:
        return len(self._view) - self._vstart

    def view_line(self, index: int) -> LogLine:
        return self._view[self._vstart + index]

    def view_lines(self) -> list[LogLine]:
        return self._view[self._vstart :]

    @property
    def last_ts(self) -> datetime | None:
        return self._lines[-1].ts if len(self) else None

    # --------------------------------------------------------------- ingestion

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def extend(self, lines: Iterable[LogLine]) -> int:
        """Add lines (any order); return how many of them entered the view.

        A batch that is in time order and newer than the buffer (what a tail delivers) is
        appended in bulk: list ``extend`` of the buffer and of the matching lines, one
        prefix-sum extension and one eviction pass per batch."""
        batch = lines if isinstance(lines, list) else list(lines)
        if not batch:
            return 0
        for line in batch:
            if line.seq == 0:
                self._seq += 1
                line.seq = self._seq
            elif line.seq > self._seq:
                self._seq = line.seq
        if self._in_order(batch):
            added = self._append_batch(batch)
        else:
            added = sum(self._insert(line) for line in batch)
        self._evict()
        return added

    def _in_order(self, batch: list[LogLine]) -> bool:
        last = self._lines[-1].key if len(self) else None
        for line in batch:
            key = line.key
            if last is not None and key < last:
                return False
            last = key
        return True  # the view is a subsequence of the buffer: it ends no later

    def _append_batch(self, batch: list[LogLine]) -> int:
        sources = self.sources
        for name, count in Counter(line.source for line in batch).items():
            sources[name] = sources.get(name, 0) + count
        self._lines.extend(batch)
        match = self._match
        matching = [ln for ln in batch if match(ln)]
        if matching:
            self._view.extend(matching)
            self.appended += len(matching)
            offsets = self._offsets
            if offsets is not None:
                total = offsets[-1]
                for ln in matching:
                    total += ln.pretty_rows()
                    offsets.append(total)
        return len(matching)

    def _insert(self, line: LogLine) -> int:
        """One line that arrived out of order: inserted where it belongs."""
        self.sources[line.source] = self.sources.get(line.source, 0) + 1
        in_order = len(self._lines) == self._start or line.key >= self._lines[-1].key
        if in_order:
            self._lines.append(line)
        else:
            bisect.insort(self._lines, line, lo=self._start, key=_key)
        if not self._match(line):
            return 0
        if in_order and (self.view_len == 0 or line.key >= self._view[-1].key):
            self._view.append(line)
            self.appended += 1
            if self._offsets is not None:
                self._offsets.append(self._offsets[-1] + line.pretty_rows())
        else:
            bisect.insort(self._view, line, lo=self._vstart, key=_key)
            self._offsets = None
            self.generation += 1
        return 1

    def _evict(self) -> None:
        excess = len(self) - self.maxlen
        if excess <= 0:
            return
        view = self._view
        for line in self._lines[self._start : self._start + excess]:
            count = self.sources.get(line.source, 0) - 1
            if count > 0:
                self.sources[line.source] = count
            else:
                self.sources.pop(line.source, None)
            if self._vstart < len(view) and view[self._vstart] is line:
                self._vstart += 1
        self._start += excess
        self.evicted += excess
        if self._start > max(1024, self.maxlen // 2):
            del self._lines[: self._start]
            self._start = 0
        if self._vstart > max(1024, self.maxlen // 2):
            del view[: self._vstart]
            if self._offsets is not None:
                del self._offsets[: self._vstart]
            self._vstart = 0

    def clear(self) -> None:
        self._lines.clear()
        self._view.clear()
        self._start = self._vstart = 0
        self._offsets = None
        self.sources.clear()
        self.generation += 1

    # ---------------------------------------------------------------- filtering

    def set_filter(self, new: LogFilter) -> None:
        """Apply ``new`` (one scan of the buffer); raises :class:`FilterError` if invalid."""
        match = new.compile()
        self.filter = new
        self._match = match
        self._view = [line for line in self._lines[self._start :] if match(line)]
        self._vstart = 0
        self._offsets = None
        self.generation += 1

    # ----------------------------------------------------------------- rows

    def set_pretty(self, pretty: bool) -> None:
        self.pretty = pretty
        self._offsets = None
        self.generation += 1

    def _prefix(self) -> list[int]:
        if self._offsets is None:
            rows = [0] * self._vstart
            rows.extend(line.pretty_rows() for line in self._view[self._vstart :])
            self._offsets = [0, *accumulate(rows)]
        return self._offsets

    @property
    def row_count(self) -> int:
        """Screen rows the view takes (one per line unless pretty-printing JSON)."""
        if not self.pretty:
            return self.view_len
        offsets = self._prefix()
        return offsets[-1] - offsets[self._vstart]

    def locate(self, row: int) -> tuple[int, int] | None:
        """``(view index, row within the line)`` of screen row ``row``."""
        if row < 0:
            return None
        if not self.pretty:
            return (row, 0) if row < self.view_len else None
        offsets = self._prefix()
        absolute = row + offsets[self._vstart]
        if absolute >= offsets[-1]:
            return None
        index = bisect.bisect_right(offsets, absolute) - 1
        return index - self._vstart, absolute - offsets[index]

    def row_of(self, index: int) -> int:
        """First screen row of view line ``index``."""
        if not self.pretty:
            return index
        offsets = self._prefix()
        return offsets[self._vstart + index] - offsets[self._vstart]

    # ----------------------------------------------------------------- search

    def index_at(self, ts: datetime) -> int:
        """View index of the first line at or after ``ts`` (``view_len`` if none)."""
        i = bisect.bisect_left(self._view, ts, lo=self._vstart, key=lambda line: line.ts)
        return i - self._vstart
