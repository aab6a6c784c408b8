"""Parsing log lines into :class:`LogEntry` and joining multi-line tracebacks.

Recognised formats, tried in order:

* JSON lines (logfire, structlog, uvicorn/json-logging, pino): ``timestamp|ts|time|@timestamp``,
  ``level|levelname|severity`` (numeric pino levels too), ``message|msg|event``,
  ``logger|name``, ``correlation_id|request_id|trace_id``;
* uvicorn access lines: ``INFO:     127.0.0.1:5000 - "GET / HTTP/1.1" 200 OK``;
* nginx/Apache common and combined: ``host - user [10/Oct/2000:13:55:36 -0700] "GET / …" 200 …``;
* Python logging: ``2024-01-02 03:04:05,678 - name - LEVEL - msg``,
  ``2024-01-02 03:04:05,678 LEVEL name: msg``, ``[ts] [LEVEL] msg``, ``LEVEL:name:msg``;
* anything else is kept as ``raw`` text with a best-effort timestamp and level.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from guilde_core.redaction import may_hold_secret
from servers.logs.models import Level, LogEntry, LogFormat

__all__ = [
    "LEVELS",
    "MAX_LINE",
    "EntryJoiner",
    "level_at_least",
    "new_entry",
    "normalise_level",
    "parse_line",
    "parse_timestamp",
]

#: longest line text kept (bytes); the rest is cut and the entry marked ``truncated``
MAX_LINE = 16 * 1024

LEVELS: tuple[Level, ...] = ("debug", "info", "warning", "error", "critical")
_RANK = {name: i for i, name in enumerate(LEVELS)}
_ALIASES: dict[str, Level] = {
    "trace": "debug",
    "debug": "debug",
    "dbg": "debug",
    "info": "info",
    "information": "info",
    "notice": "info",
    "warn": "warning",
    "warning": "warning",
    "err": "error",
    "error": "error",
    "exception": "error",
    "fatal": "critical",
    "critical": "critical",
    "crit": "critical",
    "alert": "critical",
    "emerg": "critical",
    "emergency": "critical",
}


def normalise_level(value: Any) -> Level | None:
    """``"WARN"`` → ``"warning"``; pino numbers (30 → info); ``None`` when unknown."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        number = int(value)
        if number >= 60:
            return "critical"
        if number >= 50:
            return "error"
        if number >= 40:
            return "warning"
        if number >= 30:
            return "info"
        return "debug"
    return _ALIASES.get(str(value).strip().lower())


def level_at_least(level: Level | None, minimum: Level | None) -> bool:
    if minimum is None:
        return True
    if level is None:
        return False
    return _RANK[level] >= _RANK[minimum]


_ISO = re.compile(
    r"(?P<d>\d{4}-\d{2}-\d{2})[T ](?P<t>\d{2}:\d{2}:\d{2})(?:[.,](?P<f>\d{1,9}))?"
    r"\s?(?P<z>Z|[+-]\d{2}:?\d{2}|UTC)?"
)
_CLF_TS = re.compile(r"(\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})")


def _iso_match(m: re.Match[str]) -> datetime | None:
    frac = (m.group("f") or "0")[:6].ljust(6, "0")
    zone = m.group("z")
    try:
        ts = datetime.fromisoformat(f"{m.group('d')}T{m.group('t')}.{frac}")
    except ValueError:
        return None
    if zone and zone not in ("Z", "UTC"):
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        from datetime import timedelta, timezone

        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
        return ts.replace(tzinfo=timezone(sign * offset)).astimezone(UTC)
    return ts.replace(tzinfo=UTC)


