"""A lost dev3000: the console keeps its last data marked stale, retries with back-off,
and recovers (REST and stream) when dev3000 is back on the same address."""

from __future__ import annotations

import pytest

from console.app import ConsoleApp
from console.connection import Backoff, ConnectionState
from console.widgets.connection_bar import ConnectionBar
from tests.console.conftest import start_dev3000, wait_for
from tools.harness import free_port

pytestmark = pytest.mark.anyio


async def test_lost_connection_is_stale_retried_and_recovered(bare_env: None) -> None:
    port = free_port()
    first = start_dev3000("console-reconnect:", port)
    second = None
    app = ConsoleApp(first.url, refresh=0.3, backoff=lambda: Backoff(0.1, 2.0, 0.4))
    try:
        async with app.run_test(size=(120, 30)) as pilot:
            await wait_for(
                pilot,
                lambda: (
                    app.store.health is not None
                    and app.store.stream.state is ConnectionState.CONNECTED
                ),
                what="connected",
            )
            last_report = app.store.health
            assert not app.screen.has_class("-stale")

            first.server.stop()
            await wait_for(
                pilot,
                lambda: (
                    app.store.connection.state is ConnectionState.RECONNECTING
                    and app.store.connection.attempt >= 3
                ),
                what="retries with back-off",
            )
            bar = str(app.screen.query_one(ConnectionBar).content)
            assert "reconnecting" in bar
            assert "STALE since" in bar
            assert app.screen.has_class("-stale")
            assert last_report is not None
            assert app.store.health is not None  # the last data stays on screen
            assert app.store.connection.retry_in is not None
            assert app.store.connection.retry_in <= 0.4
            await wait_for(pilot, lambda: app.store.stream.state is ConnectionState.RECONNECTING)

            second = start_dev3000("console-reconnect:", port)
            await wait_for(
                pilot,
                lambda: (
                    app.store.connection.state is ConnectionState.CONNECTED
                    and app.store.stream.state is ConnectionState.CONNECTED
                ),
                what="recovered",
            )
            await wait_for(pilot, lambda: not app.screen.has_class("-stale"))
            assert "STALE" not in str(app.screen.query_one(ConnectionBar).content)
            second.emit(kind="notice", subject="console", summary="after the restart")
            await wait_for(
                pilot,
                lambda: any(e.summary == "after the restart" for e in app.store.events),
                what="events after reconnecting",
            )
    finally:
        first.server.stop()
        if second is not None:
            second.server.stop()
