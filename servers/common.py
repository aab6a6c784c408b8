"""Helpers shared by the area servers (MCP layer only; the logic never imports this).

The surface rules every area follows: tools named ``<area>_<tool>`` by the area server itself
(the same names standalone and in dev3000's aggregate), :data:`READ_ONLY` / :data:`CONTROL`
annotations, :func:`guilde_core.schemas.compact_schema` output schemas (top-level fields and their JSON types),
and :class:`ControlGate`: control tools are listed only to a caller the one decision lets
control (:func:`guilde_core.http.authz.decide` through :func:`current_caller`).
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ParamSpec, TypeVar

from fastmcp import FastMCP
from fastmcp.exceptions import ToolError
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools import Tool
from mcp_types import ToolAnnotations
from pydantic import BaseModel
from pydantic.json_schema import SkipJsonSchema

from guilde_core.config import Settings
from guilde_core.errors import GuildeError
from guilde_core.http.authz import ANONYMOUS, Caller, Posture
from guilde_core.redaction import redact, redact_text
from guilde_core.schemas import compact_schema

__all__ = [
    "CONTROL",
    "READ_ONLY",
    "ControlGate",
    "DiagServer",
    "Omitted",
    "as_tool_errors",
    "caller_from",
    "caller_key",
    "compact_schema",
    "current_caller",
    "is_control",
    "log_to_stderr",
    "prompts_only_when_enabled",
    "redacted",
    "to_json",
]

P = ParamSpec("P")
R = TypeVar("R")
M = TypeVar("M", bound=BaseModel)

#: a tool that only reads (the default of every diagnostic tool); the destructive and
#: idempotent hints mean nothing for a read-only tool (MCP), so they are left out
READ_ONLY = ToolAnnotations(readOnlyHint=True)
#: ``X | Omitted = None``: an optional tool argument whose schema is plain ``X`` (no
#: ``anyOf [X, null]``, which inspectors cannot fill and which costs ``tools/list`` room)
Omitted = SkipJsonSchema[None]
#: a tool that changes state somewhere (circuit control)
CONTROL = ToolAnnotations(readOnlyHint=False, destructiveHint=True, idempotentHint=False)


class _StateUntilWritten:
    """FastMCP's in-process session state, made at its first write. Until then a read answers
    what the new, empty store would: nothing stored. Every ``tools/list`` reads it (the
    session's visibility rules); making it imports py-key-value and beartype, a quarter of a
    second of a stdio server's start (``tools/bench/bench_start.py``)."""

    __slots__ = ("_make", "_real")

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._real: Any = None

    def _store(self) -> Any:
        if self._real is None:
            self._real = self._make()
        return self._real

    async def get(self, key: str, *, collection: str | None = None, default: Any = None) -> Any:
        if self._real is None:
            return default
        return await self._real.get(key, collection=collection, default=default)

    async def delete(self, key: str, *, collection: str | None = None) -> bool:
        if self._real is None:
            return False
        return bool(await self._real.delete(key, collection=collection))

    def __getattr__(self, name: str) -> Any:  # writes, and any other use, make the store
        return getattr(self._store(), name)


class DiagServer(FastMCP[Any]):
    """The FastMCP server of every area and of dev3000's aggregate. One difference: the
    session-state store is made when something is first stored in it (nothing of this
    project stores any; FastMCP's per-session visibility and ``ctx.set_state`` still can),
    not at the first ``tools/list``. A server given ``session_state_store=`` (a store that
    may hold state already) reads it from the start."""

    @property
    def _state_store(self) -> Any:
        lazy = self.__dict__.get("_guilde_state")
        if lazy is None:
            if self._state_storage is not None:
                return super()._state_store
            lazy = _StateUntilWritten(self._made_state_store)
            self.__dict__["_guilde_state"] = lazy
        return lazy

    def _made_state_store(self) -> Any:
        return super()._state_store


log = logging.getLogger("servers")


def is_control(tool: Tool) -> bool:
    """A tool that changes the watched system (annotated :data:`CONTROL`)."""
    return tool.annotations is not None and tool.annotations.read_only_hint is False


def prompts_only_when_enabled[S: FastMCP](server: S, settings: Settings) -> S:
    """``server``, advertising the prompts capability only when ``MCP_PROMPTS_ENABLED``:
    switched off, ``initialize`` offers no prompts and ``prompts/*`` are unknown methods,
    instead of an empty list a client shows as a feature."""
    if not settings.mcp_prompts_enabled:
        handlers = server._mcp_server._request_handlers
        for method in ("prompts/list", "prompts/get"):
            handlers.pop(method, None)
    return server


class ControlGate(Middleware):
    """Lists control tools only to a caller the one decision lets control, per request:
    ``DIAGNOSTIC_CONTROL_ENABLED=true`` *and* the caller's key (or the local operator) may
    (:meth:`guilde_core.http.authz.Caller.decide`). A hidden tool called anyway still meets
    the same gate in the tool and gets its refusal as a tool error."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def on_list_tools(
        self,
        context: MiddlewareContext[Any],
        call_next: CallNext[Any, Sequence[Tool]],
    ) -> Sequence[Tool]:
        tools = await call_next(context)
        if not any(is_control(t) for t in tools):
            return tools
        if current_caller(self.settings).decide("control").allowed:
            return tools
        return [t for t in tools if not is_control(t)]


def redacted[M: BaseModel](model: M) -> M:
    """The same model with every secret-looking value masked."""
    data = redact(model.model_dump(mode="json"))
    return type(model).model_validate(data)


def to_json(model: BaseModel) -> str:
    """A model as redacted JSON text (resources)."""
    return redact_text(model.model_dump_json(indent=2))


def _message(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        # str(OSError) names the file by its absolute path on the server: keep only the reason
        return redact_text(exc.strerror)[:300]
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return redact_text(text)[:300]


def as_tool_errors[**P, R](fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Turn expected failures into a short :class:`ToolError` (never a traceback)."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except ToolError:
            raise
        except (GuildeError, ValueError, LookupError, PermissionError) as exc:
            raise ToolError(_message(exc)) from None
        except Exception as exc:
            log.warning("tool %s failed: %s", getattr(fn, "__name__", "?"), type(exc).__name__)
            raise ToolError(f"{type(exc).__name__}: {_message(exc)}") from None

    return wrapper


def _http_request() -> Any | None:
    """The HTTP request of the running MCP tool call; None over stdio or in process."""
    from fastmcp.server.dependencies import get_http_request

    try:
        return get_http_request()
    except RuntimeError:
        return None


def current_caller(settings: Settings) -> Caller:
    """Who calls the running tool, for the one decision, per call:

    * over HTTP behind dev3000's guard: the caller it left on the MCP request (the key's
      principal, ``mcp`` or ``mcp-sse``, the app's live posture);
    * over an HTTP transport no guard protects: an anonymous caller under ``settings``;
    * over stdio or in process: the local operator (read-only unless
      ``DIAGNOSTIC_CONTROL_ENABLED=true``)."""
    request = _http_request()
    if request is None:
        return Caller.local(Posture.from_settings(settings))
    # only over HTTP (FastAPI is loaded there already): stdio servers never import it
    from guilde_core.http.auth import caller_of

    return caller_of(request.scope) or Caller(ANONYMOUS, "mcp", Posture.from_settings(settings))


def caller_from(principal: Any, client_host: str | None) -> str:
    """The key per-caller limits count by: ``key:<id>`` for an API key, ``addr:<ip>`` for
    an anonymous caller."""
    key_id = getattr(principal, "key_id", None)
    if key_id and not getattr(principal, "anonymous", False):
        return f"key:{key_id}"
    return f"addr:{client_host}" if client_host else "anonymous"


def caller_key() -> str:
    """:func:`caller_from` for the current MCP tool call (``local`` over stdio or in
    process): the principal the HTTP endpoint's guard authenticated, else the address."""
    request = _http_request()
    if request is None:
        return "local"
    principal = request.scope.get("state", {}).get("principal")
    return caller_from(principal, request.client.host if request.client else None)


def log_to_stderr(level: str = "INFO") -> None:
    """Route every log record to stderr (stdout belongs to the MCP protocol over stdio)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        stream: Any = getattr(handler, "stream", None)
        if stream is sys.stdout:
            root.removeHandler(handler)
    if not any(getattr(h, "stream", None) is sys.stderr for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(level.upper())
