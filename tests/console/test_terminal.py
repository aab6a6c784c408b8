"""Smoke test in a real terminal: ``uv run dev3000 console --url …`` under tmux, reading
the screen with ``capture-pane`` and quitting cleanly."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.console.conftest import Dev3000, start_dev3000
from tools.harness import wait_until

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(
    shutil.which("tmux") is None or shutil.which("uv") is None, reason="needs tmux and uv"
)


class Tmux:
    """A tmux server of the test's own (its own socket), killed at the end."""

    def __init__(self) -> None:
        self.socket = f"guilde-console-{uuid.uuid4().hex[:8]}"
        self.session = "console"

    def run(self, *args: str, check: bool = True) -> str:
        result = subprocess.run(
            ["tmux", "-L", self.socket, *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=check,
        )
        return result.stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", self.session)

    def pane(self, fmt: str) -> str:
        return self.run("display-message", "-p", "-t", self.session, fmt).strip()

    def kill(self) -> None:
        self.run("kill-server", check=False)


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    server = Tmux()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def served(bare_env: None) -> Iterator[Dev3000]:
    running = start_dev3000("console-tmux:")
    try:
        yield running
    finally:
        running.server.stop()


def test_console_runs_in_tmux_and_quits_cleanly(tmux: Tmux, served: Dev3000) -> None:
    env = {
        "DEV3000_ENV_FILE": os.devnull,
        "DEV3000_DATA_DIR": os.environ["DEV3000_DATA_DIR"],
        "TERM": "xterm-256color",
        # shutil.get_terminal_size() prefers these to the pane size; pin them to the pane
        "COLUMNS": "120",
        "LINES": "40",
    }
    command = " ".join(
        [
            "env",
            *(f"{k}={shlex.quote(v)}" for k, v in env.items()),
            "uv",
            "run",
            "--no-sync",
            "dev3000",
            "console",
            "--url",
            served.url,
            "--readonly",
        ]
    )
    tmux.run("new-session", "-d", "-s", tmux.session, "-x", "120", "-y", "40", "-c", str(ROOT))
    tmux.run("resize-window", "-t", tmux.session, "-x", "120", "-y", "40")
    tmux.run("set-option", "-t", tmux.session, "remain-on-exit", "on")
    tmux.run("respawn-pane", "-k", "-t", tmux.session, command)

    wait_until(lambda: "● connected" in tmux.screen(), timeout=60, interval=0.2)
    screen = tmux.screen()
    assert "Dashboard" in screen
    assert served.url in screen
    assert "read-only" in screen
    assert "Latest events" in screen
    assert len([ln for ln in screen.splitlines() if ln.strip()]) >= 38  # uses all 40 rows
    assert "dev3000 0.1.0 started" in screen  # the latest events panel
    assert "Timeline" in screen  # key hints in the footer

    tmux.run("send-keys", "-t", tmux.session, "3")
    wait_until(lambda: "Circuits" in tmux.screen().splitlines()[0], timeout=20, interval=0.2)
    assert "Open" not in tmux.screen().splitlines()[-1]  # no control in read-only mode

    tmux.run("send-keys", "-t", tmux.session, "4")
    wait_until(lambda: "all sources (merged)" in tmux.screen(), timeout=20, interval=0.2)

    tmux.run("send-keys", "-t", tmux.session, "q")
    wait_until(lambda: tmux.pane("#{pane_dead}") == "1", timeout=20, interval=0.2)
    assert tmux.pane("#{pane_dead_signal}") == ""  # it exited, it was not killed
