"""The agent's only way to the diagnostics: an MCP client over dev3000's aggregate endpoint.

:class:`DiagTools` wraps a :class:`fastmcp.Client` connected either to a URL
(``http://127.0.0.1:3001/mcp`` by default) or, in tests and inside dev3000 itself, to a
FastMCP server object in the same process (fastmcp's in-memory transport). It discovers
the tools with ``list_tools``, finds tools by role (deep health, circuit list, error
groups, timeline) without hard-coding the aggregate's namespacing, tells read-only tools
from control tools, and turns every call into a :class:`ToolOutcome` — tool errors become
``ok=False`` outcomes, never exceptions.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Self

from agent.models import JsonObject, JsonValue, ToolArguments
from agent.safety import redact_data
from guilde_core.errors import AuthenticationError, ConnectionFailedError, classify
from guilde_core.redaction import redact_text

if TYPE_CHECKING:
    from fastmcp import FastMCP
    from mcp_types import ToolAnnotations

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
        from fastmcp import Client

        auth = api_key if api_key and isinstance(target, str) else None
        self.target = target
        self._client = Client(target, timeout=timeout, auth=auth)
        self._session = contextlib.AsyncExitStack()
        self._specs: dict[str, ToolSpec] = {}
        self.calls = 0
        self.on_call = on_call

    async def __aenter__(self) -> Self:
        try:
            await self._session.enter_async_context(self._client)
        except Exception as exc:
            err = classify(exc)
            if err.code == "authentication":
                raise AuthenticationError(
                    f"the MCP endpoint rejected the API key: {err.message}", cause=exc
                ) from exc
            where = self.target if isinstance(self.target, str) else "in-process server"
            raise ConnectionFailedError(
                f"cannot connect to the MCP endpoint {where}: {redact_text(str(exc))}", cause=exc
            ) from exc
        await self.refresh()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._session.__aexit__(exc_type, exc, tb)

    async def refresh(self) -> list[ToolSpec]:
        """List the server's tools again."""
        tools = await self._client.list_tools()
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
            result = await self._client.call_tool_mcp(name=name, arguments=args)
        except Exception as exc:  # transport or protocol error
            err = classify(exc)
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
