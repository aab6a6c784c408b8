"""Typed views of dev3000's API payloads, parsed tolerantly.

The console is a client of a possibly newer or older dev3000, so parsing never raises
on an unknown or missing field: it keeps what it understands and the raw payload
beside it. Nothing here does I/O or knows about Textual.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from guilde_core.stack import StackModel


def redact[T](obj: T) -> T:
    """:func:`guilde_core.redaction.redact`, imported on first use (it loads pydantic, which
    the first paint does not need)."""
    from guilde_core.redaction import redact as _redact

    return _redact(obj)


def redact_text(text: str) -> str:
    """:func:`guilde_core.redaction.redact_text`, imported on first use."""
    from guilde_core.redaction import redact_text as _redact_text

    return _redact_text(text)


__all__ = [
    "LEVELS",
    "CheckResult",
    "CircuitAction",
    "CircuitInfo",
    "CircuitState",
    "Event",
    "HealthReport",
    "JsonObject",
    "JsonValue",
    "LogLine",
    "Target",
    "level_rank",
    "normalise_status",
    "parse_circuits",
    "parse_deep_health",
    "parse_event",
    "parse_items",
    "parse_log_line",
    "parse_targets",
    "parse_topology",
    "parse_ts",
    "to_float",
]

#: a decoded JSON document (what dev3000 and agent-web send)
type JsonValue = str | int | float | bool | list[JsonValue] | dict[str, JsonValue] | None
type JsonObject = dict[str, JsonValue]

Status = Literal["healthy", "degraded", "unhealthy", "unknown"]
LEVELS: tuple[str, ...] = ("debug", "info", "warning", "error", "critical")
_LEVEL_ALIASES = {"warn": "warning", "err": "error", "fatal": "critical", "trace": "debug"}
_STATUS_ALIASES = {
    "ok": "healthy",
    "up": "healthy",
    "pass": "healthy",
    "warn": "degraded",
    "warning": "degraded",
    "down": "unhealthy",
    "fail": "unhealthy",
    "error": "unhealthy",
}


def normalise_status(value: object) -> Status:
    """``healthy | degraded | unhealthy``, or ``unknown`` for anything else."""
    text = str(value or "").strip().lower()
    text = _STATUS_ALIASES.get(text, text)
    if text in ("healthy", "degraded", "unhealthy"):
        return text  # type: ignore[return-value]
    return "unknown"


def level_rank(level: str) -> int:
    """Position of ``level`` in :data:`LEVELS` (unknown levels count as info)."""
    name = _LEVEL_ALIASES.get(level.lower(), level.lower())
    try:
        return LEVELS.index(name)
    except ValueError:
        return 1


def parse_ts(value: object) -> datetime | None:
    """An aware UTC datetime from ISO text or epoch seconds/milliseconds, else ``None``."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if value > 1e11 else value
        return datetime.fromtimestamp(seconds, UTC)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def to_float(value: object) -> float | None:
    """A number from a JSON number or numeric text, else ``None``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def parse_items(payload: object, *keys: str) -> list[JsonObject]:
    """The list of objects in ``payload``: a bare list or under ``items`` / one of ``keys``."""
    if isinstance(payload, list):
        return [item for item in payload if isinstance(item, dict)]
    if isinstance(payload, dict):
        for key in (*keys, "items", "data", "results"):
            value = payload.get(key)
            if isinstance(value, list):
                return [item for item in value if isinstance(item, dict)]
            if isinstance(value, dict) and key in keys:
                return [
                    {"name": name, **item} if isinstance(item, dict) else {"name": name}
                    for name, item in value.items()
                ]
    return []


# ---------------------------------------------------------------------------- health


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check of the deep-health report (``group/name`` for nested groups)."""

    name: str
    status: Status
    latency_ms: float | None = None
    error: str | None = None
    critical: bool | None = None
    observed_at: datetime | None = None
    details: JsonObject = field(default_factory=dict, compare=False)
    #: the check whose own report showed this one (``targets/backend`` for
    #: ``targets/backend/database``), None at the top
    parent: str | None = None
    #: why it is not healthy: the cause's summary (the first reason that is not a
    #: consequence of another), else the error; empty when healthy
    why: str = ""
    #: never answered and not critical: shown greyed, not counted
    absent: bool = False

    @property
    def group(self) -> str:
        return self.name.split("/", 1)[0] if "/" in self.name else ""

    @property
    def depth(self) -> int:
        """How deep in the targets' reports (0: a check of the report itself)."""
        return self.name.count("/") - 1 if self.parent is not None else 0

    @property
    def label(self) -> str:
        """The last part of the name (``database`` of ``targets/backend/database``)."""
        return self.name.rsplit("/", 1)[-1] if self.parent is not None else self.name


