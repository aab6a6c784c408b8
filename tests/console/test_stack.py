"""Every screen against a real dev3000 watching the real sandbox service stack, with chaos
faults injected through the sandbox's ``/_chaos`` endpoint (one stack for the module)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from textual.widgets import DataTable, Markdown, RichLog, Select, Static

from console.agent_bridge import InProcessAgent
from console.agent_models import parse_diagnosis
from console.agent_web import AgentWebAgent
from console.app import ConsoleApp
from console.connection import ConnectionState
from console.logbuffer import LogFilter
from console.screens.agent import AgentScreen
from console.screens.circuits import CircuitsScreen
from console.screens.confirm import ConfirmScreen
from console.screens.dashboard import DashboardScreen
from console.screens.health import HealthScreen
from console.screens.logs import LogsScreen
from console.screens.timeline import TimelineScreen
from console.widgets.json_view import JsonView
from console.widgets.stack_tree import StackTree
from console.widgets.target_row import TargetRow
from tests.console.conftest import CONTROL_KEY, READ_KEY, Stack, dig, screen_text, submit, wait_for
from tools.harness import ServerThread, free_port

pytestmark = pytest.mark.anyio

ORDER = {"item": "widget", "quantity": 2, "price_cents": 250}


def _check(app: ConsoleApp, name: str) -> Any:
    report = app.store.health
    return next((c for c in report.checks if c.name == name), None) if report else None


def _breaker(app: ConsoleApp, name: str) -> Any:
    return next((c for c in app.store.circuits if c.name == name), None)


def _visible_log(screen: LogsScreen) -> str:
    """The text of the log view's rows on screen (what the terminal shows)."""
    view = screen.log_view
    return "\n".join(view.render_line(y).text for y in range(view.size.height))


async def test_db_unreachable_is_red_on_dashboard_and_health_and_opens_a_breaker(
    stack: Stack,
) -> None:
    app = ConsoleApp(stack.url, api_key=READ_KEY, refresh=0.5)
    async with app.run_test(size=(130, 40)) as pilot:
        assert isinstance(app.screen, DashboardScreen)
        await wait_for(
            pilot,
            lambda: getattr(_check(app, "targets/sandbox"), "status", None) == "healthy",
            30,
            "the sandbox target healthy before the fault",
        )
        with stack.fault("db-unreachable", ttl_s=120):
            statuses = stack.traffic("/api/v1/orders", count=5, method="POST", json=ORDER)
            assert set(statuses) == {503}  # refused by the database, then by its breaker
            # dashboard: the sandbox's row turns red, the breaker summary shows it open
            await wait_for(
                pilot,
                lambda: any(
                    row.check.name == "targets/sandbox" and row.has_class("status-unhealthy")
                    for row in app.screen.query(TargetRow)
                ),
                30,
                "the sandbox target red on the dashboard",
            )
            await wait_for(
                pilot,
                lambda: getattr(_breaker(app, "database"), "state", None) == "open",
                30,
                "the sandbox's database breaker open",
            )
            await wait_for(
                pilot,
                lambda: "database" in screen_text(app) and "open" in screen_text(app),
                what="the open breaker in the dashboard summary",
            )
            # the stack tree: the failing path from the sandbox to its database, the reason
            # on the database's row and in the line that says why
            await wait_for(
                pilot,
                lambda: "sandbox ← database: " in screen_text(app),
                30,
                "the failing path sandbox ← database on the dashboard",
            )
            tree = app.screen.query_one(StackTree)
            row = next(r for r in tree.shown if r.node.id == "sandbox/database")
            assert row.on_path
            assert row.node.status == "unhealthy"
            cause = row.node.cause
            assert cause is not None
            assert cause.category in ("unreachable", "circuit_open")
            assert " ".join(cause.summary.split()) in tree.label_of(row.key)
            # health: the drilled-in check names the database as the cause
            await pilot.press("2")
            assert isinstance(app.screen, HealthScreen)
            table = app.screen.query_one("#health-checks", DataTable)
            await wait_for(pilot, lambda: "targets/sandbox" in {k.value for k in table.rows})
            table.focus()
            table.move_cursor(row=table.get_row_index("targets/sandbox"))
            await pilot.press("enter")
            detail = app.screen.query_one("#health-detail", JsonView)
            await wait_for(
                pilot,
                lambda: dig(detail.data, "name") == "targets/sandbox",
                what="the sandbox check's details",
            )
            assert dig(detail.data, "status") == "unhealthy"
            assert "unhealthy" in str(table.get_row("targets/sandbox"))
            # the sandbox's own database check nested under it, with why
            database = [str(c) for c in table.get_row("targets/sandbox/database")]
            assert database[0].strip() == "└ database"
            assert database[1] == "unhealthy"
            assert database[4]
        # the fault is cleared and the breaker reset: the target recovers on screen
        await wait_for(
            pilot,
            lambda: getattr(_check(app, "targets/sandbox"), "status", None) == "healthy",
            30,
            "the sandbox target healthy again",
        )


