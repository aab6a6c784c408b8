"""Pilot-driven tests of every screen against a real dev3000 (PostgreSQL, Redis, targets)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from textual.widgets import DataTable, OptionList, Select, Static

from console.app import ConsoleApp
from console.connection import ConnectionState
from console.screens.circuits import CircuitsScreen
from console.screens.confirm import ConfirmScreen
from console.screens.dashboard import DashboardScreen
from console.screens.health import HealthScreen
from console.screens.help import HelpScreen
from console.screens.timeline import TimelineScreen
from console.widgets.json_view import JsonView
from console.widgets.target_row import TargetRow
from guilde_core.config import BreakerConfig
from tests.console.conftest import (
    CONTROL_KEY,
    READ_KEY,
    Dev3000,
    dig,
    screen_text,
    submit,
    wait_for,
)

pytestmark = pytest.mark.anyio

CHECKS = {"database", "redis", "targets/dev3000-self", "targets/ghost-api"}


def _names(app: ConsoleApp) -> set[str]:
    return {c.name for c in app.store.health.checks} if app.store.health else set()


async def test_dashboard_shows_health_sparklines_and_live_events(dev3000: Dev3000) -> None:
    app = ConsoleApp(dev3000.url, api_key=READ_KEY, refresh=0.5)
    async with app.run_test(size=(120, 40)) as pilot:
        assert isinstance(app.screen, DashboardScreen)
        await wait_for(pilot, lambda: _names(app) >= CHECKS, what="deep health with targets")
        await wait_for(pilot, lambda: len(app.screen.query(TargetRow)) >= 4, what="target rows")
        rows = {row.check.name: row for row in app.screen.query(TargetRow)}
        assert rows["targets/ghost-api"].has_class("status-unhealthy")
        database = rows["database"]
        assert database.check.status in ("healthy", "degraded")  # degraded when the box is slow
        assert database.has_class(f"status-{database.check.status}")
        assert rows["redis"].check.latency_ms is not None
        assert len(app.store.latency["database"]) >= 1  # the sparkline's history
        # the rows' labels are composed after the rows mount
        await wait_for(pilot, lambda: " ms" in screen_text(app), what="latencies on screen")
        text = screen_text(app)
        assert "ghost-api" in text
        assert "unhealthy" in text
        assert "overall" in text
        assert "Error rate" in text
        await wait_for(
            pilot,
            lambda: app.store.stream.state is ConnectionState.CONNECTED,
            what="stream connected",
        )
        dev3000.emit(
            kind="chaos",
            source="tools",
            subject="orders-db",
            severity="warning",
            summary="chaos: latency injected into orders-db",
        )
        table = app.screen.query_one("#dash-events", DataTable)
        await wait_for(
            pilot,
            lambda: any("latency injected" in str(table.get_row_at(i)) for i in range(3)),
            what="live event on the dashboard",
        )


async def test_health_screen_drills_into_a_check_and_runs_a_deep_check(dev3000: Dev3000) -> None:
    app = ConsoleApp(dev3000.url, api_key=READ_KEY, refresh=5)
    async with app.run_test(size=(130, 40), notifications=True) as pilot:
        await pilot.press("2")
        assert isinstance(app.screen, HealthScreen)
        table = app.screen.query_one("#health-checks", DataTable)
        await wait_for(
            pilot,
            lambda: {k.value for k in table.rows} >= CHECKS,
            what="the checks table with both registered targets",
        )
        # one list of targets, whichever source declared them: the settings' datastores
        # beside the two added to the runtime registry
        targets = app.screen.query_one("#health-targets", DataTable)
        await wait_for(
            pilot,
            lambda: (
                {"target:ghost-api", "target:dev3000-self", "target:database"}
                <= {k.value for k in targets.rows}
            ),
            what="every target",
        )
        assert str(targets.get_row("target:ghost-api")[1]) == "registry"
        assert str(targets.get_row("target:ghost-api")[2]) == "absent"  # never answered
        assert str(targets.get_row("target:database")[1]) == "settings"
        table.focus()
        ghost = table.get_row_index("targets/ghost-api")
        table.move_cursor(row=ghost)
        await pilot.press("enter")
        detail = app.screen.query_one("#health-detail", JsonView)
        await wait_for(pilot, lambda: dig(detail.data, "name") == "targets/ghost-api")
        assert dig(detail.data, "status") == "unhealthy"
        assert dig(detail.data, "error")
        assert detail.has_focus
        await pilot.press("d")
        # only the explicit deep check notifies "deep check: <status>" (the poller, which may
        # tick meanwhile on a loaded machine, never does)
        await wait_for(
            pilot,
            lambda: any(n.message.startswith("deep check: ") for n in app._notifications),
            what="deep check result",
        )


@pytest.fixture
def breakers() -> Iterator[None]:
    """A fresh process-wide breaker registry (the one the in-thread dev3000 reports)."""
    from guilde_core.resilience import reset_registry

    reset_registry()
    yield
    reset_registry()


async def _fail() -> None:
    raise ConnectionError("payments upstream refused the connection")


async def test_circuits_state_countdown_and_confirmed_control(
    dev3000: Dev3000, breakers: None
) -> None:
    config = BreakerConfig(
        failure_threshold=2, recovery_timeout=30, half_open_requests=1, success_threshold=1
    )

    async def trip() -> None:  # on dev3000's loop, where its registry lives
        from guilde_core.resilience import get_registry

        registry = get_registry()
        payments = registry.breaker("payments-api", config)
        registry.breaker("search-api", config)
        for _ in range(2):
            with pytest.raises(ConnectionError):
                await payments.call(_fail)

    dev3000.run(trip())
    app = ConsoleApp(dev3000.url, api_key=CONTROL_KEY, refresh=0.5)
    async with app.run_test(size=(140, 40), notifications=True) as pilot:
        await pilot.press("3")
        assert isinstance(app.screen, CircuitsScreen)
        table = app.screen.query_one("#circuit-table", DataTable)
        await wait_for(pilot, lambda: table.row_count == 2, what="breakers listed")
        row = [str(cell) for cell in table.get_row("payments-api")]
        assert row[1] == "open"
        assert row[2] == "2"
        assert row[3] != "—"  # last failure time
        assert "refused" in row[5]
        first = float(row[4].rstrip("s"))
        assert 0 < first <= 30
        await wait_for(
            pilot,
            lambda: float(str(table.get_row("payments-api")[4]).rstrip("s")) < first,
            what="the countdown to half-open ticking",
        )

        # open search-api: the confirmation asks for a reason first
        table.focus()
        table.move_cursor(row=table.get_row_index("search-api"))
        await pilot.press("o")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.click("#confirm-ok")  # no reason: refused, the modal stays
        assert isinstance(app.screen, ConfirmScreen)
        assert "reason is required" in str(app.screen.query_one("#confirm-error", Static).content)
        await submit(pilot, "maintenance window")
        assert isinstance(app.screen, CircuitsScreen)
        await wait_for(
            pilot,
            lambda: str(table.get_row("search-api")[1]) == "open",
            what=f"search-api forced open ({[n.message for n in app._notifications]})",
        )
        await wait_for(
            pilot,
            lambda: any(
                e.kind == "control_action" and "maintenance window" in e.summary
                for e in app.store.events
            ),
            what="the control event on the timeline",
        )
        # reset payments-api; cancelling first does nothing
        table.move_cursor(row=table.get_row_index("payments-api"))
        await pilot.press("r")
        await pilot.press("escape")
        assert str(table.get_row("payments-api")[1]) == "open"
        await pilot.press("r")
        await submit(pilot, "upstream fixed")
        await wait_for(pilot, lambda: str(table.get_row("payments-api")[1]) == "closed")


async def test_control_refused_by_the_server_is_a_notification(
    dev3000: Dev3000, breakers: None
) -> None:
    async def create() -> None:
        from guilde_core.resilience import get_registry

        get_registry().breaker("search-api")

    dev3000.run(create())
    app = ConsoleApp(dev3000.url, api_key=READ_KEY, refresh=5)  # a read-only key
    async with app.run_test(size=(130, 40), notifications=True) as pilot:
        await pilot.press("3")
        table = app.screen.query_one("#circuit-table", DataTable)
        await wait_for(pilot, lambda: table.row_count == 1)
        table.focus()
        await pilot.press("c")
        await submit(pilot, "try it")
        await wait_for(
            pilot,
            lambda: any("(403)" in (n.title or "") for n in app._notifications),
            what="the 403 problem shown as a notification",
        )
        assert app.is_running
        assert str(table.get_row("search-api")[1]) == "closed"


async def test_readonly_hides_and_refuses_circuit_control(dev3000: Dev3000) -> None:
    recording = {"circuits": [{"name": "openai", "state": "open", "failure_count": 3}]}
    for readonly in (False, True):
        app = ConsoleApp(dev3000.url, api_key=READ_KEY, readonly=readonly, live=False)
        async with app.run_test(size=(120, 30)) as pilot:
            app.load_recording(recording)
            await pilot.press("3")
            table = app.screen.query_one("#circuit-table", DataTable)
            await wait_for(pilot, lambda t=table: t.row_count == 1)  # type: ignore[misc]
            table.focus()
            enabled = {b.binding.action for b in app.screen.active_bindings.values() if b.enabled}
            control = {"open_circuit", "close_circuit", "reset_circuit"}
            await pilot.press("r")
            await pilot.pause()
            if readonly:
                assert not control & enabled
                assert not isinstance(app.screen, ConfirmScreen)
                assert "read-only" in screen_text(app)
            else:
                assert control <= enabled
                assert isinstance(app.screen, ConfirmScreen)
                await pilot.press("escape")


async def test_timeline_streams_live_filters_and_shows_event_data(dev3000: Dev3000) -> None:
    app = ConsoleApp(dev3000.url, api_key=READ_KEY, refresh=5)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("5")
        assert isinstance(app.screen, TimelineScreen)
        await wait_for(pilot, lambda: app.store.stream.state is ConnectionState.CONNECTED)
        for i in range(3):
            dev3000.emit(
                kind="chaos",
                source="tools",
                subject=f"fault-{i}",
                severity="error",
                summary=f"chaos fault {i}",
                data={"fault": "latency", "ms": 100 * i},
            )
        dev3000.emit(kind="notice", source="dev3000", subject="x", summary="just a notice")
        table = app.screen.query_one("#tl-events", DataTable)
        # all four shown (dev3000's own events may come between them)
        await wait_for(
            pilot,
            lambda: (
                sum(ev.kind == "chaos" for ev in screen_events(app)) == 3
                and any(ev.kind == "notice" for ev in screen_events(app))
            ),
            what="streamed events",
        )
        kind = app.screen.query_one("#tl-kind", Select)
        kind.value = "chaos"
        await wait_for(pilot, lambda: table.row_count == 3, what="kind filter")
        severity = app.screen.query_one("#tl-severity", Select)
        kind.value = "*"
        severity.value = "error"
        await wait_for(
            pilot,
            lambda: (
                all(ev.severity in ("error", "critical") for ev in screen_events(app))
                and sum(ev.kind == "chaos" for ev in screen_events(app)) == 3
            ),
            what="severity filter",
        )
        table.focus()
        chaos = next(e for e in screen_events(app) if e.kind == "chaos")
        table.move_cursor(row=table.row_count - 1)
        await pilot.pause()
        table.move_cursor(row=table.get_row_index(chaos.id))
        await pilot.pause()
        detail = app.screen.query_one("#tl-detail", JsonView)
        await wait_for(pilot, lambda: dig(detail.data, "kind") == "chaos")
        assert dig(detail.data, "data", "fault") == "latency"


async def test_command_mode_aliases_palette_and_help(dev3000: Dev3000) -> None:
    app = ConsoleApp(dev3000.url, api_key=READ_KEY, refresh=5)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await pilot.press("colon")
        await submit(pilot, "c api")
        await wait_for(pilot, lambda: isinstance(app.screen, CircuitsScreen))
        assert isinstance(app.screen, CircuitsScreen)
        assert app.screen.name_filter == "api"
        await pilot.press("colon")
        await submit(pilot, "l")
        await wait_for(pilot, lambda: app.current_mode == "logs")
        await pilot.press("colon")
        await submit(pilot, "zz")
        await wait_for(
            pilot, lambda: any("unknown command" in n.message for n in app._notifications)
        )
        await pilot.press("2", "question_mark")
        assert isinstance(app.screen, HelpScreen)
        help_text = screen_text(app)
        assert "Deep check now" in help_text
        assert ":circuits" in help_text
        await pilot.press("escape")
        await pilot.press("ctrl+p")
        await pilot.press("t", "i", "m")
        await wait_for(pilot, lambda: _palette_offers(app, ":timeline"), what="palette hits")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.current_mode == "timeline", what="palette command")


def _palette_offers(app: ConsoleApp, text: str) -> bool:
    options = app.screen.query_one(OptionList)
    return any(
        text in str(options.get_option_at_index(i).prompt) for i in range(options.option_count)
    )


def screen_events(app: ConsoleApp) -> list[Any]:
    screen = app.screen
    assert isinstance(screen, TimelineScreen)
    table = screen.query_one("#tl-events", DataTable)
    return [e for e in screen.shown_events() if e.id in {k.value for k in table.rows}]


async def test_timeline_shows_browser_events_and_links_screenshots(dev3000: Dev3000) -> None:
    app = ConsoleApp(dev3000.url, api_key=READ_KEY, refresh=5)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("5")
        assert isinstance(app.screen, TimelineScreen)
        await wait_for(pilot, lambda: app.store.stream.state is ConnectionState.CONNECTED)
        dev3000.emit(
            kind="browser_exception",
            source="browser",
            subject="/app",
            severity="error",
            summary="uncaught TypeError: Cannot read properties of undefined",
            data={"stack": "TypeError: …\n    at drawTotals (app.js:79:88)"},
        )
        shot = dev3000.emit(
            kind="browser_screenshot",
            source="browser",
            subject="/app",
            summary="screenshot of /app (after exception)",
            data={
                "screenshot_id": "0123456789abcdef",
                "path": "/api/v1/browser/screenshots/0123456789abcdef",
            },
        )
        dev3000.emit(kind="notice", source="dev3000", subject="x", summary="not the browser")
        table = app.screen.query_one("#tl-events", DataTable)
        await wait_for(pilot, lambda: table.row_count >= 3, what="streamed events")
        app.screen.apply_argument("browser")
        await wait_for(
            pilot,
            lambda: (
                {ev.source for ev in screen_events(app)} == {"browser"} and table.row_count == 2
            ),
            what="source filter",
        )
        table.focus()
        table.move_cursor(row=table.get_row_index(shot.id))
        await pilot.pause()
        detail = app.screen.query_one("#tl-detail", JsonView)
        await wait_for(
            pilot, lambda: detail.data is not None and detail.data["kind"] == "browser_screenshot"
        )
        assert detail.data is not None
        assert (
            detail.data["screenshot_url"]
            == dev3000.url + "/api/v1/browser/screenshots/0123456789abcdef"
        )
