"""SVG snapshots of the main screens, fed from a recorded JSON (no server, no clock)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from console.app import ConsoleApp

RECORDING = json.loads((Path(__file__).parent / "data" / "recording.json").read_text())
NOW = datetime(2026, 1, 22, 10, 30, 5, tzinfo=UTC)
SIZE = (120, 34)


def recorded_app() -> ConsoleApp:
    return ConsoleApp("http://dev3000.test:3001", live=False, clock=lambda: NOW)


def loader(*keys: str) -> Any:
    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, ConsoleApp)
        app.load_recording(RECORDING)
        for key in keys:
            await pilot.press(key)
        await pilot.pause()
        await pilot.wait_for_scheduled_animations()

    return run_before


@pytest.mark.parametrize(
    ("screen", "keys"),
    [
        ("dashboard", ()),
        ("health", ("2",)),
        ("circuits", ("3",)),
        ("logs", ("4",)),
        ("timeline", ("5", "down", "down")),
    ],
)
def test_screen_snapshot(snap_compare: Any, screen: str, keys: tuple[str, ...]) -> None:
    assert snap_compare(recorded_app(), terminal_size=SIZE, run_before=loader(*keys))