@dataclass(frozen=True, slots=True)
class HealthReport:
    """dev3000's deep-health report, flattened into a list of checks."""

    status: Status
    checks: tuple[CheckResult, ...] = ()
    timestamp: datetime | None = None
    service: str = ""
    version: str = ""
    environment: str = ""
    uptime_seconds: float | None = None
    metrics: JsonObject = field(default_factory=dict)
    diagnostics: JsonObject = field(default_factory=dict)

    @property
    def error_rate_percent(self) -> float | None:
        return to_float(self.metrics.get("error_rate_percent"))

    def check(self, name: str) -> CheckResult | None:
        for check in self.checks:
            if check.name == name:
                return check
        return None


_CHECK_KEYS = ("status", "latency_ms", "error", "critical", "observed_at", "details", "children")


def _why(body: JsonObject, error: str | None) -> str:
    """The cause of a check from its ``reasons`` (the first that is not a consequence),
    else its error or warning — on one line (a table cell)."""
    return " ".join(_cause(body, error).split())


def _cause(body: JsonObject, error: str | None) -> str:
    reasons = [r for r in body.get("reasons") or [] if isinstance(r, dict)]  # type: ignore[union-attr]
    cause = next((r for r in reasons if not r.get("consequence")), reasons[0] if reasons else None)
    if cause is not None and cause.get("summary"):
        return redact_text(str(cause["summary"]))
    if cause is not None and cause.get("category"):  # a summary without details
        return str(cause["category"]).replace("_", " ")
    warning = body.get("warning")
    return error or (redact_text(str(warning)) if warning else "")


def _check_from(name: str, body: JsonObject, parent: str | None = None) -> CheckResult:
    details = body.get("details")
    extra = {k: v for k, v in body.items() if k not in _CHECK_KEYS}
    merged: JsonObject = {**extra, **(details if isinstance(details, dict) else {})}
    error = body.get("error")
    critical = body.get("critical")
    status = normalise_status(body.get("status"))
    text = redact_text(str(error)) if error else None
    return CheckResult(
        name=name,
        status=status,
        latency_ms=to_float(body.get("latency_ms")),
        error=text,
        critical=critical if isinstance(critical, bool) else None,
        observed_at=parse_ts(body.get("observed_at")),
        details=redact(merged),
        parent=parent,
        why="" if status == "healthy" else _why(body, text),
        absent=body.get("absent") is True,
    )


def _with_children(name: str, body: JsonObject, parent: str | None = None) -> list[CheckResult]:
    """A check and, depth first, what its own report showed (``children``)."""
    out = [_check_from(name, body, parent)]
    children = body.get("children")
    if isinstance(children, dict):
        for sub, sub_body in children.items():
            if isinstance(sub_body, dict):
                out += _with_children(f"{name}/{sub}", sub_body, name)
    return out


def parse_deep_health(payload: object) -> HealthReport:
    """Parse ``/api/v1/health/deep``, nested groups flattened as ``a/b`` and each target's
    children after it as ``targets/<target>/<child>`` (depth first)."""
    if not isinstance(payload, dict):
        return HealthReport(status="unknown")
    checks: list[CheckResult] = []
    raw_checks = payload.get("checks")
    if isinstance(raw_checks, list):
        for item in raw_checks:
            if isinstance(item, dict):
                checks.append(_check_from(str(item.get("name", "?")), item))
    elif isinstance(raw_checks, dict):
        for name, body in raw_checks.items():
            if not isinstance(body, dict):
                continue
            if "status" in body:
                checks += _with_children(str(name), body)
                continue
            for sub, sub_body in body.items():  # a group such as external_apis, targets
                if isinstance(sub_body, dict):
                    checks += _with_children(f"{name}/{sub}", sub_body)
    metrics = payload.get("metrics")
    diagnostics = payload.get("diagnostics")
    return HealthReport(
        status=normalise_status(payload.get("status")),
        checks=tuple(checks),
        timestamp=parse_ts(payload.get("timestamp")),
        service=str(payload.get("service") or ""),
        version=str(payload.get("version") or ""),
        environment=str(payload.get("environment") or ""),
        uptime_seconds=to_float(payload.get("uptime_seconds")),
        metrics=metrics if isinstance(metrics, dict) else {},
        diagnostics=diagnostics if isinstance(diagnostics, dict) else {},
    )


# ---------------------------------------------------------------------------- topology


