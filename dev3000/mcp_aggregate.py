"""The aggregate MCP server: every area server as it is, remotes, the timeline.

``build_aggregate_server(settings) -> FastMCP`` mounts

* the area servers of :data:`servers.registry.AREAS` (health, circuits, logs, system,
  browser), built with the host's :class:`servers.context.ServerContext` and mounted as
  they are: each names its tools ``<area>_<tool>`` itself and its resources with their
  documented URIs (``health://summary``), so a tool or URI is the same standalone and here
  (tests/servers/test_registry.py holds every area to its prefix);
* ``process_list`` and ``process_restart`` over the ``--run`` processes
  (:mod:`dev3000.process_tools`);
* remote MCP servers from ``DEV3000_MCP_REMOTES`` (``name=<url>`` for streamable HTTP,
  SSE when the URL path ends in ``/sse``; ``name=<command line>`` for stdio), each proxied
  by fastmcp under its own name as namespace, so one dev3000 can front servers in other
  containers;
* the timeline: the ``timeline_recent`` tool (recent events, filterable) and the
  ``timeline://recent`` resource;
* extra tools from the parts above dev3000: each :data:`ToolRegistrar` of the
  ``extra_tools`` argument is called as ``registrar(server, settings)`` (the ``dev3000``
  command passes the agent's ``diagnose`` tool);
* :class:`servers.common.ControlGate`: control tools are listed only to a caller the one
  decision lets control.

The same server is served by ``dev3000 serve`` at ``/mcp`` and ``/sse`` and over stdio by
``dev3000 mcp all`` (:func:`build_standalone_server`, whose lifespan runs the timeline's
sources itself, so the timeline tool has events to show outside ``dev3000 serve``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import shlex
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlparse

from fastmcp import FastMCP
from fastmcp.exceptions import ToolError
from fastmcp.server import create_proxy
from fastmcp.server.providers.aggregate import AggregateProvider
from fastmcp.server.providers.fastmcp_provider import FastMCPProvider
from fastmcp.server.transforms import GetToolNext, Transform
from fastmcp.tools.base import Tool
from fastmcp.utilities.versions import VersionSpec
from pydantic import BaseModel, Field

from dev3000.process_tools import Processes, register_process_tools
from dev3000.timeline.bus import EventBus, current_bus
from dev3000.timeline.filters import EventFilter
from guilde_core.config import Settings, get_settings
from guilde_core.errors import ConfigurationError
from guilde_core.events import EventKind, Severity, TimelineEvent
from guilde_core.redaction import redact
from servers.common import (
    READ_ONLY,
    ControlGate,
    DiagServer,
    Omitted,
    compact_schema,
    prompts_only_when_enabled,
)
from servers.context import ServerContext
from servers.registry import AREAS, ServerArea

if TYPE_CHECKING:
    from dev3000.timeline.service import TimelineService

__all__ = [
    "RemoteServer",
    "TimelineEvents",
    "ToolRegistrar",
    "build_aggregate_server",
    "build_standalone_server",
    "parse_remotes",
]

log = logging.getLogger(__name__)

#: ``registrar(server, settings)`` adds tools/resources to the aggregate
ToolRegistrar = Callable[[FastMCP, Settings], None]

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_RESERVED = {*AREAS, "timeline", "process"}


# --- remote servers ------------------------------------------------------------------------
@dataclass(frozen=True)
class RemoteServer:
    """A remote MCP server mounted under ``name``: a URL or a stdio command line."""

    name: str
    url: str | None = None
    command: tuple[str, ...] = ()

    @property
    def transport(self) -> Literal["http", "sse", "stdio"]:
        if self.url is None:
            return "stdio"
        return "sse" if urlparse(self.url).path.rstrip("/").endswith("/sse") else "http"

    def describe(self) -> dict[str, Any]:
        target = redact(self.url) if self.url else shlex.join(self.command[:1])
        return {"name": self.name, "transport": self.transport, "target": target}


def parse_remotes(spec: str | None) -> list[RemoteServer]:
    """Parse ``DEV3000_MCP_REMOTES``: ``name=<url or command>`` entries separated by ``;``.

    Raises :class:`ConfigurationError` naming the bad entry.
    """
    remotes: list[RemoteServer] = []
    for raw in (spec or "").split(";"):
        entry = raw.strip()
        if not entry:
            continue
        name, sep, target = entry.partition("=")
        name, target = name.strip(), target.strip()
        if not sep or not target:
            raise ConfigurationError(
                f"DEV3000_MCP_REMOTES: entry {redact(entry)!r} must be name=<url or command>"
            )
        if not _NAME.match(name) or name in _RESERVED:
            raise ConfigurationError(
                f"DEV3000_MCP_REMOTES: {name!r} must be lower-case letters, digits or _ "
                f"(and not one of {sorted(_RESERVED)})"
            )
        if any(r.name == name for r in remotes):
            raise ConfigurationError(f"DEV3000_MCP_REMOTES: {name!r} given twice")
        if re.match(r"^https?://", target, re.IGNORECASE):
            remotes.append(RemoteServer(name, url=target))
        else:
            try:
                argv = tuple(shlex.split(target))
            except ValueError as exc:
                raise ConfigurationError(f"DEV3000_MCP_REMOTES: {name}: {exc}") from None
            remotes.append(RemoteServer(name, command=argv))
    return remotes


def _proxy_for(remote: RemoteServer, stdio: list[Any]) -> FastMCP:
    from fastmcp.client.transports import SSETransport, StdioTransport, StreamableHttpTransport

    transport: Any
    if remote.url is not None:
        transport = (
            SSETransport(remote.url)
            if remote.transport == "sse"
            else StreamableHttpTransport(remote.url)
        )
    else:
        transport = StdioTransport(remote.command[0], list(remote.command[1:]))
        stdio.append(transport)
    return create_proxy(transport, name=f"remote-{remote.name}")


# --- the timeline tool -----------------------------------------------------------------------
class TimelineEvents(BaseModel):
    """Recent timeline events, oldest first."""

    events: list[TimelineEvent]
    count: int = Field(description="Events returned.")
    buffered: int = Field(description="Events held in dev3000's buffer.")
    buffer_size: int = Field(description="DIAGNOSTIC_STREAM_BUFFER_SIZE.")
    instance: str = Field(description="The dev3000 instance that answered.")


class _BusRef:
    """The bus the timeline tool reads: given, the running dev3000's, or its own."""

    def __init__(self, bus: EventBus | None, settings: Settings) -> None:
        self.given = bus
        self.settings = settings
        self.own: EventBus | None = None

    def get(self) -> EventBus:
        bus = self.given if self.given is not None else current_bus()
        if bus is None:
            if self.own is None:
                self.own = EventBus(self.settings.diagnostic_stream_buffer_size)
            bus = self.own
        return bus


