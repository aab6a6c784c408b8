"""The Logs screen: live tail, follow/pause, filters, JSON pretty-print, jump, trace."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from textual.widgets import Select, Static

from console.app import ConsoleApp
from console.logbuffer import LogFilter
from console.models import LogLine
from console.screens.logs import LogsScreen, parse_jump_time
from console.screens.prompt import PromptScreen
from console.widgets.log_view import LogView
from tests.console.conftest import READ_KEY, Dev3000, submit, wait_for

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)


def lines(start: int, count: int, source: str = "orders") -> list[LogLine]:
    out = []
    for i in range(start, start + count):
        level = "error" if i % 10 == 0 else "info"
        text = (
            f'{{"msg": "payment timeout", "order": {i}, "request_id": "req-{i % 7}"}}'
            if i % 10 == 0
            else f"GET /orders/{i} 200 in {i % 50}ms"
        )
        out.append(
            LogLine(
                ts=T0 + timedelta(seconds=i),
                source=source,
                level=level,
                text=text,
                correlation_id=f"req-{i % 7}",
            )
        )
    return out


def test_parse_jump_time() -> None:
    assert parse_jump_time("10:00:30", T0) == T0 + timedelta(seconds=30)
    assert parse_jump_time("2026-01-01T10:01:00Z", None) == T0 + timedelta(minutes=1)
    with pytest.raises(ValueError, match="not a time"):
        parse_jump_time("soon", T0)


async def test_logs_tail_follow_pause_filters_pretty_jump_trace(dev3000: Dev3000) -> None:
    # the real tail is covered below; here the lines come only from this test
    app = ConsoleApp(dev3000.url, api_key=READ_KEY, live=False, log_capacity=1500)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("4")
        screen = app.screen
        assert isinstance(screen, LogsScreen)
        view = screen.query_one(LogView)
        buffer = app.store.logs

        # live tail, merged sources, bounded buffer, follow keeps the newest line in sight
        app.add_log_lines(lines(0, 1000, "orders"))
        app.add_log_lines(lines(1000, 1000, "payments"))
        await wait_for(pilot, lambda: view.virtual_size.height == 1500, what="tail painted")
        assert len(buffer) == 1500
        assert buffer.view_line(0).ts == T0 + timedelta(seconds=500)
        assert view.follow
        assert view.scroll_y == view.max_scroll_y > 0
        assert view.renders < 200  # only visible rows were rendered, not 2,000 lines

        # pause holds new lines back; resuming lets them in
        await pilot.press("space")
        app.add_log_lines(lines(2000, 10, "payments"))
        await pilot.pause()
        assert app.pending_logs == 10
        assert buffer.view_len == 1500
        assert "PAUSED" in str(screen.query_one("#log-status", Static).content)
        await pilot.press("space")
        await wait_for(pilot, lambda: buffer.view_line(buffer.view_len - 1).text.endswith("ms"))
        assert app.pending_logs == 0
        assert buffer.view_lines()[-1].ts == T0 + timedelta(seconds=2009)

        # `/` regex filter, `!` inverse, `x` plain text
        await pilot.press("slash")
        assert isinstance(app.screen, PromptScreen)
        await submit(pilot, "timeout")
        # the buffer now holds lines 510..2009 (1,500): every tenth is a timeout
        await wait_for(pilot, lambda: buffer.view_len == 150, what="regex filter")
        await pilot.press("exclamation_mark")
        assert buffer.view_len == 1500 - 150
        await pilot.press("exclamation_mark", "slash")
        await submit(pilot, "[")
        await pilot.pause()
        assert buffer.filter.text == "timeout"  # a bad regex was refused, the filter kept
        await pilot.press("x", "slash")
        await submit(pilot, "[")
        await wait_for(pilot, lambda: buffer.filter.text == "[" and not buffer.filter.regex)
        assert buffer.view_len == 0
        await pilot.press("escape")  # clear filters
        await wait_for(pilot, lambda: buffer.view_len == 1500)

        # source picker and level filter
        screen.query_one("#log-source", Select).value = "orders"
        await wait_for(pilot, lambda: buffer.view_len == 490)
        screen.query_one("#log-level", Select).value = "error"
        await wait_for(pilot, lambda: buffer.view_len == 49)
        await pilot.press("escape")

        # JSON pretty-print: a JSON line takes several rows
        rows = buffer.row_count
        await pilot.press("p")
        assert buffer.pretty
        assert buffer.row_count == rows + 150 * 4
        await pilot.press("p")

        # jump to a time
        await pilot.press("g")
        await submit(pilot, "10:20:00")
        await wait_for(pilot, lambda: not view.follow)
        line = buffer.view_line(view.cursor)
        assert line.ts == T0 + timedelta(minutes=20)

        # trace the correlation id of the selected line, across sources
        await pilot.press("t", "enter")
        await wait_for(pilot, lambda: buffer.filter.correlation_id == line.correlation_id)
        traced = buffer.view_lines()
        assert {ln.source for ln in traced} == {"orders", "payments"}
        assert all(ln.correlation_id == line.correlation_id for ln in traced)
        assert [ln.ts for ln in traced] == sorted(ln.ts for ln in traced)


def _write(path: Path, start: int, count: int, base: datetime) -> None:
    with path.open("a") as handle:
        for i in range(start, start + count):
            record = {
                "ts": (base + timedelta(milliseconds=10 * i)).isoformat(),
                "level": "error" if i % 5 == 0 else "info",
                "msg": f"checkout step {i}",
                "request_id": f"req-{i % 3}",
                "order": i,
            }
            handle.write(json.dumps(record) + "\n")


async def test_live_tail_of_real_log_files_through_dev3000(dev3000: Dev3000) -> None:
    assert dev3000.logs_dir is not None
    orders = dev3000.logs_dir / "orders.log"
    base = datetime.now(UTC) - timedelta(minutes=1)
    _write(orders, 0, 20, base)
    app = ConsoleApp(dev3000.url, api_key=READ_KEY, refresh=0.5)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("4")
        buffer = app.store.logs
        await wait_for(
            pilot, lambda: buffer.sources.get("orders.log") == 20, 30, "the existing lines"
        )
        buffer.set_filter(LogFilter(source="orders.log"))  # dev3000's own timeline is a source too
        first = buffer.view_line(0)
        assert first.text == "checkout step 0"
        assert first.level == "error"
        assert first.correlation_id == "req-0"
        assert first.json is not None
        assert first.json["order"] == 0  # structured fields kept for pretty-printing
        _write(orders, 20, 5, base)  # the file grows: the tail follows it
        await wait_for(
            pilot, lambda: buffer.sources.get("orders.log") == 25, 30, "the appended lines"
        )
        assert [ln.text for ln in buffer.view_lines()[-2:]] == [
            "checkout step 23",
            "checkout step 24",
        ]