def parse_topology(payload: object) -> StackModel | None:
    """The stack model of ``GET /api/v1/diag/topology`` (full or compact), redacted.

    Tolerant of a newer dev3000: fields this console does not know are dropped before
    validating. ``None`` when the payload is not a model this console can read (the
    screens then fall back to the deep report)."""
    from pydantic import ValidationError

    from guilde_core.stack import Edge, Node, Reason, StackModel

    if not isinstance(payload, dict):
        return None
    payload = redact(payload)

    def known(item: object, fields: Iterable[str]) -> dict[str, JsonValue] | None:
        return {k: v for k, v in item.items() if k in fields} if isinstance(item, dict) else None

    nodes: list[dict[str, JsonValue]] = []
    raw_nodes = payload.get("nodes")
    for raw in raw_nodes if isinstance(raw_nodes, list) else []:
        node = known(raw, Node.model_fields)
        if node is None:
            continue
        raw_reasons = node.get("reasons")
        reasons = raw_reasons if isinstance(raw_reasons, list) else []
        node["reasons"] = [r for r in (known(r, Reason.model_fields) for r in reasons) if r]
        nodes.append(node)
    raw_edges = payload.get("edges")
    edges = [known(e, Edge.model_fields) for e in raw_edges] if isinstance(raw_edges, list) else []
    notes = payload.get("notes")
    try:
        return StackModel.model_validate(
            {
                "status": payload.get("status"),
                "observed_at": payload.get("observed_at"),
                "nodes": nodes,
                "edges": [e for e in edges if e],
                "notes": notes if isinstance(notes, list) else [],
            }
        )
    except ValidationError:
        return None


# ---------------------------------------------------------------------------- targets


@dataclass(frozen=True, slots=True)
class Target:
    """A registered target (a service dev3000 checks)."""

    name: str
    url: str = ""
    kind: str = ""
    critical: bool | None = None
    status: Status = "unknown"
    latency_ms: float | None = None
    raw: JsonObject = field(default_factory=dict, compare=False)


def parse_targets(payload: object) -> list[Target]:
    targets: list[Target] = []
    for item in parse_items(payload, "targets"):
        last = item.get("last_result") or item.get("last_check") or item.get("health") or {}
        last = last if isinstance(last, dict) else {}
        critical = item.get("critical")
        targets.append(
            Target(
                name=str(item.get("name") or item.get("id") or "?"),
                url=redact_text(str(item.get("url") or item.get("address") or "")),
                kind=str(item.get("kind") or item.get("type") or ""),
                critical=critical if isinstance(critical, bool) else None,
                status=normalise_status(item.get("status") or last.get("status")),
                latency_ms=to_float(item.get("latency_ms") or last.get("latency_ms")),
                raw=redact(item),
            )
        )
    return targets


# ---------------------------------------------------------------------------- circuits

CircuitState = Literal["closed", "open", "half-open", "disabled", "unknown"]
#: what an operator may do to a breaker (``POST /api/v1/diag/circuits/{name}/{action}``)
CircuitAction = Literal["open", "close", "reset"]


@dataclass(frozen=True, slots=True)
class CircuitInfo:
    """One circuit breaker as ``/api/v1/diag/circuits`` reports it."""

    name: str
    state: CircuitState
    failure_count: int = 0
    last_failure: datetime | None = None
    last_error: str | None = None
    retry_at: datetime | None = None
    reason: str | None = None
    raw: JsonObject = field(default_factory=dict, compare=False)

    def seconds_to_half_open(self, now: datetime) -> float | None:
        """Seconds until an open breaker lets a trial call through (``None`` if not open)."""
        if self.state != "open" or self.retry_at is None:
            return None
        return max(0.0, (self.retry_at - now).total_seconds())


def _state(value: object) -> CircuitState:
    text = str(value or "").strip().lower().replace("_", "-")
    if text in ("closed", "open", "half-open", "disabled"):
        return text  # type: ignore[return-value]
    if text == "halfopen":
        return "half-open"
    return "unknown"


def _first(item: JsonObject, *keys: str) -> JsonValue:
    for key in keys:
        if item.get(key) is not None:
            return item[key]
    return None


