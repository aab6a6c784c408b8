"""Every log record of the process redacted and on one line, whoever logs it.

:func:`install_safe_logging` (called once at process start by ``dev3000 serve``,
``dev3000 mcp``, ``dev3000 agent web`` and the ``dev3000`` command itself; calling it again
does nothing) wraps the process's log record factory, so every record — ours, uvicorn's,
websockets', httpx's, at every level and whatever handler later formats it — is cleaned as
it is made:

* the message is redacted (:func:`guilde_core.redaction.redact_text`: keys, tokens, DSN
  passwords, ``?token=`` query values, ``x-api-key: …`` header lines …) and its control
  characters are escaped (:func:`guilde_core.redaction.escape_controls`), so a value from
  outside (a control reason, a URL, a header) cannot forge a log line;
* the handshake header dumps the websockets library writes at debug level (``< name:
  value`` through uvicorn's ``uvicorn.error`` logger, ``> name: value`` on the client side)
  keep the header's name and mask its value unless it is one of a few harmless headers —
  a credential header with a name no pattern knows is masked too;
* an exception's traceback text is redacted (``exc_text``; handlers format that text), and
  handlers that would render the live exception themselves (rich tracebacks) are told not to.

Arguments are kept (as cleaned values) when that gives the same text, because some
formatters read them: uvicorn's access log formatter takes the client, method, path and
status from ``record.args``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from guilde_core.redaction import MASK, escape_controls, redact_text

__all__ = ["clean_record", "install_safe_logging", "safe_line"]

#: websockets' handshake header lines (``logger.debug("< %s: %s", name, value)``)
_HEADER_DUMPS = frozenset({"< %s: %s", "> %s: %s"})
#: headers whose values a handshake dump may show
_PLAIN_HEADERS = frozenset(
    {
        "host",
        "upgrade",
        "connection",
        "origin",
        "user-agent",
        "date",
        "server",
        "content-type",
        "content-length",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
    }
)

_lock = threading.Lock()


def safe_line(text: str) -> str:
    """``text`` redacted and on one line (trailing line breaks dropped, others escaped)."""
    return escape_controls(redact_text(text.rstrip("\r\n")))


def _clean_arg(value: Any) -> Any:
    return safe_line(value) if isinstance(value, str) else value


def _clean_args(args: Any) -> Any:
    if isinstance(args, tuple):
        return tuple(_clean_arg(a) for a in args)
    if isinstance(args, Mapping):
        return {k: _clean_arg(v) for k, v in args.items()}
    return args


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:  # a bad format: keep what there is (logging would print it raw)
        return f"{record.msg} {record.args!r}"


def clean_record(record: logging.LogRecord) -> logging.LogRecord:
    """Redact ``record`` in place (message, arguments, traceback); returns it."""
    args = record.args
    if (
        record.msg in _HEADER_DUMPS
        and isinstance(args, tuple)
        and len(args) == 2
        and str(args[0]).lower() not in _PLAIN_HEADERS
    ):
        args = record.args = (args[0], MASK)
    text = safe_line(_message(record))
    kept = False
    if args and isinstance(record.msg, str) and safe_line(record.msg) == record.msg:
        cleaned = _clean_args(args)
        try:
            kept = (record.msg % cleaned) == text
        except Exception:
            kept = False
        if kept:
            record.args = cleaned
    if not kept:
        record.msg, record.args = text, ()
    if record.exc_info and not record.exc_text:
        record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))
    elif record.exc_text:
        record.exc_text = redact_text(record.exc_text)
    if record.stack_info:
        record.stack_info = redact_text(record.stack_info)
    return record


def _factory(previous: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return clean_record(previous(*args, **kwargs))

    make.guilde_safe = True  # type: ignore[attr-defined]
    return make


def _plain_tracebacks() -> None:
    """Handlers that render the live exception (rich tracebacks) would bypass the redacted
    ``exc_text``: switch them to the formatted text."""
    loggers: list[Any] = [logging.getLogger()]
    loggers += [
        v for v in logging.Logger.manager.loggerDict.values() if isinstance(v, logging.Logger)
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if getattr(handler, "rich_tracebacks", False):
                handler.rich_tracebacks = False


def install_safe_logging() -> None:
    """Clean every log record of this process from now on (see the module doc)."""
    with _lock:
        current = logging.getLogRecordFactory()
        if not getattr(current, "guilde_safe", False):
            logging.setLogRecordFactory(_factory(current))
    _plain_tracebacks()
