"""Pilot-driven tests of every screen against a real dev3000 (PostgreSQL, Redis, targets)."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable, OptionList, Select

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
from tests.console.conftest import CONTROL_KEY, READ_KEY, Dev3000, screen_text, submit, wait_for

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
        text = screen_text(app)
        assert "ghost-api" in text
        assert "unhealthy" in text
        assert " ms" in text
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
        await wait_for(pilot, lambda: table.row_count >= 4, what="checks table")
        await wait_for(
            pilot,
            lambda: app.screen.query_one("#health-targets", DataTable).row_count == 2,
            what="registered targets",
        )
        table.focus()
        ghost = table.get_row_index("targets/ghost-api")
        table.move_cursor(row=ghost)
        await pilot.press("enter")
        detail = app.screen.query_one("#health-detail", JsonView)
        await wait_for(pilot, lambda: detail.data and detail.data["name"] == "targets/ghost-api")
        assert detail.data["status"] == "unhealthy"
        assert detail.data["error"]
        assert detail.has_focus
        polls = app.polls
        await pilot.press("d")
        await wait_for(
            pilot,
            lambda: any("deep check:" in n.message for n in app._notifications),
            what="deep check result",
        )
        assert app.polls == polls  # it was the explicit deep check, not the poller


async def test_circuits_server_error_is_a_notification_and_control_confirms(
    dev3000: Dev3000,
) -> None:
    app = ConsoleApp(dev3000.url, api_key=CONTROL_KEY, refresh=5)
    async with app.run_test(size=(130, 40), notifications=True) as pilot:
        await pilot.press("3")
        assert isinstance(app.screen, CircuitsScreen)
        await wait_for(pilot, lambda: app.polls >= 1 and app.store.health is not None)
        # a breaker as dev3000 reports one; the control request below goes to the real server
        app.load_recording(
            {"circuits": {"circuits": [{"name": "openai", "state": "closed", "failure_count": 0}]}}
        )
        table = app.screen.query_one("#circuit-table", DataTable)
        await wait_for(pilot, lambda: table.row_count == 1)
        table.focus()
        await pilot.press("o")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.click("#confirm-ok")  # no reason: refused, the modal stays
        assert isinstance(app.screen, ConfirmScreen)
        assert "reason is required" in str(app.screen.query_one("#confirm-error").render())
        await submit(pilot, "maintenance window")
        assert isinstance(app.screen, CircuitsScreen)
        await wait_for(
            pilot,
            lambda: any(
                n.title.startswith("open openai") or "openai: open" in n.message
                for n in app._notifications
            ),
            what="result of the control request",
        )
        assert app.is_running  # whatever the server answered, the console is alive


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
                assert "[read-only]" in screen_text(app)
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
        await wait_for(pilot, lambda: table.row_count >= 5, what="streamed events")
        kind = app.screen.query_one("#tl-kind", Select)
        kind.value = "chaos"
        await wait_for(pilot, lambda: table.row_count == 3, what="kind filter")
        severity = app.screen.query_one("#tl-severity", Select)
        kind.value = "*"
        severity.value = "error"
        await wait_for(pilot, lambda: table.row_count == 3, what="severity filter")
        table.focus()
        table.move_cursor(row=2)
        await pilot.pause()
        detail = app.screen.query_one("#tl-detail", JsonView)
        await wait_for(pilot, lambda: detail.data is not None and detail.data["kind"] == "chaos")
        assert detail.data["data"]["fault"] == "latency"


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