def _add_timeline(server: FastMCP, settings: Settings, ref: _BusRef) -> None:
    if settings.mcp_tools_enabled:

        @server.tool(
            name="timeline_recent",
            description="Recent timeline events (transitions, error lines, process exits, "
            "reloads), oldest first, filtered.",
            annotations=READ_ONLY,
            output_schema=compact_schema(TimelineEvents),
        )
        def timeline_recent(
            limit: Annotated[int, Field(ge=1, le=500)] = 50,
            kinds: Sequence[EventKind] = (),
            severity: Annotated[Severity | Omitted, Field(description="Minimum.")] = None,
            sources: Annotated[Sequence[str], Field(description="e.g. health, logs")] = (),
            subject: Annotated[
                str | Omitted, Field(max_length=200, description="Subject substring.")
            ] = None,
            window_minutes: Annotated[float | Omitted, Field(gt=0, le=10080)] = None,
        ) -> TimelineEvents:
            bus = ref.get()
            since = (
                datetime.now(UTC) - timedelta(minutes=window_minutes) if window_minutes else None
            )
            try:
                flt = EventFilter(
                    kinds=frozenset(kinds) if kinds else None,
                    severity=severity,
                    sources=frozenset(sources) if sources else None,
                    subject=subject or None,
                    since=since,
                )
            except ValueError as exc:
                raise ToolError(f"invalid filter: {exc}") from None
            events = bus.recent(limit, flt)
            return TimelineEvents(
                events=[TimelineEvent.model_validate(redact(e.model_dump())) for e in events],
                count=len(events),
                buffered=len(bus),
                buffer_size=bus.buffer_size,
                instance=bus.instance_id,
            )

    if settings.mcp_resources_enabled:

        @server.resource(
            "timeline://recent",
            name="timeline_recent",
            description="The last 100 timeline events as JSON (oldest first).",
            mime_type="application/json",
        )
        def timeline_resource() -> str:
            bus = ref.get()
            events = [redact(e.model_dump(mode="json")) for e in bus.recent(100)]
            return json.dumps({"events": events, "buffered": len(bus), "instance": bus.instance_id})


# --- building -------------------------------------------------------------------------------
class _ToolsServedByTheAggregate(Transform):
    """On a mounted area: its tools are the aggregate's own (copied when it is built), so
    the mount lists none and answers every tool lookup at once, without asking the area."""

    async def list_tools(self, tools: Sequence[Tool]) -> Sequence[Tool]:
        del tools
        return []

    async def get_tool(
        self, name: str, call_next: GetToolNext, *, version: VersionSpec | None = None
    ) -> Tool | None:
        del name, call_next, version
        return None


