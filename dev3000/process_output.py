"""A supervised process's stdout and stderr as a log source of JSON lines.

Each output line becomes one JSON object in ``<logs dir>/<name>.log`` (rotated by size,
three generations kept) that the logs tools, error groups, the timeline's log follower and
so the agent read like any other log:

* a line that is a JSON object (structlog, pino, uvicorn's JSON …) is kept as it is, with
  ``ts`` added when it has none;
* a text line is parsed by the logs server's parser (Python logging, uvicorn, access
  lines …) for its timestamp, level and logger; a traceback and the lines that continue an
  entry (indented, ``Traceback …``, the exception line) are joined into one entry; a line
  with no level of its own gets one from its shape (``TypeError: …``, ``panic:``,
  ``Warning: …``), else ``info``.

Every entry carries ``stream`` (stdout/stderr) and ``process``, and is redacted before it is
written. An entry waits for the next line (or ``linger`` seconds of quiet) to know whether a
traceback continues it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from guilde_core.redaction import redact
from guilde_core.rotating import RotatingFile
from servers.logs.models import LogEntry
from servers.logs.parse import MAX_LINE, EntryJoiner, normalise_level

__all__ = ["ProcessOutput", "detect_level"]

_ERROR_SHAPE = re.compile(
    r"^\s*(?:Uncaught\s+)?(?:(?:[A-Za-z_][\w.]*(?:Error|Exception)|panic|fatal error|FATAL)\b|"
    r"Traceback \(most recent call last\))"
)
_WARNING_SHAPE = re.compile(r"^\s*(?:\(node:\d+\)\s+)?(?:[\w.]*Warning|warn(?:ing)?)\b[:!\s]", re.I)
_TS_KEYS = ("ts", "timestamp", "time", "@timestamp", "asctime")


def detect_level(text: str, parsed: str | None) -> str:
    """The level of an output entry: its own, else its shape's, else ``info``."""
    if parsed:
        return parsed
    if _ERROR_SHAPE.match(text):
        return "error"
    if _WARNING_SHAPE.match(text):
        return "warning"
    return "info"


class ProcessOutput:
    """Turns the lines of one process's stdout/stderr into JSON-line log entries."""

    def __init__(
        self, path: Path, process: str, *, max_bytes: int = 10 * 2**20, keep: int = 3
    ) -> None:
        self.process = process
        self.file = RotatingFile(path, max_bytes=max_bytes, keep=keep)
        self._joiners = {name: EntryJoiner(source=process) for name in ("stdout", "stderr")}
        self.entries = 0

    @property
    def path(self) -> Path:
        return self.file.path

    def feed(self, raw: bytes, stream: str) -> None:
        """One line of ``stream`` (``stdout`` or ``stderr``)."""
        text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if len(text) > MAX_LINE:
            text = text[:MAX_LINE]
        stripped = text.strip()
        if stripped.startswith("{") and stripped.endswith("}"):
            try:
                data = orjson.loads(stripped)
            except orjson.JSONDecodeError:
                data = None
            if isinstance(data, dict):
                self.flush(stream)
                self._write_json(data, stream)
                return
        done = self._joiners[stream].feed(text)
        if done is not None:
            self._write_entry(done, stream)

    def flush(self, stream: str | None = None) -> None:
        """Write the entry still waiting for continuation lines (of one stream or both)."""
        for name in (stream,) if stream else tuple(self._joiners):
            done = self._joiners[name].flush()
            if done is not None:
                self._write_entry(done, name)

    def close(self) -> None:
        self.flush()
        self.file.close()

    def _write_json(self, data: dict[str, Any], stream: str) -> None:
        if not any(key in data for key in _TS_KEYS):
            data = {"ts": datetime.now(UTC).isoformat(), **data}
        data.setdefault("stream", stream)
        data.setdefault("process", self.process)
        self._emit(data)

    def _write_entry(self, entry: LogEntry, stream: str) -> None:
        level = detect_level(entry.message, normalise_level(entry.level))
        body: dict[str, Any] = {
            "ts": (entry.ts or datetime.now(UTC)).isoformat(),
            "level": level,
            "logger": entry.logger or self.process,
            "message": entry.message,
            "stream": stream,
            "process": self.process,
        }
        if entry.correlation_id:
            body["request_id"] = entry.correlation_id
        for key, value in entry.fields.items():
            body.setdefault(key, value)
        self._emit(body)

    def _emit(self, body: dict[str, Any]) -> None:
        self.entries += 1
        self.file.write(orjson.dumps(redact(body), default=str) + b"\n")
