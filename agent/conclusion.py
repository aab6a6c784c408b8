"""The model's conclusion, parsed by a pydantic model, and the diagnosis it ends up in.

The model ends its investigation with one JSON object (the shape the system prompt asks
for). :func:`parse_conclusion` finds it in the answer (prose and code fences around it are
tolerated) and validates it as a :class:`ModelConclusion`; an answer without such an object,
or with one that does not validate, raises :class:`ConclusionError`. :func:`conclude` merges
a valid conclusion with the offline analysis into the :class:`~agent.models.Diagnosis`; on a
``ConclusionError`` it keeps the offline answer and says why in the notes.

What the conclusion must hold, and what is tolerated:

* ``root_cause.component`` (a non-empty string) and ``root_cause.category`` (one of
  :data:`~agent.models.CATEGORIES`; surrounding whitespace ignored) are required; a missing
  or mistyped root cause makes the whole answer invalid.
* ``root_cause.summary``, ``confidence`` (clamped into 0–1; absent or null: 0.6) and
  ``evidence_ids`` are optional.
* ``status`` other than healthy / degraded / unhealthy is ignored (the offline one stays).
* Each of ``findings`` is checked on its own: one that does not validate is dropped with a
  note, the rest of the answer stands; an unknown ``severity`` counts as ``warning``.
* ``recommendations`` is a list of strings (a lone string counts as one).
* Evidence ids the model cites that the evidence does not hold: see
  :func:`apply_citation_policy`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence, Set
from typing import TYPE_CHECKING, Annotated, Literal, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    PlainValidator,
    StringConstraints,
    ValidationError,
)

from agent.models import (
    Category,
    Diagnosis,
    Evidence,
    EvidenceRecord,
    Finding,
    Mode,
    OverallStatus,
    PendingAction,
    RootCause,
    Severity,
)
from guilde_core.errors import PermanentError
from guilde_core.redaction import redact, redact_text

if TYPE_CHECKING:
    from agent.state import AgentContext, AgentState

__all__ = [
    "ConcludedFinding",
    "ConcludedRootCause",
    "ConclusionError",
    "InvalidFinding",
    "ModelConclusion",
    "apply_citation_policy",
    "conclude",
    "parse_conclusion",
]

_SEVERITIES: tuple[str, ...] = get_args(Severity)
_ANSWER_STATUSES = ("healthy", "degraded", "unhealthy")
DEFAULT_CONFIDENCE = 0.6


class ConclusionError(PermanentError):
    """The model's answer holds no valid conclusion. ``problems`` lists what is wrong, one
    short line per field (empty when there was no JSON object at all)."""

    code = "invalid_conclusion"
    http_status = 502

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


def _known_status(value: object) -> object:
    return value if value in _ANSWER_STATUSES else None


def _known_severity(value: object) -> object:
    return value if value in _SEVERITIES else "warning"


def _listed(value: object) -> object:
    return [value] if isinstance(value, str) else value


class ConcludedRootCause(BaseModel):
    """The root cause as the model states it."""

    component: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
    category: Annotated[Category, BeforeValidator(_strip)]
    summary: str | None = None
    confidence: Annotated[float, Field(allow_inf_nan=False)] | None = None
    evidence_ids: list[str] = Field(default_factory=list)

    @property
    def bounded_confidence(self) -> float:
        """The confidence clamped into 0–1 (the default when the model gave none)."""
        value = DEFAULT_CONFIDENCE if self.confidence is None else self.confidence
        return min(max(value, 0.0), 1.0)


class ConcludedFinding(BaseModel):
    """One finding as the model states it."""

    title: str | None = None
    component: str | None = None
    category: Category
    severity: Annotated[Severity, BeforeValidator(_known_severity)] = "warning"
    evidence_ids: list[str] = Field(default_factory=list)


class InvalidFinding(BaseModel):
    """A finding of the answer that is dropped, and why."""

    problem: str


def _problems(exc: ValidationError) -> list[str]:
    out: list[str] = []
    for error in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in error["loc"]) or "answer"
        out.append(f"{where}: {error['msg']}"[:160])
    return out


def _finding_entry(value: object) -> ConcludedFinding | InvalidFinding:
    try:
        return ConcludedFinding.model_validate(value)
    except ValidationError as exc:
        return InvalidFinding(problem="; ".join(_problems(exc)[:3]))


class ModelConclusion(BaseModel):
    """The JSON object a model concludes with (unknown keys are ignored)."""

    status: Annotated[
        Literal["healthy", "degraded", "unhealthy"] | None, BeforeValidator(_known_status)
    ] = None
    root_cause: ConcludedRootCause
    findings: list[Annotated[ConcludedFinding | InvalidFinding, PlainValidator(_finding_entry)]] = (
        Field(default_factory=list)
    )
    recommendations: Annotated[list[str], BeforeValidator(_listed)] = Field(default_factory=list)


def _json_objects(text: str) -> list[str]:
    """The top-level ``{…}`` spans of ``text`` (braces inside strings ignored)."""
    found: list[str] = []
    depth = 0
    start = -1
    in_str = False
    escape = False
    for i, ch in enumerate(text):
        if in_str:
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"':
            in_str = True
        elif ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth:
            depth -= 1
            if depth == 0 and start >= 0:
                found.append(text[start : i + 1])
    return found


def parse_conclusion(text: str) -> ModelConclusion:
    """The conclusion in a model answer: the first JSON object with a ``root_cause``.

    Raises :class:`ConclusionError` when there is none, or when it does not validate."""
    for candidate in _json_objects(text or ""):
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if not isinstance(value, dict) or "root_cause" not in value:
            continue
        try:
            return ModelConclusion.model_validate(value)
        except ValidationError as exc:
            problems = _problems(exc)
            raise ConclusionError(
                f"model answer had an invalid conclusion ({'; '.join(problems[:3])}); "
                "the offline root cause is kept",
                problems,
            ) from exc
    raise ConclusionError("model answer was not the expected JSON; the offline root cause is kept")


def apply_citation_policy(
    conclusion: ModelConclusion, known: Set[str], fallback: Sequence[str]
) -> tuple[ModelConclusion, list[str]]:
    """What happens to evidence ids the model cites that the evidence does not hold.

    The policy for now: they are dropped (the root cause's are counted in a note); a root
    cause left citing nothing cites ``fallback`` (the offline root cause's evidence); a
    finding left citing nothing is dropped. Returns the conclusion citing only ``known``
    ids, and the notes."""
    notes: list[str] = []
    root = conclusion.root_cause
    cited = [i for i in root.evidence_ids if i in known]
    dropped = len(root.evidence_ids) - len(cited)
    if dropped:
        notes.append(f"model cited {dropped} unknown evidence id(s); they were dropped")
    findings: list[ConcludedFinding | InvalidFinding] = []
    for entry in conclusion.findings:
        if isinstance(entry, ConcludedFinding):
            ids = [i for i in entry.evidence_ids if i in known]
            if ids:
                entry = entry.model_copy(update={"evidence_ids": ids})
            else:
                entry = InvalidFinding(problem="no valid evidence cited")
        findings.append(entry)
    resolved = conclusion.model_copy(
        update={
            "root_cause": root.model_copy(update={"evidence_ids": cited or list(fallback)}),
            "findings": findings,
        }
    )
    return resolved, notes


def _merge(
    conclusion: ModelConclusion,
    *,
    known: Set[str],
    offline_root: RootCause | None,
) -> tuple[RootCause, list[Finding], list[str]]:
    """The root cause and findings of a valid conclusion (citations resolved), and notes."""
    fallback = list(offline_root.evidence_ids) if offline_root is not None else []
    conclusion, notes = apply_citation_policy(conclusion, known, fallback)
    stated = conclusion.root_cause
    root = RootCause(
        component=redact_text(stated.component)[:120],
        category=stated.category,
        summary=redact_text(stated.summary or "")[:800] or f"{stated.component}: {stated.category}",
        confidence=stated.bounded_confidence,
        evidence_ids=stated.evidence_ids,
    )
    findings: list[Finding] = []
    for i, entry in enumerate(conclusion.findings):
        if isinstance(entry, InvalidFinding):
            notes.append(f"model finding {i + 1} dropped: {entry.problem}")
            continue
        findings.append(
            Finding(
                id=f"L{i + 1}",
                title=redact_text(entry.title or "")[:300] or entry.category,
                component=redact_text(entry.component or root.component),
                category=entry.category,
                severity=entry.severity,
                evidence_ids=entry.evidence_ids,
                source="llm",
            )
        )
    return root, findings, notes


def _current_evidence(records: list[EvidenceRecord], turn: int) -> list[EvidenceRecord]:
    return [r for r in records if r.get("turn") == turn]


def conclude(state: AgentState, context: AgentContext) -> Diagnosis:
    """Merge the offline analysis and the model's conclusion into a valid Diagnosis."""
    turn = int(state.get("turn") or 0)
    records = _current_evidence(state.get("evidence") or [], turn)
    known = {r["id"] for r in records}
    notes = list(state.get("notes") or [])
    notes.extend(n for n in context.chain.notes if n not in notes)
    offline = state.get("offline")
    findings = [Finding.model_validate(f) for f in state.get("findings") or []]
    root = RootCause.model_validate(offline["root_cause"]) if offline else None
    status = str(offline["status"]) if offline else "unknown"
    recommendations = list(offline["recommendations"]) if offline else []
    llm = state.get("llm")
    mode: Mode = "degraded" if context.chain.configured_llm else "offline"
    provider: str | None = None
    model: str | None = None

    if llm is not None and llm["answer"] is not None and context.chain.has_llm:
        try:
            conclusion = parse_conclusion(llm["answer"])
        except ConclusionError as exc:
            notes.append(exc.message)
        else:
            root, llm_findings, merge_notes = _merge(conclusion, known=known, offline_root=root)
            findings.extend(llm_findings)
            notes.extend(merge_notes)
            recs = [redact_text(r) for r in conclusion.recommendations]
            if recs:
                recommendations = recs[:8]
            if conclusion.status is not None:
                status = conclusion.status
            mode = "llm"
            provider, model = llm["provider"], llm["model"]
    if root is None:
        root = RootCause(component="system", category="unknown", summary="no data", confidence=0)
    usage = state.get("usage") or {}
    started = float(state.get("started") or context.clock())
    if status not in get_args(OverallStatus):
        status = "unknown"
    diagnosis = Diagnosis(
        question=state.get("question", ""),
        status=status,
        root_cause=root,
        findings=findings,
        evidence=[
            Evidence(
                id=r["id"],
                tool=r["tool"],
                arguments=r.get("arguments") or {},
                excerpt=r.get("excerpt") or "",
                error=not r.get("ok", True),
            )
            for r in records
        ],
        recommendations=recommendations,
        mode=mode,
        provider=provider,
        model=model,
        steps=usage.get("steps", 0),
        tool_calls=usage.get("tool_calls", 0),
        tokens=usage.get("tokens", 0),
        duration_ms=round((context.clock() - started) * 1000, 1),
        notes=notes,
        actions=[PendingAction.model_validate(a) for a in state.get("actions") or []],
    )
    return redact(diagnosis)