def parse_circuits(payload: object) -> list[CircuitInfo]:
    circuits: list[CircuitInfo] = []
    for item in parse_items(payload, "circuits", "breakers"):
        failures = to_float(_first(item, "failure_count", "failures", "fail_counter")) or 0.0
        error = _first(item, "last_error", "last_failure_reason", "last_exception")
        reason = _first(item, "reason", "forced_reason", "control_reason")
        retry_at = parse_ts(_first(item, "retry_at", "half_open_at", "next_attempt_at"))
        if retry_at is None:
            remaining = to_float(
                _first(item, "seconds_until_half_open", "seconds_to_half_open", "retry_after")
            )
            if remaining is not None:  # whole seconds: an unchanged breaker compares equal
                retry_at = datetime.now(UTC).replace(microsecond=0) + timedelta(
                    seconds=round(remaining)
                )
        if item.get("forced") and not reason:
            reason = "forced by an operator"
        state = "disabled" if item.get("disabled") else _state(item.get("state"))
        circuits.append(
            CircuitInfo(
                name=str(item.get("name") or "?"),
                state=state,
                failure_count=int(failures),
                last_failure=parse_ts(_first(item, "last_failure", "last_failure_at")),
                last_error=redact_text(str(error)) if error else None,
                retry_at=retry_at,
                reason=redact_text(str(reason)) if reason else None,
                raw=redact(item),
            )
        )
    return sorted(circuits, key=lambda c: c.name)


# ---------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class Event:
    """A timeline event: ``{id, ts, source, kind, severity, subject, summary,
    data, correlation_id?}``; ``kind == "gap"`` marks events the stream had to drop."""

    id: str
    ts: datetime | None
    source: str
    kind: str
    severity: str
    subject: str
    summary: str
    data: JsonObject = field(default_factory=dict, compare=False)
    correlation_id: str | None = None


def parse_event(item: object) -> Event | None:
    if not isinstance(item, dict):
        return None
    data = item.get("data")
    return Event(
        id=str(item.get("id") or ""),
        ts=parse_ts(item.get("ts") or item.get("timestamp")),
        source=str(item.get("source") or ""),
        kind=str(item.get("kind") or item.get("type") or "notice"),
        severity=str(item.get("severity") or "info").lower(),
        subject=str(item.get("subject") or ""),
        summary=redact_text(str(item.get("summary") or item.get("message") or "")),
        data=redact(data) if isinstance(data, dict) else {},
        correlation_id=str(item["correlation_id"]) if item.get("correlation_id") else None,
    )


# ---------------------------------------------------------------------------- logs

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(slots=True)
class LogLine:
    """One log line from a source; ``text`` is the line as shown (redacted)."""

    ts: datetime
    source: str
    level: str
    text: str
    correlation_id: str | None = None
    seq: int = 0
    rank: int = -1
    rows: int = 0
    _json: JsonObject | None = None
    _json_parsed: bool = False

    def __post_init__(self) -> None:
        if self.rank < 0:
            self.rank = level_rank(self.level)

    @property
    def key(self) -> tuple[datetime, int]:
        """Sort key of the merged view: time, then arrival order."""
        return (self.ts, self.seq)

    @property
    def json(self) -> JsonObject | None:
        """The line parsed as JSON (``None`` if it is not a JSON object)."""
        if not self._json_parsed:
            self._json_parsed = True
            stripped = self.text.lstrip()
            if stripped.startswith("{"):
                try:
                    value = json.loads(stripped)
                except ValueError:
                    value = None
                self._json = value if isinstance(value, dict) else None
        return self._json

    def pretty(self) -> list[str]:
        """The line as indented JSON when it is JSON, else the line itself."""
        value = self.json
        if value is None:
            return [self.text]
        return json.dumps(value, indent=2, ensure_ascii=False, default=str).splitlines()

    def pretty_rows(self) -> int:
        """How many screen rows :meth:`pretty` takes (cached)."""
        if self.rows == 0:
            self.rows = len(self.pretty()) if self.json is not None else 1
        return self.rows


def parse_log_line(item: object, *, seq: int = 0, source: str = "") -> LogLine | None:
    """A :class:`LogLine` from a search result item or a raw JSON-lines record."""
    if isinstance(item, str):
        return LogLine(ts=_EPOCH, source=source, level="info", text=redact_text(item), seq=seq)
    if not isinstance(item, dict):
        return None
    raw = item.get("raw") or item.get("line")
    message = _first(item, "message", "msg", "text", "event")
    text = str(raw) if isinstance(raw, str) else str(message if message is not None else item)
    fields = item.get("fields")
    correlation = _first(item, "correlation_id", "request_id", "trace_id")
    if correlation is None and isinstance(fields, dict):
        correlation = _first(fields, "correlation_id", "request_id")
    line = LogLine(
        ts=parse_ts(_first(item, "ts", "timestamp", "time")) or _EPOCH,
        source=str(item.get("source") or source),
        level=str(item.get("level") or item.get("severity") or "info").lower(),
        text=redact_text(text),
        correlation_id=str(correlation) if correlation else None,
        seq=seq,
    )
    if item.get("format") == "json" and isinstance(fields, dict) and line.json is None:
        # a structured record: pretty-printing shows its fields, not just the message
        line._json = redact({"message": line.text, **fields})
    return line
