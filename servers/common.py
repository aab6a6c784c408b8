"""Helpers shared by the four area servers (MCP layer only; the logic never imports this)."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

from fastmcp.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import BaseModel

from guilde_core.config import Settings
from guilde_core.errors import GuildeError
from guilde_core.http.auth import caller_of
from guilde_core.http.authz import ANONYMOUS, Caller, Posture
from guilde_core.redaction import redact, redact_text

__all__ = [
    "CONTROL",
    "READ_ONLY",
    "as_tool_errors",
    "current_caller",
    "log_to_stderr",
    "redacted",
    "to_json",
]

P = ParamSpec("P")
R = TypeVar("R")
M = TypeVar("M", bound=BaseModel)

#: a tool that only reads (the default of every diagnostic tool)
READ_ONLY = ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=True)
#: a tool that changes state somewhere (circuit control)
CONTROL = ToolAnnotations(readOnlyHint=False, destructiveHint=True, idempotentHint=False)

log = logging.getLogger("servers")


def redacted[M: BaseModel](model: M) -> M:
    """The same model with every secret-looking value masked."""
    data = redact(model.model_dump(mode="json"))
    return type(model).model_validate(data)


def to_json(model: BaseModel) -> str:
    """A model as redacted JSON text (resources)."""
    return redact_text(model.model_dump_json(indent=2))


def _message(exc: BaseException) -> str:
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


def current_caller(settings: Settings) -> Caller:
    """Who calls the running tool, for the one decision, per call:

    * over HTTP behind dev3000's guard: the caller it left on the MCP request (the key's
      principal, ``mcp`` or ``mcp-sse``, the app's live posture);
    * over an HTTP transport no guard protects: an anonymous caller under ``settings``;
    * over stdio or in process: the local operator (read-only unless
      ``DIAGNOSTIC_CONTROL_ENABLED=true``)."""
    from fastmcp.server.dependencies import get_http_request

    try:
        request = get_http_request()
    except RuntimeError:
        return Caller.local(Posture.from_settings(settings))
    return caller_of(request.scope) or Caller(ANONYMOUS, "mcp", Posture.from_settings(settings))


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