async def test_circuits_show_the_sandbox_breaker_and_reset_it(stack: Stack) -> None:
    app = ConsoleApp(stack.url, api_key=CONTROL_KEY, refresh=0.5)
    async with app.run_test(size=(140, 40), notifications=True) as pilot:
        await pilot.press("3")
        assert isinstance(app.screen, CircuitsScreen)
        table = app.screen.query_one("#circuit-table", DataTable)
        await wait_for(pilot, lambda: "database" in {k.value for k in table.rows}, 30)
        assert str(table.get_row("database")[1]) == "closed"
        with stack.fault("db-unreachable", ttl_s=120):
            stack.traffic("/api/v1/orders", count=4, method="POST", json=ORDER)
            await wait_for(
                pilot,
                lambda: str(table.get_row("database")[1]) == "open",
                30,
                "the database breaker open on the circuits screen",
            )
            row = [str(cell) for cell in table.get_row("database")]
            assert int(row[2]) >= 3  # failures
            assert row[3] != "—"  # last failure
            countdown = float(row[4].rstrip("s"))
            assert 0 < countdown <= 120
            # reset it from the console (with a reason): closed again for the sandbox too
            table.focus()
            table.move_cursor(row=table.get_row_index("database"))
            await pilot.press("r")
            await submit(pilot, "database is back")
            await wait_for(
                pilot,
                lambda: str(table.get_row("database")[1]) == "closed",
                30,
                f"the reset breaker ({[n.message for n in app._notifications]})",
            )
        assert stack.traffic("/api/v1/orders", count=2, method="POST", json=ORDER) == [201, 201]


async def test_error_spike_lines_stream_into_the_logs_screen(stack: Stack) -> None:
    app = ConsoleApp(stack.url, api_key=READ_KEY, refresh=0.5)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("4")
        screen = app.screen
        assert isinstance(screen, LogsScreen)
        with stack.fault("error-spike", rate=1.0, exception="ZeroDivisionError", message="tier"):
            statuses = stack.traffic("/api/v1/orders", count=6)
            assert set(statuses) == {500}

            def spike_lines() -> list[Any]:
                return [
                    ln
                    for ln in app.store.logs.view_lines()
                    if "unhandled error" in ln.text and "ZeroDivisionError" in ln.text
                ]

            await wait_for(pilot, lambda: len(spike_lines()) >= 6, 30, "the error-spike lines")
        assert all(ln.level == "error" for ln in spike_lines())
        await wait_for(
            pilot, lambda: "ZeroDivisionError" in _visible_log(screen), what="the lines on screen"
        )
        # level filter: only errors; the regex filter finds the exception signature
        level = screen.query_one("#log-level", Select)
        level.value = "error"
        await wait_for(pilot, lambda: app.store.logs.filter.min_level == "error")
        assert app.store.logs.view_len >= 6
        assert all(ln.rank >= 3 for ln in app.store.logs.view_lines())
        assert screen.set_filter(app.store.logs.filter.with_(text=r"ZeroDivision\w+"))
        assert app.store.logs.view_len == len(spike_lines()) >= 6
        screen.set_filter(LogFilter())
        # the request ids of the failed requests trace them across the sandbox's lines
        rid = spike_lines()[0].correlation_id
        assert rid
        screen.trace(rid)
        await wait_for(pilot, lambda: app.store.logs.filter.correlation_id == rid)
        traced = app.store.logs.view_lines()
        assert any("unhandled error" in ln.text for ln in traced)
        assert any('"status": 500' in ln.text or "request" in ln.text for ln in traced)


