"""JSON-lines logs of the sandbox: one object per line in ``<logs_dir>/sandbox.jsonl``.

Fields: ``ts`` (ISO 8601 UTC), ``level``, ``logger``, ``message``, ``service``,
``request_id`` (the correlation id of the request being served, when any), any ``extra``
fields, and for errors ``exc_type``, ``exc_message`` and ``traceback``. Every line passes
through :func:`guilde_core.redaction.redact` before it is written.
"""

from __future__ import annotations

import json
import logging
import traceback
import uuid
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from guilde_core.correlation import get_correlation_id
from guilde_core.errors import CircuitOpenError, GuildeError
from guilde_core.redaction import redact

__all__ = ["JsonLinesFormatter", "SandboxLog", "describe_error"]

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def describe_error(exc: BaseException) -> str:
    """``Type: message``, saying "connection refused" when the cause chain says so (errno 111,
    which redis-py reports as "Error 111 connecting …"), and for an open circuit what this
    call's own attempts met before the breaker refused the next one."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    met = exc.__cause__
    if isinstance(exc, CircuitOpenError) and isinstance(met, GuildeError):
        text += f" (after {type(met).__name__}: {met})"
    seen: BaseException | None = exc
    refused = False
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError) or "Error 111 " in str(seen):
            refused = True
        seen = seen.__cause__ or seen.__context__
    if refused and "refused" not in text.lower():
        text += " (connection refused)"
    return text[:400]


def _logger_name(name: str) -> str:
    parts = name.split(".", 2)  # sandbox.<instance>.<name>
    return f"sandbox.{parts[2]}" if len(parts) == 3 else "sandbox"


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per record."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": _logger_name(record.name),
            "message": record.getMessage(),
            "service": self.service,
        }
        cid = getattr(record, "request_id", None) or get_correlation_id()
        if cid:
            data["request_id"] = cid
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in data and not key.startswith("_"):
                data[key] = value
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            data["exc_type"] = type(exc).__name__
            data["exc_message"] = str(exc)
            data["traceback"] = "".join(traceback.format_exception(exc)).rstrip()
        return json.dumps(redact(data), default=str)


class _Counter(logging.Handler):
    def __init__(self, sink: SandboxLog) -> None:
        super().__init__()
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink._count(record)


class SandboxLog:
    """The sandbox's loggers (``sandbox.<id>.<name>``) writing to one JSON-lines file."""

    def __init__(self, logs_dir: Path, service: str) -> None:
        logs_dir.mkdir(parents=True, exist_ok=True)
        self.path = logs_dir / "sandbox.jsonl"
        self._root_name = f"sandbox.{uuid.uuid4().hex[:8]}"
        self._root = logging.getLogger(self._root_name)
        self._root.setLevel(logging.INFO)
        self._root.propagate = False
        self._handler = logging.FileHandler(self.path, encoding="utf-8")
        self._handler.setFormatter(JsonLinesFormatter(service))
        self._root.addHandler(self._handler)
        self._root.addHandler(_Counter(self))
        self.counts: dict[str, int] = {}
        self.recent: deque[float] = deque(maxlen=20_000)
        self.on_line: list[Any] = []

    def logger(self, name: str) -> logging.Logger:
        return logging.getLogger(f"{self._root_name}.{name}")

    def _count(self, record: logging.LogRecord) -> None:
        level = record.levelname.lower()
        self.counts[level] = self.counts.get(level, 0) + 1
        self.recent.append(record.created)
        for callback in self.on_line:
            callback(level)

    def lines_per_second(self, window: float = 2.0) -> float:
        """Recent logging rate over the last ``window`` seconds."""
        now = datetime.now(UTC).timestamp()
        count = 0
        for ts in reversed(self.recent):
            if now - ts > window:
                break
            count += 1
        return count / window

    def close(self) -> None:
        self._root.removeHandler(self._handler)
        self._handler.close()
        for handler in list(self._root.handlers):
            self._root.removeHandler(handler)
