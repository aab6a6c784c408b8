"""Agent: ask a question, watch the investigation stream in, read the diagnosis with its
evidence, and continue the session with follow-up questions.

The agent runs in agent-web (``--agent-url``, default the settings' ``DEV3000_AGENT_URL``)
when it answers there — sessions over its REST API, progress over its WebSocket — and
otherwise in the console's own process over dev3000's ``/mcp``
(:class:`console.agent_bridge.InProcessAgent`). The line under the question says which."""

from __future__ import annotations

import asyncio
from typing import ClassVar

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Input, Markdown, RichLog, Static

from console.agent_bridge import AgentUnavailable, InProcessAgent, describe_event
from console.agent_models import AgentEvent, Approval, ApprovalRequest, Diagnosis
from console.agent_web import AgentRunFailed, AgentWebAgent, resolve_agent_url
from console.screens.base import ConsoleScreen
from console.screens.confirm import ConfirmScreen
from console.widgets.diagnosis import diagnosis_markdown
from guilde_core.redaction import redact

__all__ = ["AgentScreen"]


class AgentScreen(ConsoleScreen):
    #: the question has the focus whenever the screen is shown and nothing else holds it
    AUTO_FOCUS = "#agent-question"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+n", "new_session", "New session"),
    ]

    DEFAULT_CSS = """
    AgentScreen #agent-question { dock: top; margin: 0 1; }
    AgentScreen #agent-backend { height: 1; padding: 0 2; color: $text-muted; }
    AgentScreen #agent-progress { width: 2fr; border: round $primary; }
    AgentScreen #agent-result { width: 3fr; border: round $primary; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.bridge: InProcessAgent | AgentWebAgent | None = None
        self.backend = ""
        self.busy = False
        self.diagnoses: list[Diagnosis] = []
        self._chosen: asyncio.Event = asyncio.Event()

    def compose_body(self) -> ComposeResult:
        yield Input(
            placeholder="ask: why is checkout failing?  (enter to send; follow-ups continue)",
            id="agent-question",
        )
        yield Static("agent: choosing…", id="agent-backend")
        with Horizontal():
            progress = RichLog(id="agent-progress", wrap=True, max_lines=2000, markup=False)
            progress.border_title = "Investigation"
            yield progress
            with VerticalScroll(id="agent-result") as result:
                result.border_title = "Diagnosis"
                yield Markdown("Ask a question to start an investigation.", id="agent-md")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#agent-question", Input).focus()
        self._choose_backend()

    async def on_unmount(self) -> None:
        if isinstance(self.bridge, AgentWebAgent):
            await self.bridge.aclose()

    @work(group="agent-backend", exit_on_error=False)
    async def _choose_backend(self) -> None:
        """agent-web when one is configured and answers; the in-process agent otherwise."""
        console = self.console
        in_process = f"in-process agent over {console.url}/mcp"
        try:
            url = resolve_agent_url(console.agent_url)
        except Exception as exc:  # a broken configuration: say so and run in-process
            url, why = None, f"agent URL not usable: {type(exc).__name__}: {exc}"
        else:
            why = "no agent-web configured"
        if url is not None:
            web = AgentWebAgent(url, api_key=console.api_key)
            problem = await web.probe()
            if problem is None:
                self.bridge, self.backend = web, f"agent: {web.describe()}"
            else:
                await web.aclose()
                why = f"agent-web at {url} not usable: {problem}"
        if self.bridge is None:
            self.bridge = InProcessAgent(console.url, api_key=console.api_key)
            self.backend = f"agent: {in_process} ({why})"
        self.query_one("#agent-backend", Static).update(escape(self.backend))
        self._session_title()
        self._chosen.set()

    def _session_title(self) -> None:
        if self.bridge is None:
            return
        turns = len(self.diagnoses)
        session = (self.bridge.session_id or "new")[:8]
        self.query_one(
            "#agent-progress", RichLog
        ).border_title = f"Investigation — session {session} ({turns} answered)"

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

    def _progress(self, event: AgentEvent) -> None:
        self.query_one("#agent-progress", RichLog).write(describe_event(event))

    async def _approve(self, request: ApprovalRequest) -> Approval:
        """A control action proposed by the agent: a human confirms it (never in read-only)."""
        tool = request.tool
        if self.console.readonly:
            return Approval(approved=False, reason="read-only console")
        reason = await self.app.push_screen_wait(
            ConfirmScreen(
                f"Agent asks to run {tool}",
                f"The agent proposes [b]{escape(tool)}[/b] with "
                f"{escape(str(redact(request.arguments)))}.",
                action_label="Approve",
            )
        )
        if reason is None:
            return Approval(approved=False, reason="denied in the console")
        return Approval(approved=True, reason=reason)

    @work(exclusive=True, group="agent", exit_on_error=False)
    async def _run(self, question: str) -> None:
        self.busy = True
        log = self.query_one("#agent-progress", RichLog)
        log.write(f"? {question}")
        try:
            await self._chosen.wait()
            assert self.bridge is not None
            diagnosis = await self.bridge.ask(question, self._progress, self._approve)
        except AgentRunFailed as exc:
            log.write(f"✗ the run failed: {exc}")
            self.notify(str(exc), title="agent-web", severity="error")
            return
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
