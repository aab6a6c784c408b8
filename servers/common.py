"""Helpers shared by the area servers (MCP layer only; the logic never imports this).

The surface rules every area follows: tools named ``<area>_<tool>`` by the area server itself
(the same names standalone and in dev3000's aggregate), :data:`READ_ONLY` / :data:`CONTROL`
annotations, :func:`compact_schema` output schemas (top-level fields and their JSON types),
and :class:`ControlGate`: control tools are listed only to a caller the one decision lets
control (:func:`guilde_core.http.authz.decide` through :func:`current_caller`).
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ParamSpec, TypeVar

from fastmcp.exceptions import ToolError
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools import Tool
from mcp_types import ToolAnnotations
from pydantic import BaseModel
from pydantic.json_schema import SkipJsonSchema

from guilde_core.config import Settings
from guilde_core.errors import GuildeError
from guilde_core.http.auth import caller_of
from guilde_core.http.authz import ANONYMOUS, Caller, Posture
from guilde_core.redaction import redact, redact_text

__all__ = [
    "CONTROL",
    "READ_ONLY",
    "ControlGate",
    "Omitted",
    "as_tool_errors",
    "caller_from",
    "caller_key",
    "compact_schema",
    "current_caller",
    "is_control",
    "log_to_stderr",
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

log = logging.getLogger("servers")

_JSON_TYPES = ("string", "integer", "number", "boolean", "array", "object", "null")


def _types_of(schema: dict[str, Any]) -> list[str]:
    """The JSON types a property schema allows (a ``$ref`` is an object; ``[]``: any)."""
    if "$ref" in schema:
        return ["object"]
    if "const" in schema or "enum" in schema:
        values = schema.get("enum", [schema.get("const")])
        found = {type(v) for v in values}
        names = {str: "string", int: "integer", float: "number", bool: "boolean"}
        return ["null" if t is type(None) else names.get(t, "string") for t in found]
    kind = schema.get("type")
    if isinstance(kind, str):
        return [kind]
    if isinstance(kind, list):
        return [str(k) for k in kind]
    types: list[str] = []
    for option in (*schema.get("anyOf", ()), *schema.get("oneOf", ())):
        sub = _types_of(option)
        if not sub:
            return []
        types += [t for t in sub if t not in types]
    return types


def compact_schema(model: type[BaseModel]) -> dict[str, Any]:
    """A short output schema for ``model``: its top-level fields with their JSON types and
    the required ones, no nested definitions or descriptions. It still types the structured
    content a tool returns (clients validate against it) at a fraction of the full schema's
    size in ``tools/list`` (the tool's description says what the fields mean)."""
    full = model.model_json_schema()
    props: dict[str, Any] = {}
    for name, schema in full.get("properties", {}).items():
        types = sorted(_types_of(schema), key=_JSON_TYPES.index)
        props[name] = {"type": types[0] if len(types) == 1 else types} if types else {}
    compact: dict[str, Any] = {"type": "object", "properties": props}
    if full.get("required"):
        compact["required"] = list(full["required"])
    return compact


def is_control(tool: Tool) -> bool:
    """A tool that changes the watched system (annotated :data:`CONTROL`)."""
    return tool.annotations is not None and tool.annotations.read_only_hint is False


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
