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
from collections.abc import Callable, Sequence, Set
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Literal, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    PlainValidator,
    StringConstraints,
    ValidationError,
)

from agent.analyzers import HEALTHY_COMPONENT, canonical_component, supported
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
    SymptomView,
)
from guilde_core.errors import PermanentError
from guilde_core.redaction import redact, redact_text

if TYPE_CHECKING:
    from agent.state import AgentContext, AgentState

__all__ = [
    "CitationCheck",
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


@dataclass(frozen=True)
class CitationCheck:
    """The model's conclusion checked against the evidence it cites.

    ``accepted`` is False when the root cause cites an evidence id that does not exist,
    cites none, or cites only evidence that does not show that component with that category
    (``problem`` says which); ``findings`` keeps the model's findings whose every cited id
    exists (the others are dropped, never re-pointed at other evidence)."""

    accepted: bool
    problem: str | None
    findings: list[ConcludedFinding | InvalidFinding]


#: ``supports(component, category, evidence_ids)``: whether those records show that fault
Supports = Callable[[str, str, Sequence[str]], bool]


def apply_citation_policy(
    conclusion: ModelConclusion, known: Set[str], supports: Supports
) -> CitationCheck:
    """Check the citations of ``conclusion`` (see :class:`CitationCheck`)."""
    root = conclusion.root_cause
    missing = [i for i in root.evidence_ids if i not in known]
    problem: str | None = None
    if missing:
        problem = f"it cites {', '.join(missing[:5])}, which does not exist"
    elif not root.evidence_ids:
        problem = "it cites no evidence"
    elif not supports(root.component, root.category, root.evidence_ids):
        problem = (
            f"{', '.join(root.evidence_ids[:5])} does not show {root.component} {root.category}"
        )
    findings: list[ConcludedFinding | InvalidFinding] = []
    for entry in conclusion.findings:
        if isinstance(entry, ConcludedFinding):
            unknown = [i for i in entry.evidence_ids if i not in known]
            if unknown:
                entry = InvalidFinding(
                    problem=f"cites {', '.join(unknown[:5])}, which does not exist"
                )
            elif not entry.evidence_ids:
                entry = InvalidFinding(problem="cites no evidence")
        findings.append(entry)
    return CitationCheck(problem is None, problem, findings)


def _model_findings(
    entries: list[ConcludedFinding | InvalidFinding], root: str
) -> tuple[list[Finding], list[str]]:
    findings: list[Finding] = []
    notes: list[str] = []
    for i, entry in enumerate(entries):
        if isinstance(entry, InvalidFinding):
            notes.append(f"model finding {i + 1} dropped: {entry.problem}")
            continue
        findings.append(
            Finding(
                id=f"L{i + 1}",
                title=redact_text(entry.title or "")[:300] or entry.category,
                component=redact_text(entry.component or root),
                category=entry.category,
                severity=entry.severity,
                evidence_ids=entry.evidence_ids,
                source="llm",
            )
        )
    return findings, notes


def _current_evidence(records: list[EvidenceRecord], turn: int) -> list[EvidenceRecord]:
    return [r for r in records if r.get("turn") == turn]


def _same(a: RootCause, b: RootCause) -> bool:
    return (canonical_component(a.component), a.category) == (
        canonical_component(b.component),
        b.category,
    )


def _status_for(root: RootCause, claimed: str | None, offline: str) -> str:
    """A status that agrees with ``root``: healthy exactly when there is no cause."""
    if root.category == "unknown" and canonical_component(root.component) in (
        HEALTHY_COMPONENT,
        "none",
    ):
        return "healthy"
    for status in (claimed, offline):
        if status in ("degraded", "unhealthy"):
            return status
    return "degraded"


def conclude(state: AgentState, context: AgentContext) -> Diagnosis:
    """The offline analysis, and the model's conclusion when its citations hold, as one valid
    Diagnosis (see the module doc)."""
    turn = int(state.get("turn") or 0)
    records = _current_evidence(state.get("evidence") or [], turn)
    known = {r["id"] for r in records}
    notes = list(state.get("notes") or [])
    notes.extend(n for n in context.chain.notes if n not in notes)
    offline = state.get("offline")
    findings = [Finding.model_validate(f) for f in state.get("findings") or []]
    offline_root = RootCause.model_validate(offline["root_cause"]) if offline else None
    root = offline_root
    status = str(offline["status"]) if offline else "unknown"
    recommendations = list(offline["recommendations"]) if offline else []
    beside: RootCause | None = None
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
            mode = "llm"
            provider, model = llm["provider"], llm["model"]

            def supports(component: str, category: str, ids: Sequence[str]) -> bool:
                return supported(records, component, category, ids, offline_root)

            check = apply_citation_policy(conclusion, known, supports)
            llm_findings, finding_notes = _model_findings(
                check.findings, conclusion.root_cause.component
            )
            findings.extend(llm_findings)
            notes.extend(finding_notes)
            stated = conclusion.root_cause
            if not check.accepted:
                notes.append(
                    f"the model's root cause ({redact_text(stated.component)[:80]} / "
                    f"{stated.category}) was rejected: {check.problem}; the offline root "
                    "cause stands"
                )
            else:
                root = RootCause(
                    component=redact_text(stated.component)[:120],
                    category=stated.category,
                    summary=redact_text(stated.summary or "")[:800]
                    or f"{stated.component}: {stated.category}",
                    confidence=stated.bounded_confidence,
                    evidence_ids=stated.evidence_ids,
                )
                recs = [redact_text(r) for r in conclusion.recommendations]
                if recs:
                    recommendations = recs[:8]
                if offline_root is not None and not _same(root, offline_root):
                    beside = offline_root
                    notes.append(
                        f"the offline analysis disagrees: {offline_root.component} / "
                        f"{offline_root.category} (kept beside the model's answer)"
                    )
                status = _status_for(root, conclusion.status, status)
    if root is None:
        root = RootCause(
            component=HEALTHY_COMPONENT, category="unknown", summary="no data", confidence=0
        )
        status = "unknown"
    usage = state.get("usage") or {}
    started = float(state.get("started") or context.clock())
    if status not in get_args(OverallStatus):
        status = "unknown"
    symptom = offline.get("symptom") if offline else None
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
        symptom=SymptomView.model_validate(symptom) if symptom else None,
        chain=list(offline.get("chain") or [])
        if offline and beside is None and root is offline_root
        else [],
        other_problems=[
            Finding.model_validate(f)
            for f in (offline.get("other_problems") or [] if offline else [])
        ],
        checked=list(offline.get("checked") or []) if offline else [],
        offline_root_cause=beside,
    )
    return redact(diagnosis)