async def test_injected_faults_show_on_the_timeline(stack: Stack) -> None:
    app = ConsoleApp(stack.url, api_key=READ_KEY, refresh=1)
    async with app.run_test(size=(150, 40)) as pilot:
        await pilot.press("5")
        timeline = app.screen
        assert isinstance(timeline, TimelineScreen)
        await wait_for(pilot, lambda: app.store.stream.state is ConnectionState.CONNECTED)

        def seen(kind: str, text: str) -> list[Any]:
            return [e for e in app.store.events if e.kind == kind and text in e.summary]

        with stack.fault("error-spike", rate=1.0, exception="KeyError", message="customer_tier"):
            stack.traffic("/api/v1/orders", count=3)
            await wait_for(
                pilot, lambda: bool(seen("error_log", "unhandled error")), 30, "error_log events"
            )
        with stack.fault("db-unreachable", ttl_s=120):
            stack.traffic("/api/v1/orders", count=4, method="POST", json=ORDER)
            await wait_for(
                pilot,
                lambda: bool(seen("circuit_transition", "database")),
                30,
                "the database breaker's transition",
            )
            await wait_for(
                pilot,
                lambda: bool(seen("health_transition", "sandbox")),
                30,
                "the sandbox target's health transition",
            )
        table = app.screen.query_one("#tl-events", DataTable)
        kind = app.screen.query_one("#tl-kind", Select)
        kind.value = "circuit_transition"
        await wait_for(
            pilot,
            lambda: (
                table.row_count >= 1
                and all(e.kind == "circuit_transition" for e in timeline.shown_events())
            ),
            what="the kind filter",
        )
        opened = seen("circuit_transition", "database")[0]
        table.focus()
        table.move_cursor(row=table.get_row_index(opened.id))
        detail = app.screen.query_one("#tl-detail", JsonView)
        await wait_for(pilot, lambda: dig(detail.data, "id") == opened.id)
        assert dig(detail.data, "kind") == "circuit_transition"
        assert "open" in str(dig(detail.data, "data"))


@pytest.fixture(scope="module")
def agent_web(stack: Stack) -> Iterator[ServerThread]:
    """A real agent-web (offline provider chain, sessions in memory) on the stack's dev3000."""
    from agent.web import create_app
    from guilde_core.config import get_settings

    app = create_app(get_settings(), mcp_url=f"{stack.url}/mcp", checkpointer="memory")
    with ServerThread(app, timeout_graceful_shutdown=2) as server:
        yield server


async def test_agent_screen_runs_through_agent_web_and_continues_the_session(
    stack: Stack, agent_web: ServerThread
) -> None:
    app = ConsoleApp(stack.url, api_key=READ_KEY, refresh=5, agent_url=agent_web.url)
    with stack.fault("db-unreachable", ttl_s=120):
        stack.traffic("/api/v1/orders", count=4, method="POST", json=ORDER)
        async with app.run_test(size=(150, 45)) as pilot:
            await pilot.press("6")
            screen = app.screen
            assert isinstance(screen, AgentScreen)
            await wait_for(
                pilot,
                lambda: isinstance(screen.bridge, AgentWebAgent),
                what=f"agent-web chosen ({screen.backend or 'still choosing'})",
            )
            backend = str(screen.query_one("#agent-backend", Static).content)
            assert f"agent-web at {agent_web.url}" in backend
            await submit(pilot, "why do orders fail?")
            markdown = screen.query_one("#agent-md", Markdown)
            await wait_for(pilot, lambda: "Root cause" in markdown.source, 90, "a diagnosis")
            progress = [str(line.text) for line in screen.query_one(RichLog).lines]
            assert any("gather" in line for line in progress)  # streamed over the WebSocket
            assert any("tool" in line for line in progress)
            assert "**database**" in markdown.source, markdown.source[:600]
            assert "why do orders fail?" in markdown.source
            bridge = screen.bridge
            assert isinstance(bridge, AgentWebAgent)
            session = bridge.session_id
            assert session
            # the session lives in agent-web: its record and its latest diagnosis
            record = await bridge.session()
            assert record["turns"] == 1
            assert dig(record, "last_root_cause", "component") == "database"
            latest = await bridge.diagnosis()
            assert latest is not None
            assert parse_diagnosis(latest).root_cause == screen.diagnoses[0].root_cause
            assert screen.diagnoses[0].root_cause.component == "database"

            await submit(pilot, "is redis involved?")
            await wait_for(pilot, lambda: len(screen.diagnoses) == 2, 90, "the follow-up")
            assert bridge.session_id == session
            assert "is redis involved?" in markdown.source
            assert (await bridge.session())["turns"] == 2
            title = str(screen.query_one("#agent-progress", RichLog).border_title)
            assert session[:8] in title
            assert "2 answered" in title

            # ctrl+n: the next question opens a new session on agent-web
            await pilot.press("ctrl+n")
            assert "session new" in str(screen.query_one("#agent-progress", RichLog).border_title)
            screen.query_one("#agent-question").focus()
            await submit(pilot, "what about checkout?")
            await wait_for(pilot, lambda: len(screen.diagnoses) == 1, 90, "the new session")
            assert bridge.session_id not in (None, session)
            assert (await bridge.session())["turns"] == 1


