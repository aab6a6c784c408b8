"""The console application: screens as modes, workers for all I/O, a store in between.

Workers (never the screens) talk to dev3000:

* the *poller* refreshes deep health, the stack model, circuits and targets every
  ``refresh`` seconds and publishes only what changed — a quiet system costs one small
  request batch per period;
* the *stream* follows ``/api/v1/diag/stream`` (resuming after reconnects) and batches
  events into the store;
* the *log tail* pages ``/api/v1/logs/search`` forward from the newest line it holds.

A lost connection is retried with exponential back-off; the screens keep their last data
and mark it stale. Server errors become notifications, never crashes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.command import Provider
from textual.screen import Screen

from console.commands import CommandError, CommandTable
from console.connection import Backoff, ConnectionInfo
from console.errors import ApiError, ConnectionLost
from console.messages import ConnectionChanged, StoreUpdated, Topic
from console.models import CircuitAction, Event, LogLine
from console.palette import ConsoleCommands
from console.registry import SCREENS, ScreenRegistry
from console.screens.base import ConsoleScreen
from console.screens.help import HelpScreen
from console.screens.prompt import PromptScreen
from console.store import ConsoleStore

if TYPE_CHECKING:
    from console.client import Dev3000Client

__all__ = ["ConsoleApp"]

LOG_PAGE = 500
#: seconds between repaints of the log view while lines stream in (coalescing pages)
LOG_REPAINT = 0.05


class ConsoleApp(App[None]):
    """``dev3000 console``: watch dev3000 and act on it."""

    TITLE = "dev3000 console"
    CSS = """
    Screen.-stale ConnectionBar { text-style: bold; }
    """
    DEFAULT_MODE = "dashboard"
    COMMANDS: ClassVar[set[type[Provider] | Callable[[], type[Provider]]]] = {
        *App.COMMANDS,
        ConsoleCommands,
    }
    #: the app's own keys; they follow the screens' keys (which come from the registry)
    APP_KEYS: ClassVar[tuple[Binding, ...]] = (
        Binding("colon", "command", ":cmd"),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    )

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        readonly: bool = False,
        refresh: float = 2.0,
        live: bool = True,
        log_capacity: int = 100_000,
        stream_transport: str = "ws",
        agent_url: str | None = None,
        clock: Callable[[], datetime] | None = None,
        backoff: Callable[[], Backoff] | None = None,
        screens: ScreenRegistry = SCREENS,
    ) -> None:
        super().__init__()
        if refresh <= 0:
            raise ValueError("refresh must be > 0 seconds")
        if self.DEFAULT_MODE not in screens:
            raise ValueError(f"the screens must include {self.DEFAULT_MODE!r}")
        #: the main screens: modes, number keys, ``:`` commands, palette and help
        self.screens = screens
        for entry in screens:
            self.add_mode(entry.name, entry.create)
            self.bind(entry.key, f"show({entry.name!r})", description=entry.footer or entry.title)
        for binding in self.APP_KEYS:
            self.bind(binding.key, binding.action, description=binding.description)
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.readonly = readonly
        self.refresh_interval = refresh
        self.live = live
        self.stream_transport = "sse" if stream_transport == "sse" else "ws"
        #: agent-web's URL (``auto``: the settings' ``DEV3000_AGENT_URL``; ``None``/``off``:
        #: the in-process agent only) — resolved when the agent screen opens
        self.agent_url = agent_url
        self.frozen_clock = clock is not None
        self._clock = clock or (lambda: datetime.now(UTC))
        self._backoff = backoff or (lambda: Backoff(0.5, 2.0, 15.0))
        self.store = ConsoleStore(log_capacity=log_capacity)
        self.client: Dev3000Client | None = None
        self.logs_paused = False
        self._pending: deque[LogLine] = deque(maxlen=log_capacity)
        self._poke = asyncio.Event()
        self._event_batch: list[Event] = []
        self._flush_scheduled = False
        self._logs_publish_scheduled = False
        self._last_error: str | None = None
        self._retry_after = 0.0
        self.polls = 0
        self.publishes = 0

    # ------------------------------------------------------------------ clock

    def now(self) -> datetime:
        return self._clock()

    # --------------------------------------------------------------- lifecycle

    def on_mount(self) -> None:
        if self.live:
            # the HTTP and WebSocket clients (httpx, websockets, TLS context) load after
            # the first screen is painted, not before
            self.call_after_refresh(self._start_io)

    def _start_io(self) -> None:
        from console.client import Dev3000Client

        if self.client is None and self.is_running:
            self.client = Dev3000Client(self.url, api_key=self.api_key)
            self.run_worker(self._poll_loop(), name="poll", group="io", exit_on_error=False)
            self.run_worker(self._stream_loop(), name="stream", group="io", exit_on_error=False)
            self.run_worker(self._logs_loop(), name="logs", group="io", exit_on_error=False)

    async def on_unmount(self) -> None:
        self.workers.cancel_group(self, "io")
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.aclose()

    # ---------------------------------------------------------------- publish

    @property
    def command_table(self) -> CommandTable:
        return self.screens.commands

    def _main_screens(self) -> Iterator[ConsoleScreen]:
        for screen in self.screen_stack:
            if isinstance(screen, ConsoleScreen):
                yield screen

    def publish(self, *topics: Topic) -> None:
        """Tell the visible console screen that part of the store changed."""
        if not topics:
            return
        self.publishes += 1
        message_topics = frozenset(topics)
        for screen in self._main_screens():
            screen.post_message(StoreUpdated(message_topics))

    def _connection_changed(self) -> None:
        for screen in self._main_screens():
            screen.post_message(ConnectionChanged(self.store.connection, self.store.stream))

    def _api_error(self, where: str, exc: ApiError) -> None:
        """Show a server error once (not again on every refresh while it persists)."""
        text = f"{where}: {exc}"
        if text == self._last_error:
            return
        self._last_error = text
        self.notify(str(exc.detail or exc.title), title=f"{where} ({exc.status})", severity="error")

    # -------------------------------------------------------------- the poller

    async def _poll_loop(self) -> None:
        backoff = self._backoff()
        while True:
            self._poke.clear()
            try:
                await self.poll_once()
            except ConnectionLost as exc:
                delay = backoff.next_delay()
                self.store.connection = self.store.connection.failed(str(exc), delay)
                self._connection_changed()
                self.publish("health", "circuits")  # repaint titles as stale
            else:
                backoff.reset()
                delay = self.refresh_interval
                if self._retry_after:
                    delay, self._retry_after = max(delay, self._retry_after), 0.0
                if self.store.connection.stale:
                    self.store.connection = ConnectionInfo.ok()
                    self._connection_changed()
                    self.publish("health", "circuits", "targets", "logs", "events")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poke.wait(), delay)

    async def poll_once(self) -> None:
        """One refresh of health, the stack model, circuits and targets, fetched
        concurrently; each part is
        published as soon as it arrives and only if it changed (a slow deep check never
        delays the breakers). Raises :class:`ConnectionLost` when dev3000 is unreachable."""
        assert self.client is not None
        client = self.client
        self.polls += 1

        async def health() -> None:
            if self.store.update_health(await client.deep_health()):
                self.publish("health")

        async def circuits() -> None:
            if self.store.update_circuits(await client.circuits()):
                self.publish("circuits")

        async def targets() -> None:
            if self.store.update_targets(await client.targets()):
                self.publish("targets")

        async def topology() -> None:
            if self.store.update_topology(await client.topology()):
                self.publish("topology")

        parts = ("health", "topology", "circuits", "targets")
        results = await asyncio.gather(
            health(), topology(), circuits(), targets(), return_exceptions=True
        )
        for result in results:
            if isinstance(result, ConnectionLost):
                raise result
        for where, result in zip(parts, results, strict=True):
            # an older dev3000 without the registry or the model: the screens do without
            missing = isinstance(result, ApiError) and result.status == 404
            if missing and where in ("targets", "topology"):
                continue
            if isinstance(result, BaseException):
                self._report(where, result)

    def _report(self, where: str, exc: BaseException) -> None:
        if isinstance(exc, ApiError) and exc.status == 429:
            self._retry_after = max(self._retry_after, exc.retry_after or 10.0)
        if isinstance(exc, ApiError):
            self._api_error(where, exc)
        elif not isinstance(exc, asyncio.CancelledError):
            self.notify(f"{type(exc).__name__}: {exc}", title=where, severity="error")

    def refresh_now(self) -> None:
        """Wake the poller before its period ends."""
        self._poke.set()

    # -------------------------------------------------------------- the stream

    def _stream_state(self, info: ConnectionInfo) -> None:
        self.store.stream = info
        self._connection_changed()

    async def _stream_loop(self) -> None:
        assert self.client is not None
        while True:
            try:
                events = await self.client.timeline(limit=200)
            except ConnectionLost:
                await asyncio.sleep(self.refresh_interval)
                continue
            except ApiError as exc:
                self._api_error("timeline", exc)
                events = []
            break
        if self.store.add_events(events):
            self.publish("events")
        from console.stream import EventStream

        stream = EventStream(
            self.url,
            api_key=self.api_key,
            transport="sse" if self.stream_transport == "sse" else "ws",
            backoff=self._backoff(),
            on_state=self._stream_state,
            last_event_id=events[-1].id if events else None,
        )
        async for event in stream.events():
            self._event_batch.append(event)
            if event.kind in ("circuit_transition", "control_action", "health_transition"):
                self.refresh_now()
            if not self._flush_scheduled:
                self._flush_scheduled = True
                self.set_timer(0.1, self._flush_events)

    def _flush_events(self) -> None:
        self._flush_scheduled = False
        batch, self._event_batch = self._event_batch, []
        if self.store.add_events(batch):
            self.publish("events")

    # ------------------------------------------------------------ the log tail

    def _add_logs(self, lines: list[LogLine]) -> None:
        """Lines go into the buffer at once (in bulk); the screens hear about them at most
        once per ``LOG_REPAINT`` seconds, however many pages arrived meanwhile."""
        if not lines:
            return
        if self.logs_paused:
            self._pending.extend(lines)
        else:
            self.store.logs.extend(lines)
        if not self._logs_publish_scheduled:
            self._logs_publish_scheduled = True
            self.set_timer(LOG_REPAINT, self._publish_logs)

    def _publish_logs(self) -> None:
        self._logs_publish_scheduled = False
        self.publish("logs")

    @property
    def pending_logs(self) -> int:
        return len(self._pending)

    def set_logs_paused(self, paused: bool) -> None:
        self.logs_paused = paused
        if not paused and self._pending:
            lines = list(self._pending)
            self._pending.clear()
            self._add_logs(lines)

    def add_log_lines(self, lines: list[LogLine]) -> None:
        """Feed lines (from the tail, a trace query, a recording or a benchmark)."""
        self._add_logs(lines)

    async def _logs_loop(self) -> None:
        """Page the log search forward. ``since`` is the oldest of the sources' newest
        lines (bounded to 10 minutes back), so a source that writes late is not skipped;
        lines already seen are dropped by key."""
        assert self.client is not None
        backoff = self._backoff()
        newest: dict[str, datetime] = {}
        seen: set[tuple[str, datetime, str]] = set()
        order: deque[tuple[str, datetime, str]] = deque()
        while True:
            delay = self.refresh_interval
            since = None
            if newest:
                since = max(min(newest.values()), self.now() - timedelta(minutes=10))
            try:
                page = await self.client.log_search(since=since, limit=LOG_PAGE)
            except ConnectionLost:
                delay = backoff.next_delay()
            except ApiError as exc:
                self._api_error("logs", exc)
                delay = max(delay, 10.0)
            else:
                backoff.reset()
                fresh: list[LogLine] = []
                for line in sorted(page.items, key=lambda ln: ln.ts):
                    key = (line.source, line.ts, line.text)
                    if key in seen:
                        continue
                    seen.add(key)
                    order.append(key)
                    if len(order) > 50_000:
                        seen.discard(order.popleft())
                    if line.ts > newest.get(line.source, line.ts - timedelta(seconds=1)):
                        newest[line.source] = line.ts
                    fresh.append(line)
                self._add_logs(fresh)
            await asyncio.sleep(delay)

    def fetch_trace(self, correlation_id: str) -> None:
        """Pull the lines of one correlation id from dev3000 into the buffer."""
        if self.client is None:
            return
        self.run_worker(self._fetch_trace(correlation_id), group="actions", exit_on_error=False)

    async def _fetch_trace(self, correlation_id: str) -> None:
        assert self.client is not None
        try:
            page = await self.client.log_search(query=correlation_id, regex=False, limit=LOG_PAGE)
        except (ApiError, ConnectionLost) as exc:
            self.notify(str(exc), title="trace", severity="error")
            return
        have = {
            (line.ts, line.source, line.text)
            for line in self.store.logs.view_lines()
            if line.correlation_id == correlation_id
        }
        fresh = [ln for ln in page.items if (ln.ts, ln.source, ln.text) not in have]
        if fresh:
            self.store.logs.extend(fresh)
            self.publish("logs")

    # ------------------------------------------------------------ user actions

    def run_deep_check(self) -> None:
        if self.client is None:
            return
        self.run_worker(self._deep_check(), group="actions", exit_on_error=False)

    async def _deep_check(self) -> None:
        assert self.client is not None
        try:
            report = await self.client.deep_health(fresh=True)
        except ConnectionLost as exc:
            self.notify(str(exc), title="deep check: no connection", severity="error")
            return
        except ApiError as exc:
            self._api_error("deep check", exc)
            return
        self.store.update_health(report)
        self.publish("health")
        with contextlib.suppress(ApiError, ConnectionLost):  # the model of the same round
            if self.store.update_topology(await self.client.topology()):
                self.publish("topology")
        self.notify(f"deep check: {report.status}", timeout=3)

    def control_circuit(self, name: str, action: CircuitAction, reason: str) -> None:
        """Open / close / reset a breaker (the screen has already asked to confirm)."""
        if self.readonly:
            self.notify("read-only console: circuit control is disabled", severity="warning")
            return
        if self.client is None:
            return
        self.run_worker(self._control(name, action, reason), group="actions", exit_on_error=False)

    async def _control(self, name: str, action: CircuitAction, reason: str) -> None:
        assert self.client is not None
        try:
            await self.client.circuit_action(name, action, reason)
        except ApiError as exc:
            self.notify(
                str(exc.detail or exc.title),
                title=f"{action} {name} ({exc.status})",
                severity="error",
            )
            return
        except ConnectionLost as exc:
            self.notify(str(exc), title=f"{action} {name}: no connection", severity="error")
            return
        self.notify(f"breaker {name}: {action} done ({reason})", timeout=4)
        with contextlib.suppress(ApiError, ConnectionLost):
            if self.store.update_circuits(await self.client.circuits()):
                self.publish("circuits")
        self.refresh_now()

    # ----------------------------------------------------------- navigation

    async def action_show(self, mode: str, arg: str = "") -> None:
        if mode not in self.screens:
            return
        if self.current_mode != mode:
            await self.switch_mode(mode)
        if arg:
            screen = self.screen_stack[0] if self.screen_stack else None
            if isinstance(screen, ConsoleScreen):
                screen.apply_argument(arg)

    def action_command(self) -> None:
        def done(text: str | None) -> None:
            if text:
                self.call_later(self.run_command, text)

        self.push_screen(PromptScreen(":", placeholder="logs | circuits api | help …"), done)

    async def run_command(self, text: str) -> None:
        """Run one ``:`` command (aliases allowed)."""
        try:
            command = self.command_table.parse(text)
        except CommandError as exc:
            self.notify(str(exc), title="command", severity="error")
            return
        if command.name == "quit":
            self.exit()
        elif command.name == "help":
            self.action_help()
        else:
            await self.action_show(command.name, command.arg)

    def action_help(self) -> None:
        screen = self.screen
        keys: list[tuple[str, str]] = []
        seen: set[str] = set()
        for active in screen.active_bindings.values():
            if not active.enabled or not active.binding.description:
                continue
            label = self.get_key_display(active.binding)
            if label in seen:
                continue
            seen.add(label)
            keys.append((label, active.binding.description))
        title = screen.screen_title if isinstance(screen, ConsoleScreen) else ""
        self.push_screen(HelpScreen(title or type(screen).__name__, keys, self.command_table))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for entry in self.screens:
            yield SystemCommand(f"Go to {entry.name}", entry.help, self._goto(entry.name))

    def _goto(self, name: str) -> Callable[[], Awaitable[None]]:
        async def go() -> None:
            await self.action_show(name)

        return go

    # --------------------------------------------------------------- fixtures

    def load_recording(self, data: Mapping[str, object]) -> None:
        """Fill the store from a recorded JSON (``health_history``, ``health``,
        ``topology``, ``circuits``, ``targets``, ``events``, ``logs``) — the source of the snapshot tests
        and the benchmark."""
        from console.models import (
            parse_circuits,
            parse_deep_health,
            parse_event,
            parse_log_line,
            parse_targets,
            parse_topology,
        )

        def items(key: str) -> list[object]:
            value = data.get(key)
            return list(value) if isinstance(value, list) else []

        for body in items("health_history"):
            self.store.update_health(parse_deep_health(body))
        if "health" in data:
            self.store.update_health(parse_deep_health(data["health"]))
        if "topology" in data:
            self.store.update_topology(parse_topology(data["topology"]))
        if "circuits" in data:
            self.store.update_circuits(parse_circuits(data["circuits"]))
        if "targets" in data:
            self.store.update_targets(parse_targets(data["targets"]))
        events = [parse_event(e) for e in items("events")]
        self.store.add_events([e for e in events if e is not None])
        lines = [parse_log_line(item) for item in items("logs")]
        self.store.logs.extend([ln for ln in lines if ln is not None])
        self.store.connection = ConnectionInfo.ok()
        self.store.stream = ConnectionInfo.ok()
        self.publish("all")
        self._connection_changed()
