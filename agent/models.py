"""The diagnosis output contract and the small models the agent passes around.

:class:`Diagnosis` is what ``dev3000 ask`` prints, ``--json`` emits, agent-web returns
and the ``diagnose`` MCP tool answers with. Its validator guarantees that every evidence
id cited by the root cause or a finding exists in ``evidence``.

:class:`EvidenceRecord` is the checkpointed form of one piece of evidence (what gather and
the tool loop produce, what the analyzers read): a TypedDict, so the graph state stays
plain JSON that any checkpointer can persist.
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

from guilde_core.stack import CATEGORIES, Category

__all__ = [
    "CATEGORIES",
    "Category",
    "Diagnosis",
    "Evidence",
    "EvidenceRecord",
    "Finding",
    "JsonObject",
    "JsonValue",
    "Mode",
    "OverallStatus",
    "PendingAction",
    "RootCause",
    "Severity",
    "SymptomKind",
    "SymptomView",
    "ToolArguments",
]

#: a JSON object (what a tool answers, a model dump kept in the graph state)
JsonObject = dict[str, JsonValue]
#: the arguments of a tool call (a JSON object)
ToolArguments = dict[str, JsonValue]

Severity = Literal["info", "warning", "error", "critical"]
OverallStatus = Literal["healthy", "degraded", "unhealthy", "unknown"]
Mode = Literal["llm", "degraded", "offline"]


class EvidenceRecord(TypedDict):
    """One tool answer kept as evidence ``E<n>`` in the graph state.

    ``data`` is the tool's structured answer (redacted; ``None`` when it failed or answered
    text only), ``excerpt`` the redacted, trimmed text shown to the model and in the
    diagnosis, ``turn`` the question of the session it was gathered for.
    """

    id: str
    tool: str
    arguments: ToolArguments
    ok: bool
    data: JsonValue
    error: str | None
    excerpt: str
    turn: NotRequired[int]


class Evidence(BaseModel):
    """One numbered piece of evidence: a tool call and an excerpt of what it returned."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="Evidence id, e.g. 'E3'; findings cite it.")
    tool: str = Field(description="MCP tool that produced it.")
    arguments: ToolArguments = Field(default_factory=dict)
    excerpt: str = Field(description="Redacted, trimmed excerpt of the tool output.")
    error: bool = Field(False, description="The tool call failed; the excerpt is the error.")


class Finding(BaseModel):
    """Something found, with the evidence that shows it."""

    model_config = ConfigDict(extra="forbid")

    id: str
    title: str
    detail: str = ""
    component: str
    category: Category
    severity: Severity
    evidence_ids: list[str] = Field(min_length=1)
    source: Literal["offline", "llm"] = "offline"


class RootCause(BaseModel):
    """The most likely cause of the question's symptom."""

    model_config = ConfigDict(extra="forbid")

    component: str
    category: Category
    summary: str
    confidence: float = Field(ge=0.0, le=1.0)
    evidence_ids: list[str] = Field(default_factory=list)


SymptomKind = Literal["slow", "failing", "rejected", "overall"]


class SymptomView(BaseModel):
    """What the question was read as: the component or route it is about and how it hurts."""

    model_config = ConfigDict(extra="forbid")

    kind: SymptomKind = Field(description="slow | failing | rejected | overall (is all ok?)")
    component: str | None = Field(None, description="The component the question names.")
    route: str | None = Field(None, description="The route or feature it names ('orders').")
    entry: list[str] = Field(
        default_factory=list, description="The model's nodes the symptom's path starts at."
    )
    source: Literal["question", "focus"] = "question"

    @property
    def label(self) -> str:
        what = self.route or self.component or "the system"
        return f"{what} {self.kind}" if self.kind != "overall" else f"{what} overall"


class PendingAction(BaseModel):
    """A control action the investigation asked for that needs a human's approval."""

    tool: str
    arguments: ToolArguments = Field(default_factory=dict)
    status: Literal["awaiting_approval", "approved", "denied"] = "awaiting_approval"
    result: str | None = None


class Diagnosis(BaseModel):
    """The answer to a question about the system, grounded in numbered evidence."""

    model_config = ConfigDict(extra="forbid")

    question: str
    status: OverallStatus
    root_cause: RootCause
    findings: list[Finding] = Field(default_factory=list)
    evidence: list[Evidence] = Field(default_factory=list)
    recommendations: list[str] = Field(default_factory=list)
    mode: Mode
    provider: str | None = Field(None, description="Provider that produced the answer.")
    model: str | None = Field(None, description="Model that produced the answer.")
    steps: int = Field(0, ge=0, description="LLM steps taken.")
    tool_calls: int = Field(0, ge=0, description="MCP tool calls made (gather included).")
    tokens: int = Field(0, ge=0, description="LLM tokens used (input + output).")
    duration_ms: float = Field(0.0, ge=0)
    notes: list[str] = Field(
        default_factory=list,
        description="What went wrong on the way (failed providers, trimmed output, budget).",
    )
    actions: list[PendingAction] = Field(default_factory=list)
    session_id: str | None = None
    symptom: SymptomView | None = Field(None, description="What the question was read as.")
    chain: list[str] = Field(
        default_factory=list,
        description="The symptom's path down to the root cause, one link each: "
        "['orders slow', 'backend: reports degraded …', 'database: latency 801 ms > 100 ms'].",
    )
    other_problems: list[Finding] = Field(
        default_factory=list,
        description="Faults off the symptom's path: real, but not what the question is about.",
    )
    checked: list[str] = Field(
        default_factory=list, description="The components on the symptom's path that were read."
    )
    offline_root_cause: RootCause | None = Field(
        None,
        description="The offline engine's root cause, kept beside an LLM answer that "
        "disagrees with it.",
    )

    @model_validator(mode="after")
    def _cited_evidence_exists(self) -> Diagnosis:
        known = {e.id for e in self.evidence}
        cited = list(self.root_cause.evidence_ids)
        for finding in [*self.findings, *self.other_problems]:
            cited.extend(finding.evidence_ids)
        if self.offline_root_cause is not None:
            cited.extend(self.offline_root_cause.evidence_ids)
        missing = sorted({c for c in cited if c not in known})
        if missing:
            raise ValueError(f"cited evidence ids do not exist: {', '.join(missing)}")
        return self
