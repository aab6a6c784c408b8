"""What the investigation graph keeps and what it is given.

* :class:`AgentState` — the checkpointed state of one session (LangGraph thread). It holds
  only JSON-like values (TypedDicts, lists, model dumps), so any checkpointer persists it
  and sessions written by an older version still load.
* :class:`AgentContext` — the run's dependencies (MCP tools, provider chain, budgets,
  thresholds, clock, progress consumer), handed to every node as LangGraph's runtime
  context (``Runtime[AgentContext]``); never checkpointed, passed again on every run and
  resume.
* :data:`ProgressEvent` — the progress events the nodes emit (what ``dev3000 ask`` prints,
  agent-web streams and the console shows).
"""

from __future__ import annotations

import operator
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Literal, NotRequired, TypedDict

from langgraph.types import Overwrite

from agent.analyzers import Thresholds
from agent.mcp_client import DiagTools
from agent.models import EvidenceRecord, JsonObject, Severity, ToolArguments
from agent.providers import ChatMessage, ProviderChain, ToolCall
from guilde_core.config import Settings
from guilde_core.redaction import redact

__all__ = [
    "AgentContext",
    "AgentState",
    "ApprovalDecision",
    "ApprovalRequest",
    "Budgets",
    "LLMAnswer",
    "OfflineAnalysis",
    "ProgressCallback",
    "ProgressEvent",
    "TurnInput",
    "Usage",
    "add_usage",
    "merge_evidence",
    "merge_messages",
    "turn_input",
]


# --- the checkpointed state ------------------------------------------------------------------
class Usage(TypedDict, total=False):
    """Cost counters of the current question (added up by :func:`add_usage`)."""

    steps: int
    tokens: int
    tool_calls: int


class OfflineAnalysis(TypedDict):
    """What the offline analyzers concluded for the current question."""

    root_cause: JsonObject  # a RootCause dump
    status: str
    recommendations: list[str]
    symptom: NotRequired[JsonObject | None]  # a SymptomView dump
    chain: NotRequired[list[str]]
    other_problems: NotRequired[list[JsonObject]]  # Finding dumps
    checked: NotRequired[list[str]]


class LLMAnswer(TypedDict):
    """The model's last reply: ``answer`` is its final text (``None`` while it calls tools)."""

    provider: str
    model: str
    answer: str | None


class ApprovalRequest(TypedDict):
    """The value of the approval interrupt of one control call (what a human decides on)."""

    type: Literal["approval"]
    tool: str
    arguments: ToolArguments
    question: str


class ApprovalDecision(TypedDict, total=False):
    """A human's answer to an :class:`ApprovalRequest` (``Command(resume=…)``)."""

    approved: bool
    reason: str | None


def merge_messages(
    left: list[ChatMessage] | None, right: list[ChatMessage] | ChatMessage | None
) -> list[ChatMessage]:
    """Append messages; a message with a known ``id`` replaces the old one."""
    merged = list(left or [])
    incoming = list(right or []) if isinstance(right, list) else [right] if right else []
    index = {m["id"]: i for i, m in enumerate(merged) if m.get("id")}
    for original in incoming:
        message = original.copy()
        if "id" not in message:
            message["id"] = uuid.uuid4().hex[:12]
        if message["id"] in index:
            merged[index[message["id"]]] = message
        else:
            index[message["id"]] = len(merged)
            merged.append(message)
    return merged


def merge_evidence(
    left: list[EvidenceRecord] | None, right: list[EvidenceRecord] | None
) -> list[EvidenceRecord]:
    """Evidence records by id (new ids appended, same id replaced)."""
    merged = {r["id"]: r for r in left or []}
    for record in right or []:
        merged[record["id"]] = record
    return list(merged.values())


_USAGE_KEYS: tuple[Literal["steps", "tokens", "tool_calls"], ...] = (
    "steps",
    "tokens",
    "tool_calls",
)


def add_usage(left: Usage | None, right: Usage | None) -> Usage:
    """Counters add up (a new question overwrites them: :func:`turn_input`)."""
    out = left.copy() if left else Usage()
    for key in _USAGE_KEYS:
        if right and key in right:
            out[key] = out.get(key, 0) + right[key]
    return out


class AgentState(TypedDict, total=False):
    """Checkpointed state of one session (thread); a node returns the keys it changes."""

    question: str
    focus: str | None
    window_minutes: float | None
    turn: int
    started: float
    messages: Annotated[list[ChatMessage], merge_messages]
    evidence: Annotated[list[EvidenceRecord], merge_evidence]
    findings: list[JsonObject]  # Finding dumps of the offline analysis
    offline: OfflineAnalysis | None
    pending: list[ToolCall]
    control_pending: list[ToolCall]
    seen_calls: Annotated[list[str], operator.add]
    usage: Annotated[Usage, add_usage]
    notes: Annotated[list[str], operator.add]
    actions: Annotated[list[JsonObject], operator.add]  # PendingAction dumps
    llm: LLMAnswer | None
    llm_failed: bool
    stop: bool
    diagnosis: JsonObject | None  # the Diagnosis dump of the last question


