"""The agent's answers as the console sees them: typed, parsed tolerantly.

The Agent screen gets its diagnosis either as JSON from agent-web (possibly another
version) or from the agent running in the console's own process; both become one
:class:`Diagnosis` here, so the screen and its Markdown know one shape. Missing or
unknown fields never raise. Nothing here does I/O or knows about Textual.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from console.models import JsonObject, JsonValue, to_float

__all__ = [
    "Action",
    "AgentEvent",
    "Approval",
    "ApprovalRequest",
    "Approver",
    "Diagnosis",
    "Evidence",
    "Finding",
    "ProgressSink",
    "RootCause",
    "parse_diagnosis",
]

#: a progress event of a run (``{"type": "phase" | "tool" | "finding" | …, …}``)
type AgentEvent = Mapping[str, object]
#: where the progress events of a run go, as they happen
type ProgressSink = Callable[[AgentEvent], None]


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """A control action the agent proposes and waits on a human for."""

    tool: str
    arguments: JsonObject = field(default_factory=dict)

    @classmethod
    def parse(cls, payload: object) -> ApprovalRequest:
        body = payload if isinstance(payload, Mapping) else {}
        arguments = body.get("arguments")
        return cls(
            tool=str(body.get("tool") or "?"),
            arguments=dict(arguments) if isinstance(arguments, dict) else {},
        )


@dataclass(frozen=True, slots=True)
class Approval:
    """A human's answer to an :class:`ApprovalRequest`."""

    approved: bool
    reason: str


#: asks a human about a proposed control action
type Approver = Callable[[ApprovalRequest], Awaitable[Approval]]


@dataclass(frozen=True, slots=True)
class RootCause:
    component: str = ""
    category: str = ""
    summary: str = ""
    confidence: float = 0.0
    evidence_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Finding:
    title: str = ""
    severity: str = ""
    component: str = ""
    category: str = ""
    evidence_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Evidence:
    id: str = ""
    tool: str = ""
    excerpt: str = ""


@dataclass(frozen=True, slots=True)
class Action:
    """A control action of the run and what became of it."""

    tool: str = ""
    status: str = ""


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """One answer of the agent (the fields the console shows)."""

    question: str = ""
    status: str = ""
    mode: str = ""
    provider: str | None = None
    tool_calls: int = 0
    duration_ms: float = 0.0
    root_cause: RootCause = field(default_factory=RootCause)
    findings: tuple[Finding, ...] = ()
    evidence: tuple[Evidence, ...] = ()
    recommendations: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    actions: tuple[Action, ...] = ()
    session_id: str | None = None


def _object(value: object) -> JsonObject:
    return value if isinstance(value, dict) else {}


def _objects(value: object) -> list[JsonObject]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _texts(value: JsonValue) -> tuple[str, ...]:
    return tuple(str(item) for item in value) if isinstance(value, list) else ()


def _text(body: JsonObject, key: str) -> str:
    value = body.get(key)
    return "" if value is None else str(value)


def parse_diagnosis(payload: object) -> Diagnosis:
    """A :class:`Diagnosis` from agent-web's JSON (or the agent model's ``model_dump``)."""
    body = _object(payload)
    root = _object(body.get("root_cause"))
    provider = body.get("provider")
    session = body.get("session_id")
    return Diagnosis(
        question=_text(body, "question"),
        status=_text(body, "status"),
        mode=_text(body, "mode"),
        provider=str(provider) if provider else None,
        tool_calls=int(to_float(body.get("tool_calls")) or 0),
        duration_ms=to_float(body.get("duration_ms")) or 0.0,
        root_cause=RootCause(
            component=_text(root, "component"),
            category=_text(root, "category"),
            summary=_text(root, "summary"),
            confidence=to_float(root.get("confidence")) or 0.0,
            evidence_ids=_texts(root.get("evidence_ids")),
        ),
        findings=tuple(
            Finding(
                title=_text(item, "title"),
                severity=_text(item, "severity"),
                component=_text(item, "component"),
                category=_text(item, "category"),
                evidence_ids=_texts(item.get("evidence_ids")),
            )
            for item in _objects(body.get("findings"))
        ),
        evidence=tuple(
            Evidence(id=_text(item, "id"), tool=_text(item, "tool"), excerpt=_text(item, "excerpt"))
            for item in _objects(body.get("evidence"))
        ),
        recommendations=_texts(body.get("recommendations")),
        notes=_texts(body.get("notes")),
        actions=tuple(
            Action(tool=_text(item, "tool"), status=_text(item, "status"))
            for item in _objects(body.get("actions"))
        ),
        session_id=str(session) if session else None,
    )