def parse_timestamp(value: Any) -> datetime | None:
    """ISO text, CLF text or epoch seconds/milliseconds → aware UTC datetime."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        seconds = float(value)
        if seconds > 1e14:  # microseconds
            seconds /= 1e6
        elif seconds > 1e11:  # milliseconds
            seconds /= 1e3
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    text = str(value)
    if len(text) >= 19 and text[10] in "T " and text[4] == "-":  # plain ISO 8601: C parser
        try:
            ts = datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    m = _ISO.search(text)
    if m:
        return _iso_match(m)
    c = _CLF_TS.search(text)
    if c:
        try:
            return datetime.strptime(c.group(1), "%d/%b/%Y:%H:%M:%S %z").astimezone(UTC)
        except ValueError:
            return None
    return None


_TS_KEYS = ("timestamp", "ts", "time", "@timestamp", "asctime", "datetime", "date", "start_time")
_LEVEL_KEYS = (
    "level", "levelname", "severity", "log.level", "lvl", "loglevel", "level_name", "log_level"
)  # fmt: skip
_MSG_KEYS = ("message", "msg", "event", "span_name", "text", "log")
_LOGGER_KEYS = ("logger", "name", "logger_name", "log.logger", "module")
_USED_KEYS = frozenset(_TS_KEYS + _LEVEL_KEYS + _MSG_KEYS + _LOGGER_KEYS)
_CID_KEYS = (
    "correlation_id",
    "request_id",
    "x_request_id",
    "x-request-id",
    "requestId",
    "correlationId",
    "trace_id",
    "cid",
)

_UVICORN_ACCESS = re.compile(
    r'^(?P<level>[A-Z]+):\s+(?P<client>\S+) - "(?P<method>[A-Z]+) (?P<path>\S+) '
    r'(?P<proto>[^"]+)" (?P<status>\d{3})'
)
_COMBINED = re.compile(
    r'^(?P<host>\S+) \S+ (?P<user>\S+) \[(?P<ts>[^\]]+)\] "(?P<request>[^"]*)" '
    r'(?P<status>\d{3}) (?P<size>\S+)(?: "(?P<referer>[^"]*)" "(?P<agent>[^"]*)")?'
)
_PY_DASH = re.compile(
    r"^(?P<ts>\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?\S*)\s+-\s+(?P<name>\S+)\s+-\s+"
    r"(?P<level>[A-Za-z]+)\s+-\s+(?P<msg>.*)$"
)
_PY_SPACE = re.compile(
    r"^\[?(?P<ts>\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)\]?"
    r"\s+\[?(?P<level>DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL|FATAL)\]?\s+"
    r"(?:(?P<name>[\w.\-]+):\s)?(?P<msg>.*)$",
    re.IGNORECASE,
)
_PY_BASIC = re.compile(
    r"^(?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL):(?P<name>[\w.\-]*):(?P<msg>.*)$"
)
_UVICORN_PLAIN = re.compile(r"^(?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL):\s+(?P<msg>.*)$")
_LEVEL_WORD = re.compile(r"\b(DEBUG|INFO|WARN|WARNING|ERROR|CRITICAL|FATAL|EXCEPTION)\b")
_CID_TEXT = re.compile(
    r"(?i)\b(?:correlation[_\-]?id|request[_\-]?id|x-request-id|trace[_\-]?id|cid)"
    r"[\"']?\s*[=:]\s*[\"']?(?P<cid>[A-Za-z0-9][\w\-.]{3,127})"
)


def _first(data: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = data.get(key)
        if value is not None and value != "":
            return value
        if key in _DOTTED:
            inner = data.get(_DOTTED[key][0])
            if isinstance(inner, dict) and inner.get(_DOTTED[key][1]) not in (None, ""):
                return inner[_DOTTED[key][1]]
    return None


_DOTTED = {
    key: (key.partition(".")[0], key.partition(".")[2])
    for key in _TS_KEYS + _LEVEL_KEYS + _MSG_KEYS + _LOGGER_KEYS + _CID_KEYS
    if "." in key
}


def _status_level(status: int) -> Level:
    if status >= 500:
        return "error"
    if status >= 400:
        return "warning"
    return "info"


def _text_cid(text: str) -> str | None:
    m = _CID_TEXT.search(text)
    return m.group("cid") if m else None


_new = object.__new__
_set = object.__setattr__
_SET_BY_PARSER = frozenset(
    ("source", "line", "ts", "level", "logger", "message", "format", "correlation_id", "fields")
)


def new_entry(
    source: str,
    line: int | None,
    ts: datetime | None,
    level: Level | None,
    logger: str | None,
    message: str,
    fmt: LogFormat,
    correlation_id: str | None,
    fields: dict[str, Any],
) -> LogEntry:
    """A :class:`LogEntry` built without validation (4x cheaper than ``LogEntry(...)``):
    the parser already gives every field a value of its declared type (``Level`` from
    :func:`normalise_level`, aware ``datetime`` from :func:`parse_timestamp`, ``str``,
    a ``dict`` made for this entry), so validating it again would only cost time."""
    entry = _new(LogEntry)
    _set(
        entry,
        "__dict__",
        {
            "source": source,
            "line": line,
            "ts": ts,
            "level": level,
            "logger": logger,
            "message": message,
            "format": fmt,
            "correlation_id": correlation_id,
            "fields": fields,
            "context_before": [],
            "context_after": [],
            "truncated": False,
        },
    )
    _set(entry, "__pydantic_fields_set__", set(_SET_BY_PARSER))
    _set(entry, "__pydantic_extra__", None)
    _set(entry, "__pydantic_private__", None)
    return entry


def _parse_json(text: str, source: str, line: int | None) -> LogEntry | None:
    """A JSON object line → an entry (orjson first: the tail of a JSON log is mostly this)."""
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        try:  # what orjson refuses but Python's json reads (NaN, huge integers)
            data = json.loads(text)
        except ValueError:
            return None
    if not isinstance(data, dict):
        return None
    message = _first(data, _MSG_KEYS)
    level = normalise_level(_first(data, _LEVEL_KEYS))
    status = data.get("status_code") or data.get("status")
    if level is None and isinstance(status, int):
        level = _status_level(status)
    logger = _first(data, _LOGGER_KEYS)
    cid = _first(data, _CID_KEYS)
    extra = {k: v for k, v in data.items() if k not in _USED_KEYS}
    return new_entry(
        source,
        line,
        parse_timestamp(_first(data, _TS_KEYS)),
        level,
        str(logger) if logger is not None else None,
        str(message) if message is not None else text,
        "json",
        str(cid) if cid is not None else None,
        extra,
    )


def parse_line(text: str, source: str = "", line: int | None = None) -> LogEntry:
    """One physical line → an entry (``raw`` when no format matches)."""
    stripped = text.strip()
    if stripped.startswith("{") and stripped.endswith("}"):
        entry = _parse_json(stripped, source, line)
        if entry is not None:
            return entry
    fmt: LogFormat
    fields: dict[str, Any] = {}
    ts: datetime | None = None
    level: Level | None = None
    logger: str | None = None
    message = text
    if m := _UVICORN_ACCESS.match(text):
        fmt = "uvicorn_access"
        status = int(m.group("status"))
        level = _status_level(status)
        fields = {
            "client": m.group("client"),
            "method": m.group("method"),
            "path": m.group("path"),
            "status": status,
        }
        logger = "uvicorn.access"
        ts = parse_timestamp(text)
    elif m := _COMBINED.match(text):
        fmt = "combined"
        status = int(m.group("status"))
        level = _status_level(status)
        ts = parse_timestamp(m.group("ts"))
        request = m.group("request").split(" ")
        fields = {
            "client": m.group("host"),
            "method": request[0] if request else None,
            "path": request[1] if len(request) > 1 else None,
            "status": status,
            "size": m.group("size"),
        }
        if m.group("agent") is not None:
            fields["referer"] = m.group("referer")
            fields["user_agent"] = m.group("agent")
    elif (m := _PY_DASH.match(text)) or (m := _PY_SPACE.match(text)):
        fmt = "python"
        ts = parse_timestamp(m.group("ts"))
        level = normalise_level(m.group("level"))
        logger = m.group("name")
        message = m.group("msg")
    elif m := _PY_BASIC.match(text):
        fmt = "python"
        level = normalise_level(m.group("level"))
        logger = m.group("name") or None
        message = m.group("msg")
        ts = parse_timestamp(text)
    elif m := _UVICORN_PLAIN.match(text):
        fmt = "python"
        level = normalise_level(m.group("level"))
        logger = "uvicorn"
        message = m.group("msg")
        ts = parse_timestamp(text)
    else:
        fmt = "raw"
        ts = parse_timestamp(text)
        w = _LEVEL_WORD.search(text[:200])
        level = normalise_level(w.group(1)) if w else None
    return new_entry(source, line, ts, level, logger, message, fmt, _text_cid(text), fields)


_TB_START = re.compile(
    r"^(Traceback \(most recent call last\):|During handling of the above exception|"
    r"The above exception was the direct cause|\s*\+?\s*Exception Group Traceback)"
)
_EXC_LINE = re.compile(
    r"^(?P<exc>[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning|Group|Fault))(?::|$)"
)
_EXC_LINE_LOOSE = re.compile(r"^(?P<exc>[A-Za-z_][\w.]*)(?::\s|$)")


@dataclass
class EntryJoiner:
    """Feed physical lines in order; get back complete entries (tracebacks joined).

    With ``screen``, each raw line is checked once with
    :func:`~guilde_core.redaction.may_hold_secret`, and :attr:`suspect` says, after
    :meth:`feed` or :meth:`flush` returned an entry, whether any of its lines (or the
    source name) may hold a secret: the entries that are not suspect need no redaction.
    Without ``screen`` every entry is suspect.
    """

    source: str = ""
    screen: bool = False
    _pending: LogEntry | None = None
    _mode: str = "none"  # none | traceback | after_exception
    _lines: list[str] = field(default_factory=list)
    _pending_suspect: bool = True
    #: the entry last returned may hold a secret (always True without ``screen``)
    suspect: bool = True

    def __post_init__(self) -> None:
        self._source_suspect = not self.screen or may_hold_secret(self.source)

    def _continues(self, text: str) -> bool:
        if self._pending is None:
            return False
        if _TB_START.match(text):
            self._mode = "traceback"
            return True
        if text[:1] in (" ", "\t") and text.strip():
            if self._mode == "after_exception":
                self._mode = "traceback"
            return True
        if self._mode == "traceback" and (_EXC_LINE.match(text) or _EXC_LINE_LOOSE.match(text)):
            self._mode = "after_exception"
            exc = _EXC_LINE.match(text) or _EXC_LINE_LOOSE.match(text)
            if exc is not None:
                self._pending.fields.setdefault("exception", exc.group("exc"))
            return True
        return False

    def feed(self, text: str, line: int | None = None, truncated: bool = False) -> LogEntry | None:
        """Add one line; returns the previous entry when this line starts a new one."""
        if not text.strip():
            return None
        if self._continues(text):
            assert self._pending is not None
            self._lines.append(text)
            if self.screen and not self._pending_suspect:
                self._pending_suspect = may_hold_secret(text)
            if self._pending.level is None:
                self._pending.level = "error"
            return None
        done = self.flush()
        # an entry that is itself the start of a traceback (printed without a log line
        # before it) continues up to its exception line
        self._mode = "traceback" if _TB_START.match(text) else "none"
        self._pending = parse_line(text, self.source, line)
        self._pending_suspect = self._source_suspect or may_hold_secret(text)
        if truncated:
            self._pending.truncated = truncated
        self._lines = []
        return done

    def flush(self) -> LogEntry | None:
        """The entry being built, if any (call at end of input)."""
        done = self._pending
        if done is not None and self._lines:
            done.message = done.message + "\n" + "\n".join(self._lines)
        self.suspect = self._pending_suspect
        self._pending = None
        self._lines = []
        self._mode = "none"
        self._pending_suspect = True
        return done