def _mount_areas(server: FastMCP, areas: Sequence[FastMCP]) -> None:
    """Mount each area as it is, its tools resolved once, here.

    ``FastMCP.mount`` alone makes every call ask every mounted server for the tool (one
    task per area), then run the area's whole call pipeline below the aggregate's (three
    spans). The areas' tools are static once they are built, and each area names its tools
    ``<area>_<tool>`` itself, so each is added to the aggregate itself under that name: a
    call finds it in the aggregate's own table and runs it directly, one span (the
    aggregate's :class:`servers.common.ControlGate` lists the control ones). Resources,
    templates, prompts and the areas' lifespans still come through the mounts, without a
    namespace (the documented URIs: ``health://summary``), bundled in one provider that
    answers tool lookups at once, without asking the areas.
    """
    bundle = AggregateProvider()
    for area in areas:
        for component in list(area._local_provider._components.values()):  # built: static
            if isinstance(component, Tool):
                server.add_tool(component.model_copy())
        bundle.add_provider(FastMCPProvider(area))
    server.add_provider(bundle.wrap_transform(_ToolsServedByTheAggregate()))


def build_aggregate_server(
    settings: Settings | None = None,
    *,
    bus: EventBus | None = None,
    remotes: Sequence[RemoteServer] | None = None,
    extra_tools: Iterable[ToolRegistrar] = (),
    areas: Sequence[ServerArea] = tuple(AREAS.values()),
    run_timeline_sources: bool = False,
    context: ServerContext | None = None,
    processes: Processes = tuple,
) -> FastMCP:
    """The aggregate server (see the module doc).

    ``context``: what the area servers get from the host (dev3000's runtime targets for
    health, its browser capture); circuit control is recorded on the timeline served here
    unless it sets ``audit``. ``processes``: the host's supervised ``--run`` processes.

    ``bus``: the timeline to serve (default: the running dev3000's, else one of its own).
    ``extra_tools``: registrars called last, each ``registrar(server, settings)``.
    ``remotes``: instead of ``DEV3000_MCP_REMOTES``. ``run_timeline_sources``: start the
    timeline's sources (files, poller, log follower …) in the server's lifespan when no
    dev3000 app runs them; :func:`build_standalone_server` (``dev3000 mcp all``) sets it.
    """
    settings = settings or get_settings()
    remote_list = (
        list(remotes) if remotes is not None else parse_remotes(settings.dev3000_mcp_remotes)
    )
    ref = _BusRef(bus, settings)
    context = context or ServerContext()
    if context.audit is None:
        context = replace(context, audit=lambda event: ref.get().publish(event))
    stdio_transports: list[Any] = []

    @contextlib.asynccontextmanager
    async def lifespan(server: FastMCP) -> AsyncIterator[dict[str, Any]]:
        del server
        starting: asyncio.Task[TimelineService] | None = None
        if run_timeline_sources and bus is None and current_bus() is None:
            # in the background: the client's initialize and tools/list need none of it
            starting = asyncio.create_task(_start_standalone_timeline(settings, ref))
        try:
            yield {}
        finally:
            if starting is not None:
                await _stop_standalone_timeline(starting)
            for transport in stdio_transports:
                with contextlib.suppress(Exception):
                    await transport.close()

    server: FastMCP = DiagServer(
        settings.mcp_server_name,
        instructions="guilde-diag through dev3000. Start with health_stack (the state of "
        "the stack and why); then the focused tools: "
        + ", ".join(f"{area.name}_*" for area in areas)
        + " per area, timeline_recent for what happened lately, process_* for "
        "supervised dev servers, and any remote servers under their own names.",
        lifespan=lifespan,
        middleware=[ControlGate(settings)],
    )
    _mount_areas(server, [area.build(settings, context) for area in areas])
    for remote in remote_list:
        server.mount(_proxy_for(remote, stdio_transports), namespace=remote.name)
    _add_timeline(server, settings, ref)
    register_process_tools(server, settings, processes)
    for registrar in extra_tools:
        registrar(server, settings)
    return prompts_only_when_enabled(server, settings)


def build_standalone_server(
    settings: Settings | None = None, *, extra_tools: Iterable[ToolRegistrar] = ()
) -> FastMCP:
    """The aggregate for ``dev3000 mcp all`` (stdio, no ``dev3000 serve`` around it): it
    runs the timeline's sources itself so ``timeline_recent`` has events to show."""
    return build_aggregate_server(settings, extra_tools=extra_tools, run_timeline_sources=True)


async def _start_standalone_timeline(settings: Settings, ref: _BusRef) -> TimelineService:
    """Run the timeline's sources for a server that is not inside ``dev3000 serve``."""
    from dev3000.timeline.service import TimelineService  # Redis, file sources: not at import

    service = TimelineService(settings, bus=ref.get())
    await service.start()
    return service


async def _stop_standalone_timeline(starting: asyncio.Task[TimelineService]) -> None:
    """Let a start still under way finish (so every source it started is stopped), then
    shut the service down; a start stuck past 10 s is cancelled."""
    try:
        service = await asyncio.wait_for(starting, timeout=10)
    except (asyncio.CancelledError, TimeoutError):
        return
    except Exception as exc:
        log.warning("timeline sources did not start: %s", type(exc).__name__)
        return
    with contextlib.suppress(Exception):
        await service.shutdown()
