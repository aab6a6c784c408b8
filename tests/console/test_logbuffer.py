"""The bounded, merged, filtered log buffer behind the Logs screen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from console.logbuffer import FilterError, LogBuffer, LogFilter
from console.models import LogLine

T0 = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)


def line(i: int, source: str = "app", level: str = "info", text: str | None = None) -> LogLine:
    return LogLine(
        ts=T0 + timedelta(seconds=i),
        source=source,
        level=level,
        text=text if text is not None else f"line {i}",
        correlation_id=f"req-{i % 3}",
    )


def texts(buffer: LogBuffer) -> list[str]:
    return [ln.text for ln in buffer.view_lines()]


def test_bounded_buffer_evicts_oldest_and_keeps_view_consistent() -> None:
    buffer = LogBuffer(maxlen=1000)
    buffer.set_filter(LogFilter(text="5$"))
    for start in range(0, 5000, 250):
        buffer.extend(line(i) for i in range(start, start + 250))
    assert len(buffer) == 1000
    assert buffer.evicted == 4000
    assert texts(buffer) == [f"line {i}" for i in range(4000, 5000) if i % 10 == 5]
    assert buffer.view_line(0).text == "line 4005"


def test_merged_sources_are_ordered_by_time() -> None:
    buffer = LogBuffer()
    buffer.extend([line(0, "api"), line(2, "api"), line(4, "api")])
    buffer.extend([line(1, "worker"), line(3, "worker")])  # arrive late, belong in between
    assert texts(buffer) == [f"line {i}" for i in range(5)]
    assert buffer.sources == {"api": 3, "worker": 2}
    buffer.set_filter(LogFilter(source="worker"))
    assert texts(buffer) == ["line 1", "line 3"]


def test_level_regex_inverse_and_correlation_filters() -> None:
    buffer = LogBuffer()
    buffer.extend(
        [
            line(0, level="debug", text="cache miss"),
            line(1, level="info", text="GET /orders 200"),
            line(2, level="error", text="GET /checkout 500"),
            line(3, level="warning", text="slow query 900ms"),
        ]
    )
    buffer.set_filter(LogFilter(min_level="warning"))
    assert texts(buffer) == ["GET /checkout 500", "slow query 900ms"]
    buffer.set_filter(LogFilter(text=r"GET /\w+ [45]\d\d"))
    assert texts(buffer) == ["GET /checkout 500"]
    buffer.set_filter(LogFilter(text="GET", inverse=True))
    assert texts(buffer) == ["cache miss", "slow query 900ms"]
    buffer.set_filter(LogFilter(text="/ORDERS", regex=False))
    assert texts(buffer) == ["GET /orders 200"]
    buffer.set_filter(LogFilter(correlation_id="req-2"))
    assert texts(buffer) == ["GET /checkout 500"]
    with pytest.raises(FilterError, match="bad regular expression"):
        buffer.set_filter(LogFilter(text="(unclosed"))
    assert texts(buffer) == ["GET /checkout 500"]  # a bad filter keeps the previous one


def test_pretty_rows_map_screen_rows_to_lines() -> None:
    buffer = LogBuffer()
    buffer.extend([line(0, text='{"a": 1, "b": 2}'), line(1, text="plain"), line(2, text="{}")])
    assert buffer.row_count == 3
    assert buffer.locate(1) == (1, 0)
    buffer.set_pretty(True)
    assert buffer.row_count == 4 + 1 + 1
    assert buffer.locate(0) == (0, 0)
    assert buffer.locate(3) == (0, 3)
    assert buffer.locate(4) == (1, 0)
    assert buffer.locate(5) == (2, 0)
    assert buffer.locate(6) is None
    assert buffer.row_of(2) == 5
    buffer.extend([line(3, text='{"c": 3}')])
    assert buffer.row_count == 9
    assert buffer.locate(8) == (3, 2)


def test_jump_to_time_finds_first_line_at_or_after() -> None:
    buffer = LogBuffer()
    buffer.extend(line(i * 10) for i in range(100))
    assert buffer.index_at(T0 + timedelta(seconds=255)) == 26
    assert buffer.index_at(T0 - timedelta(days=1)) == 0
    assert buffer.index_at(T0 + timedelta(days=1)) == 100


def test_appended_and_generation_counters_drive_incremental_repaint() -> None:
    buffer = LogBuffer()
    buffer.extend([line(1), line(2)])
    generation, appended = buffer.generation, buffer.appended
    buffer.extend([line(3)])
    assert (buffer.generation, buffer.appended) == (generation, appended + 1)
    buffer.extend([line(0)])  # out of order: the view is rebuilt, not appended to
    assert buffer.generation == generation + 1


def test_batch_append_matches_line_by_line_ingestion_with_pretty_rows() -> None:
    def page(start: int) -> list[LogLine]:
        return [
            line(i, source=f"s{i % 3}", text=f'{{"n": {i}, "ok": {str(i % 2 == 0).lower()}}}')
            if i % 4 == 0
            else line(i, source=f"s{i % 3}")
            for i in range(start, start + 50)
        ]

    bulk, single = LogBuffer(maxlen=120), LogBuffer(maxlen=120)
    for buffer in (bulk, single):
        buffer.set_filter(LogFilter(text="ok|line 1"))
        buffer.set_pretty(True)
        assert buffer.row_count == 0  # the prefix sums exist before the batches arrive
    for start in range(0, 200, 50):
        assert bulk.extend(page(start)) == sum(single.extend([ln]) for ln in page(start))
    assert texts(bulk) == texts(single)
    assert bulk.sources == single.sources == {"s0": 40, "s1": 40, "s2": 40}
    assert bulk.row_count == single.row_count
    fresh = LogBuffer(maxlen=120)
    fresh.extend(bulk.view_lines())
    fresh.set_pretty(True)
    assert bulk.row_count == fresh.row_count > bulk.view_len
    last = bulk.view_len - 1
    assert bulk.locate(bulk.row_of(last)) == (last, 0)
    # a late line is inserted where it belongs, not appended
    assert bulk.extend([line(160, text="late line 1")]) == 1
    assert [ln.text for ln in bulk.view_lines()].index("late line 1") < last
