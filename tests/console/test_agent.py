"""The Agent screen without agent-web: a question runs the real agent (offline engine) in
the console over the real dev3000 MCP endpoint; progress streams in; the diagnosis shows;
a follow-up continues the session. (Through agent-web: tests/console/test_stack.py.)"""

from __future__ import annotations

import pytest
from textual.widgets import Markdown, RichLog, Static

from console.app import ConsoleApp
from console.screens.agent import AgentScreen
from tests.console.conftest import READ_KEY, Dev3000, submit, wait_for

pytestmark = pytest.mark.anyio


async def test_agent_screen_asks_streams_progress_and_continues(
    dev3000: Dev3000, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENT_PROVIDERS", "offline")
    app = ConsoleApp(dev3000.url, api_key=READ_KEY, refresh=5)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("6")
        screen = app.screen
        assert isinstance(screen, AgentScreen)
        await wait_for(pilot, lambda: screen.bridge is not None, what="the agent chosen")
        backend = str(screen.query_one("#agent-backend", Static).content)
        assert f"in-process agent over {dev3000.url}/mcp (no agent-web configured)" in backend
        await submit(pilot, "why is checkout failing?")
        markdown = screen.query_one("#agent-md", Markdown)
        await wait_for(pilot, lambda: "Root cause" in markdown.source, 60, "a diagnosis")
        progress = screen.query_one("#agent-progress", RichLog)
        lines = [str(line.text) for line in progress.lines]
        assert any("gather" in line for line in lines)
        assert any("tool" in line for line in lines)
        assert "mode:** offline" in markdown.source
        assert "why is checkout failing?" in markdown.source
        assert screen.bridge is not None
        session = screen.bridge.session_id
        assert session is not None

        await submit(pilot, "and is redis involved?")
        await wait_for(pilot, lambda: len(screen.diagnoses) == 2, 60, "the follow-up")
        assert screen.bridge.session_id == session
        assert "and is redis involved?" in markdown.source
        assert session[:8] in str(progress.border_title)