class TurnInput(TypedDict):
    """The graph's input: a new question in a (new or existing) session. The counters,
    notes and actions of the previous question are overwritten, not added to."""

    question: str
    focus: str | None
    window_minutes: float | None
    turn: int
    started: float
    findings: list[JsonObject]
    offline: OfflineAnalysis | None
    pending: list[ToolCall]
    control_pending: list[ToolCall]
    usage: Overwrite
    notes: Overwrite
    actions: Overwrite
    llm: LLMAnswer | None
    llm_failed: bool
    stop: bool
    diagnosis: JsonObject | None


def turn_input(
    question: str,
    *,
    turn: int,
    started: float,
    focus: str | None = None,
    window_minutes: float | None = None,
) -> TurnInput:
    """The state update that starts question ``turn`` of a session at time ``started``."""
    return TurnInput(
        question=question,
        focus=focus,
        window_minutes=window_minutes,
        turn=turn,
        started=started,
        findings=[],
        offline=None,
        pending=[],
        control_pending=[],
        usage=Overwrite(Usage(steps=0, tokens=0, tool_calls=0)),
        notes=Overwrite([]),
        actions=Overwrite([]),
        llm=None,
        llm_failed=False,
        stop=False,
        diagnosis=None,
    )


# --- progress events ---------------------------------------------------------------------------
class PhaseEvent(TypedDict):
    type: Literal["phase"]
    phase: Literal["gather", "analyse", "investigate", "conclude"]
    step: NotRequired[int]


class ToolEvent(TypedDict):
    type: Literal["tool"]
    phase: Literal["gather", "investigate"]
    tool: str
    ok: bool | None  # None: the call started
    evidence_id: NotRequired[str]


class ToolRefusedEvent(TypedDict):
    type: Literal["tool_refused"]
    tool: str
    reason: str


class FindingEvent(TypedDict):
    type: Literal["finding"]
    severity: Severity
    component: str
    category: str
    title: str
    evidence_ids: list[str]


class LLMEvent(TypedDict):
    type: Literal["llm"]
    provider: str
    model: str
    tool_calls: list[str]
    tokens: int


class LLMFailedEvent(TypedDict):
    type: Literal["llm_failed"]
    notes: list[str]


class ApprovalRequiredEvent(TypedDict):
    type: Literal["approval_required"]
    tool: str


class ApprovalEvent(TypedDict):
    type: Literal["approval"]
    tool: str
    status: Literal["approved", "denied"]


class DiagnosisEvent(TypedDict):
    type: Literal["diagnosis"]
    diagnosis: JsonObject


ProgressEvent = (
    PhaseEvent
    | ToolEvent
    | ToolRefusedEvent
    | FindingEvent
    | LLMEvent
    | LLMFailedEvent
    | ApprovalRequiredEvent
    | ApprovalEvent
    | DiagnosisEvent
)
#: receives each :data:`ProgressEvent` (redacted) as a plain dict
ProgressCallback = Callable[[dict[str, object]], None]


# --- the run context ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Budgets:
    """How far one question may go with an LLM."""

    max_steps: int = 8
    token_budget: int = 40_000
    tool_output_chars: int = 4000
    max_tokens_per_call: int = 1024

    @classmethod
    def from_settings(
        cls, settings: Settings, *, max_steps: int | None = None, token_budget: int | None = None
    ) -> Budgets:
        return cls(
            max_steps=max_steps or settings.agent_max_steps,
            token_budget=token_budget or settings.agent_token_budget,
        )


@dataclass
class AgentContext:
    """What the nodes need that does not belong in the checkpoint (LangGraph's runtime
    context: ``graph.ainvoke(…, context=AgentContext(…))``, read as ``runtime.context``)."""

    tools: DiagTools
    chain: ProviderChain
    budgets: Budgets = field(default_factory=Budgets)
    thresholds: Thresholds = field(default_factory=Thresholds)
    on_event: ProgressCallback | None = None
    clock: Callable[[], float] = time.time

    def emit(self, event: ProgressEvent) -> None:
        """Hand ``event`` (redacted) to the progress consumer, if any."""
        if self.on_event is not None:
            try:
                self.on_event(redact(dict(event)))
            except Exception:  # a broken progress consumer never breaks the run
                self.on_event = None
