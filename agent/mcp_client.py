"""The agent's only way to the diagnostics: an MCP client over dev3000's aggregate endpoint.

:class:`DiagTools` holds one session of the official ``mcp`` client (:class:`ClientSession`)
connected either to a URL (``http://127.0.0.1:3001/mcp`` by default) over streamable HTTP,
or, in tests and inside dev3000 itself, to a FastMCP server object in the same process
(fastmcp's in-memory transport, which yields the same ``ClientSession``). It discovers the
tools with ``tools/list``, finds tools by role (deep health, circuit list, error groups,
timeline) without hard-coding the aggregate's namespacing, tells read-only tools from
control tools, and turns every call into a :class:`ToolOutcome` — tool errors become
``ok=False`` outcomes, never exceptions.

Over a URL only ``mcp.client`` is imported, not FastMCP's client (whose auth stack —
key-value stores, beartype, client-credential crypto — and transport inference cost about
three quarters of a second of every ``dev3000 ask``). Tool results are taken as they come:
the agent reads them as evidence and does not need the SDK to validate them against their
output schema (which would also import ``jsonschema``).
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Self

from agent.models import JsonObject, JsonValue, ToolArguments
from agent.safety import redact_data
from guilde_core.errors import AuthenticationError, ConnectionFailedError, classify
from guilde_core.redaction import redact_text

if TYPE_CHECKING:
    import httpx2
    from fastmcp import FastMCP
    from mcp.client.session import ClientSession
    from mcp_types import CallToolResult, Tool, ToolAnnotations

__all__ = [
    "CONTROL_VERBS",
    "DEFAULT_URL",
    "DiagTools",
    "MCPTarget",
    "ToolOutcome",
    "ToolSpec",
]

DEFAULT_URL = "http://127.0.0.1:3001/mcp"
#: verbs in a tool name that make it a control tool (always needs approval)
CONTROL_VERBS = (
    "open", "close", "reset", "force", "disable", "enable", "control", "inject",
    "navigate", "click", "fill", "reload", "restart",
)  # fmt: skip
_CONTROL_RE = re.compile(r"(?:^|_)(?:" + "|".join(CONTROL_VERBS) + r")(?:_|$)")

#: where the tools are: an MCP URL, or a FastMCP server in the same process
type MCPTarget = str | FastMCP


@dataclass(frozen=True)
class ToolSpec:
    """What the agent knows about one MCP tool."""

    name: str
    description: str
    input_schema: JsonObject
    read_only: bool
    control: bool


@dataclass
class ToolOutcome:
    """The result of one tool call: structured data when there is some, text always."""

    name: str
    arguments: ToolArguments
    ok: bool
    data: JsonValue = None
    text: str = ""
    error: str | None = None
    duration_ms: float = 0.0


def _is_control(name: str, annotations: ToolAnnotations | None) -> bool:
    read_only = annotations.read_only_hint if annotations else None
    destructive = annotations.destructive_hint if annotations else None
    if read_only is True:
        # a read-only hint is trusted only if the name does not look like control
        return bool(_CONTROL_RE.search(name.lower()))
    if destructive is True:
        return True
    return bool(_CONTROL_RE.search(name.lower()))


def _leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups — what a task group raised."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


class DiagTools:
    """An MCP client session to the diagnostics, usable as ``async with``."""

    def __init__(
        self,
        target: MCPTarget = DEFAULT_URL,
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        on_call: Callable[[ToolOutcome], None] | None = None,
    ) -> None:
        self.target = target
        self.api_key = api_key if isinstance(target, str) else None
        self.timeout = timeout
        self._stack = contextlib.AsyncExitStack()
        self._session: ClientSession | None = None
        self._refused: int | None = None  # 401/403 seen on the HTTP connection
        self._specs: dict[str, ToolSpec] = {}
        self.calls = 0
        self.on_call = on_call

    @contextlib.asynccontextmanager
    async def _connect(self) -> AsyncIterator[ClientSession]:
        if not isinstance(self.target, str):  # a FastMCP server in this process
            from fastmcp.client.transports import FastMCPTransport

            transport = FastMCPTransport(self.target)
            async with transport.connect_session(read_timeout_seconds=self.timeout) as session:
                yield session
            return
        import httpx2
        from mcp.client.session import ClientSession
        from mcp.client.streamable_http import streamable_http_client

        async def note_refusal(response: httpx2.Response) -> None:
            if response.status_code in (401, 403):
                self._refused = response.status_code

        headers = {"authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        http = httpx2.AsyncClient(  # the SDK's defaults, with our timeout and key
            headers=headers,
            timeout=httpx2.Timeout(self.timeout, read=max(300.0, self.timeout)),
            event_hooks={"response": [note_refusal]},
        )
        async with (
            http,
            streamable_http_client(self.target, http_client=http) as (read, write),
            ClientSession(read, write, read_timeout_seconds=self.timeout) as session,
        ):
            yield session

    async def __aenter__(self) -> Self:
        try:
            session = await self._stack.enter_async_context(self._connect())
            await session.initialize()
            self._session = session
            await self.refresh()
        except BaseException as exc:
            # a failed request of the transport cancels this task from the transport's task
            # group; closing the connection raises what really went wrong
            reason: BaseException = exc
            try:
                await self._stack.aclose()
            except BaseException as closing:
                reason = closing
            self._session = None
            if not isinstance(reason, Exception):  # a real cancellation, Ctrl-C …
                raise
            raise self._connect_error(reason) from reason
        return self

    def _connect_error(self, exc: BaseException) -> AuthenticationError | ConnectionFailedError:
        where = redact_text(self.target) if isinstance(self.target, str) else "in-process server"
        if self._refused is not None:
            return AuthenticationError(
                f"the dev3000 MCP endpoint at {where} rejected the API key (HTTP {self._refused})",
                status_code=self._refused,
            )
        leaf = _leaves(exc)[0]
        err = classify(leaf)
        if err.code == "authentication":
            return AuthenticationError(
                f"the dev3000 MCP endpoint at {where} rejected the API key: {err.message}",
                cause=leaf,
            )
        detail = redact_text(f"{type(leaf).__name__}: {leaf}")
        return ConnectionFailedError(f"cannot reach the dev3000 MCP endpoint at {where}: {detail}")

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._session = None
        await self._stack.__aexit__(exc_type, exc, tb)

    @property
    def session(self) -> ClientSession:
        if self._session is None:
            raise RuntimeError("DiagTools is used outside `async with`")
        return self._session

    async def refresh(self) -> list[ToolSpec]:
        """List the server's tools again (every page)."""
        from mcp_types import PaginatedRequestParams

        tools: list[Tool] = []
        cursor: str | None = None
        while True:
            params = PaginatedRequestParams(cursor=cursor) if cursor else None
            page = await self.session.list_tools(params=params)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
        specs: dict[str, ToolSpec] = {}
        for tool in tools:
            control = _is_control(tool.name, tool.annotations)
            read_only = not control
            specs[tool.name] = ToolSpec(
                name=tool.name,
                description=(tool.description or "").strip(),
                input_schema=dict(tool.input_schema or {"type": "object"}),
                read_only=read_only,
                control=control,
            )
        self._specs = specs
        return list(specs.values())

    @property
    def specs(self) -> dict[str, ToolSpec]:
        return dict(self._specs)

    def spec(self, name: str) -> ToolSpec | None:
        return self._specs.get(name)

    def find(self, *keywords: str, exclude: Sequence[str] = ()) -> str | None:
        """The read-only tool whose name contains every keyword (shortest name wins)."""
        matches = [
            s.name
            for s in self._specs.values()
            if not s.control
            and all(k in s.name.lower() for k in keywords)
            and not any(x in s.name.lower() for x in exclude)
        ]
        return min(matches, key=len) if matches else None

    async def call(self, name: str, arguments: ToolArguments | None = None) -> ToolOutcome:
        """Call one tool; errors come back as ``ok=False`` outcomes, never raised."""
        args = dict(arguments or {})
        started = time.perf_counter()
        self.calls += 1
        try:
            result = await self._call_tool(name, args)
        except Exception as exc:  # transport or protocol error
            err = classify(_leaves(exc)[0])
            outcome = ToolOutcome(
                name=name,
                arguments=args,
                ok=False,
                error=redact_text(f"{err.code}: {err.message}"),
                duration_ms=(time.perf_counter() - started) * 1000,
            )
        else:
            texts = [getattr(c, "text", "") for c in result.content or []]
            text = redact_text("\n".join(t for t in texts if t))
            data: JsonValue = redact_data(result.structured_content)
            if (
                isinstance(data, dict)
                and set(data) == {"result"}
                and not isinstance(data["result"], str)
            ):
                data = data["result"]
            if data is None and text:
                try:
                    data = redact_data(json.loads(text))
                except ValueError:
                    data = None
            outcome = ToolOutcome(
                name=name,
                arguments=args,
                ok=not result.is_error,
                data=None if result.is_error else data,
                text=text,
                error=(text or f"tool {name} failed") if result.is_error else None,
                duration_ms=(time.perf_counter() - started) * 1000,
            )
        if self.on_call is not None:
            self.on_call(outcome)
        return outcome

    async def _call_tool(self, name: str, arguments: ToolArguments) -> CallToolResult:
        """``tools/call`` as ``ClientSession.call_tool`` sends it, without its output-schema
        validation (see the module's docstring)."""
        from mcp_types import CallToolRequest, CallToolRequestParams, CallToolResult

        params = CallToolRequestParams(name=name, arguments=dict(arguments))
        return await self.session.send_request(CallToolRequest(params=params), CallToolResult)
