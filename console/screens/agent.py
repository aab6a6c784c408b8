"""Agent: ask a question, watch the investigation stream in, read the diagnosis with its
evidence, and continue the session with follow-up questions."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Input, Markdown, RichLog

from console.agent_bridge import AgentUnavailable, InProcessAgent, describe_event
from console.screens.base import ConsoleScreen
from console.screens.confirm import ConfirmScreen
from console.widgets.diagnosis import diagnosis_markdown
from guilde_core.redaction import redact

__all__ = ["AgentScreen"]


class AgentScreen(ConsoleScreen):
    SCREEN_TITLE = "Agent"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+n", "new_session", "New session"),
    ]

    DEFAULT_CSS = """
    AgentScreen #agent-question { dock: top; margin: 0 1; }
    AgentScreen #agent-progress { width: 2fr; border: round $primary; }
    AgentScreen #agent-result { width: 3fr; border: round $primary; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.bridge: InProcessAgent | None = None
        self.busy = False
        self.diagnoses: list[Any] = []

    def compose_body(self) -> ComposeResult:
        yield Input(
            placeholder="ask: why is checkout failing?  (enter to send; follow-ups continue)",
            id="agent-question",
        )
        with Horizontal():
            progress = RichLog(id="agent-progress", wrap=True, max_lines=2000, markup=False)
            progress.border_title = "Investigation"
            yield progress
            with VerticalScroll(id="agent-result") as result:
                result.border_title = "Diagnosis"
                yield Markdown("Ask a question to start an investigation.", id="agent-md")

    def on_mount(self) -> None:
        super().on_mount()
        self.bridge = InProcessAgent(self.console.url, api_key=self.console.api_key)
        self._session_title()
        self.query_one("#agent-question", Input).focus()

    def _session_title(self) -> None:
        assert self.bridge is not None
        turns = len(self.diagnoses)
        self.query_one(
            "#agent-progress", RichLog
        ).border_title = f"Investigation — session {self.bridge.session_id[:8]} ({turns} answered)"

    def apply_argument(self, arg: str) -> None:
        if arg:
            self.ask(arg)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        question = event.value.strip()
        if question:
            event.input.value = ""
            self.ask(question)

    def action_new_session(self) -> None:
        if self.bridge is None or self.busy:
            return
        self.bridge.new_session()
        self.diagnoses.clear()
        self.query_one("#agent-progress", RichLog).clear()
        self.query_one("#agent-md", Markdown).update("New session: ask a question.")
        self._session_title()

    def ask(self, question: str) -> None:
        if self.busy:
            self.notify("the agent is still investigating", severity="warning")
            return
        self._run(question)

    def _progress(self, event: dict[str, Any]) -> None:
        self.query_one("#agent-progress", RichLog).write(describe_event(event))

    async def _approve(self, request: dict[str, Any]) -> dict[str, Any]:
        """A control action proposed by the agent: a human confirms it (never in read-only)."""
        tool = str(request.get("tool") or "?")
        if self.console.readonly:
            return {"approved": False, "reason": "read-only console"}
        reason = await self.app.push_screen_wait(
            ConfirmScreen(
                f"Agent asks to run {tool}",
                f"The agent proposes [b]{escape(tool)}[/b] with "
                f"{escape(str(redact(request.get('arguments') or {})))}.",
                action_label="Approve",
            )
        )
        if reason is None:
            return {"approved": False, "reason": "denied in the console"}
        return {"approved": True, "reason": reason}

    @work(exclusive=True, group="agent", exit_on_error=False)
    async def _run(self, question: str) -> None:
        assert self.bridge is not None
        self.busy = True
        log = self.query_one("#agent-progress", RichLog)
        log.write(f"? {question}")
        try:
            diagnosis = await self.bridge.ask(question, self._progress, self._approve)
        except AgentUnavailable as exc:
            self.notify(str(exc), title="agent", severity="error")
            return
        except Exception as exc:  # the agent failed: show why, keep the console alive
            log.write(f"✗ {type(exc).__name__}: {exc}")
            self.notify(f"{type(exc).__name__}: {exc}", title="agent", severity="error")
            return
        finally:
            self.busy = False
        if diagnosis is None:
            log.write("no diagnosis (the run is waiting for an approval)")
            return
        self.diagnoses.append(diagnosis)
        self.query_one("#agent-md", Markdown).update(diagnosis_markdown(diagnosis))
        self._session_title()