async def test_agent_screen_falls_back_to_the_in_process_agent(stack: Stack) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    app = ConsoleApp(stack.url, api_key=READ_KEY, refresh=5, agent_url=dead)
    async with app.run_test(size=(150, 45)) as pilot:
        await pilot.press("6")
        screen = app.screen
        assert isinstance(screen, AgentScreen)
        await wait_for(pilot, lambda: isinstance(screen.bridge, InProcessAgent))
        backend = str(screen.query_one("#agent-backend", Static).content)
        assert f"in-process agent over {stack.url}/mcp" in backend
        assert f"agent-web at {dead} not usable: ConnectError" in backend


CONCLUSION = {
    "status": "unhealthy",
    "root_cause": {
        "component": "database",
        "category": "unreachable",
        "summary": "The sandbox's database refuses connections; its breaker opened.",
        "confidence": 0.9,
        "evidence_ids": ["E1"],
    },
    "findings": [],
    "recommendations": ["Bring the database back, then reset the breaker."],
}


async def test_agent_web_asks_the_console_to_approve_a_control_action(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LLM mode (the real openai SDK against the fake LLM): the model proposes resetting the
    open database breaker; agent-web stops for approval, the console asks for a reason, the
    approval resumes the run and the breaker is really reset."""
    from agent.providers.resilience import reset_local_breakers
    from agent.web import create_app
    from guilde_core.config import get_settings, reset_settings_cache
    from guilde_core.resilience import get_registry, reset_registry
    from tools.fakellm import fakellm_server

    def fresh_llm_breakers() -> None:  # the agent's own; the shared registry stays
        shared = get_registry()
        reset_local_breakers()
        reset_registry(shared)

    fresh_llm_breakers()
    with fakellm_server() as llm:
        monkeypatch.setenv("AGENT_PROVIDERS", "openai:gpt-fake")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-CONSOLEAPPROVAL0123456789")
        monkeypatch.setenv("OPENAI_BASE_URL", llm.openai_base_url)
        reset_settings_cache()
        reset_call = {"name": "database", "reason": "the database is back"}
        llm.control.set_script(
            [
                {
                    "text": "",
                    "tool_calls": [{"name": "circuits_reset", "arguments": reset_call}],
                },
                {"text": "```json\n" + json.dumps(CONCLUSION) + "\n```", "tool_calls": []},
            ]
        )
        web = create_app(get_settings(), mcp_url=f"{stack.url}/mcp", checkpointer="memory")
        with (
            ServerThread(web, timeout_graceful_shutdown=2) as server,
            stack.fault("db-unreachable"),
        ):
            stack.traffic("/api/v1/orders", count=4, method="POST", json=ORDER)
            app = ConsoleApp(stack.url, api_key=CONTROL_KEY, refresh=0.5, agent_url=server.url)
            async with app.run_test(size=(150, 45)) as pilot:
                await wait_for(
                    pilot, lambda: getattr(_breaker(app, "database"), "state", None) == "open", 30
                )
                await pilot.press("6")
                screen = app.screen
                assert isinstance(screen, AgentScreen)
                await wait_for(pilot, lambda: isinstance(screen.bridge, AgentWebAgent))
                await submit(pilot, "why do orders fail?")
                await wait_for(
                    pilot, lambda: isinstance(app.screen, ConfirmScreen), 60, "the approval"
                )
                assert "circuits_reset" in screen_text(app)
                await submit(pilot, "approved by the test")
                markdown = screen.query_one("#agent-md", Markdown)
                await wait_for(pilot, lambda: "Root cause" in markdown.source, 60, "a diagnosis")
                diagnosis = screen.diagnoses[0]
                assert diagnosis.mode == "llm"
                assert [(a.tool, a.status) for a in diagnosis.actions] == [
                    ("circuits_reset", "approved")
                ]
                progress = [str(line.text) for line in screen.query_one(RichLog).lines]
                assert any("awaiting_approval" in line for line in progress)
                # the approved reset really happened: dev3000 reports the breaker closed
                await wait_for(
                    pilot,
                    lambda: getattr(_breaker(app, "database"), "state", None) == "closed",
                    30,
                    "the breaker reset by the agent",
                )
    fresh_llm_breakers()


class CuttingProxy:
    """A TCP proxy to agent-web that cuts a session's WebSocket right after its first
    message (the ``status`` sent on subscribe): the run's events never arrive, as on a
    network cut mid-run. Other connections pass through untouched."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.cuts = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @staticmethod
    def _frames(data: bytes) -> tuple[int, int]:
        """(complete server frames in ``data`` after the HTTP head, bytes they span)."""
        head_end = data.find(b"\r\n\r\n")
        if head_end < 0:
            return 0, 0
        pos, count = head_end + 4, 0
        while pos + 2 <= len(data):
            length, offset = data[pos + 1] & 0x7F, 2
            if length == 126:
                length, offset = int.from_bytes(data[pos + 2 : pos + 4]), 4
            elif length == 127:
                length, offset = int.from_bytes(data[pos + 2 : pos + 10]), 10
            if pos + offset + length > len(data):
                break
            pos, count = pos + offset + length, count + 1
        return count, pos

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        head = await reader.read(65536)
        is_stream = b"/stream " in head.split(b"\r\n", 1)[0]
        up_writer.write(head)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, cut: bool) -> None:
            seen = b""
            with contextlib.suppress(ConnectionError):
                while chunk := await src.read(65536):
                    if cut:
                        seen += chunk
                        frames, end = self._frames(seen)
                        if frames >= 1:  # pass the status message on, then cut
                            dst.write(seen[:end])
                            await dst.drain()
                            self.cuts += 1
                            break
                        continue
                    dst.write(chunk)
                    await dst.drain()
            for w in (writer, up_writer):
                w.close()

        await asyncio.gather(pump(reader, up_writer, False), pump(up_reader, writer, is_stream))


async def test_agent_web_stream_cut_mid_run_falls_back_to_polling(
    stack: Stack, agent_web: ServerThread
) -> None:
    proxy = CuttingProxy(agent_web.port)
    async with proxy as url:
        app = ConsoleApp(stack.url, api_key=READ_KEY, refresh=5, agent_url=url)
        async with app.run_test(size=(150, 45)) as pilot:
            await pilot.press("6")
            screen = app.screen
            assert isinstance(screen, AgentScreen)
            await wait_for(pilot, lambda: isinstance(screen.bridge, AgentWebAgent))
            await submit(pilot, "why do orders fail?")
            markdown = screen.query_one("#agent-md", Markdown)
            await wait_for(pilot, lambda: "Root cause" in markdown.source, 90, "a diagnosis")
            progress = [str(line.text) for line in screen.query_one(RichLog).lines]
            assert any("stream_lost" in line for line in progress)
            assert not any("tool" in line for line in progress)  # nothing came over the cut
            assert proxy.cuts == 1
            bridge = screen.bridge
            assert isinstance(bridge, AgentWebAgent)
            assert screen.diagnoses[0].session_id == bridge.session_id
            assert (await bridge.session())["turns"] == 1
