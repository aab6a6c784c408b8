"""The model's conclusion: parsed by a pydantic model, invalid answers a typed error, and the
rule for citations of evidence that does not exist (see also the graph-level fallbacks in
tests/agent/test_llm.py)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from agent.conclusion import (
    ConcludedFinding,
    ConclusionError,
    InvalidFinding,
    ModelConclusion,
    apply_citation_policy,
    parse_conclusion,
)
from guilde_core.errors import PermanentError


def _answer(**over: Any) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "status": "unhealthy",
        "root_cause": {
            "component": "database",
            "category": "unreachable",
            "summary": "PostgreSQL refuses connections.",
            "confidence": 0.9,
            "evidence_ids": ["E1", "E6"],
        },
        "findings": [
            {
                "title": "breaker open",
                "component": "database",
                "category": "circuit_open",
                "severity": "error",
                "evidence_ids": ["E6"],
            }
        ],
        "recommendations": ["Start PostgreSQL."],
    }
    answer.update(over)
    return answer


def _root(**over: Any) -> dict[str, Any]:
    root: dict[str, Any] = dict(_answer()["root_cause"])
    root.update(over)
    return root


def _text(answer: dict[str, Any]) -> str:
    return "Here is what I found.\n```json\n" + json.dumps(answer) + "\n```\n"


# --- a valid conclusion ------------------------------------------------------------------------
def test_valid_conclusion_is_parsed_from_prose_and_a_code_fence() -> None:
    parsed = parse_conclusion(_text(_answer()))
    assert parsed.status == "unhealthy"
    assert parsed.root_cause.component == "database"
    assert parsed.root_cause.category == "unreachable"
    assert parsed.root_cause.bounded_confidence == 0.9
    assert parsed.root_cause.evidence_ids == ["E1", "E6"]
    assert parsed.findings == [
        ConcludedFinding(
            title="breaker open",
            component="database",
            category="circuit_open",
            severity="error",
            evidence_ids=["E6"],
        )
    ]
    assert parsed.recommendations == ["Start PostgreSQL."]


def test_an_earlier_json_object_without_a_root_cause_is_skipped() -> None:
    text = 'I called {"tool": "logs_search"} first.\n' + json.dumps(_answer())
    assert parse_conclusion(text).root_cause.component == "database"


def test_tolerated_deviations_keep_the_answer() -> None:
    parsed = parse_conclusion(
        json.dumps(
            _answer(
                status="on fire",  # not a status: the offline one stays
                recommendations="Start PostgreSQL.",  # one string: one recommendation
                root_cause=_root(component="  database ", category=" unreachable", confidence=7),
                findings=[{**_answer()["findings"][0], "severity": "catastrophic"}],
            )
        )
    )
    assert parsed.status is None
    assert parsed.recommendations == ["Start PostgreSQL."]
    assert (parsed.root_cause.component, parsed.root_cause.category) == ("database", "unreachable")
    assert parsed.root_cause.bounded_confidence == 1.0  # clamped into 0-1
    first = parsed.findings[0]
    assert isinstance(first, ConcludedFinding)
    assert first.severity == "warning"


# --- missing fields ------------------------------------------------------------------------------
def test_missing_optional_fields_take_their_defaults() -> None:
    parsed = parse_conclusion(
        json.dumps({"root_cause": {"component": "redis", "category": "latency"}})
    )
    assert parsed.status is None
    assert parsed.root_cause.summary is None
    assert parsed.root_cause.bounded_confidence == 0.6
    assert parsed.root_cause.evidence_ids == []
    assert parsed.findings == []
    assert parsed.recommendations == []


def test_an_answer_without_a_conclusion_object_is_a_typed_error() -> None:
    for text in ("The database is down.", '{"status": "unhealthy"}', "{not json", ""):
        with pytest.raises(ConclusionError) as excinfo:
            parse_conclusion(text)
        assert isinstance(excinfo.value, PermanentError)
        assert excinfo.value.code == "invalid_conclusion"
        assert excinfo.value.problems == []
        assert "not the expected JSON" in excinfo.value.message


@pytest.mark.parametrize(
    ("root_cause", "where"),
    [
        ({"category": "unreachable"}, "root_cause.component"),
        ({"component": "database"}, "root_cause.category"),
        ({"component": "   ", "category": "unreachable"}, "root_cause.component"),
    ],
)
def test_a_root_cause_missing_a_required_field_is_a_typed_error(
    root_cause: dict[str, Any], where: str
) -> None:
    with pytest.raises(ConclusionError) as excinfo:
        parse_conclusion(json.dumps(_answer(root_cause=root_cause)))
    assert any(p.startswith(where) for p in excinfo.value.problems), excinfo.value.problems
    assert "invalid conclusion" in excinfo.value.message
    assert where in excinfo.value.message


# --- wrong types ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("answer", "where"),
    [
        (_answer(root_cause="the database"), "root_cause"),
        (_answer(root_cause=_root(component=5)), "root_cause.component"),
        (_answer(root_cause=_root(category="meltdown")), "root_cause.category"),
        (_answer(root_cause=_root(confidence="high")), "root_cause.confidence"),
        (_answer(root_cause=_root(evidence_ids="E1")), "root_cause.evidence_ids"),
        (_answer(findings={"title": "x"}), "findings"),
        (_answer(recommendations=[1, 2]), "recommendations.0"),
    ],
)
def test_wrong_types_are_a_typed_error_naming_the_field(answer: dict[str, Any], where: str) -> None:
    with pytest.raises(ConclusionError) as excinfo:
        parse_conclusion(json.dumps(answer))
    assert any(p.startswith(where) for p in excinfo.value.problems), excinfo.value.problems


def test_a_finding_that_does_not_validate_is_dropped_alone() -> None:
    good = _answer()["findings"][0]
    parsed = parse_conclusion(
        json.dumps(
            _answer(
                findings=[
                    {**good, "category": "vibes"},
                    "not an object",
                    good,
                    {**good, "evidence_ids": "E6"},
                ]
            )
        )
    )
    kinds = [type(f) for f in parsed.findings]
    assert kinds == [InvalidFinding, InvalidFinding, ConcludedFinding, InvalidFinding]
    problems = [f.problem for f in parsed.findings if isinstance(f, InvalidFinding)]
    assert problems[0].startswith("category:")
    assert problems[2].startswith("evidence_ids:")
    assert parsed.root_cause.component == "database"


# --- citations: checked, never re-pointed ------------------------------------------------
def _supports_database_unreachable(component: str, category: str, ids: Sequence[str]) -> bool:
    """E1 shows the database unreachable; nothing else shows anything."""
    return (component, category) == ("database", "unreachable") and "E1" in ids


def test_a_root_cause_citing_evidence_that_does_not_exist_is_rejected() -> None:
    conclusion = ModelConclusion.model_validate(
        _answer(
            root_cause=_root(evidence_ids=["E1", "E77", "E78"]),
            findings=[
                {"category": "circuit_open", "evidence_ids": ["E6", "E99"]},
                {"category": "latency", "evidence_ids": ["E6"]},
                {"category": "error_spike"},
            ],
        )
    )
    check = apply_citation_policy(conclusion, {"E1", "E6"}, _supports_database_unreachable)
    assert not check.accepted
    assert check.problem == "it cites E77, E78, which does not exist"
    first, second, third = check.findings
    # a finding citing a missing id is dropped whole, not trimmed to the ids that exist
    assert first == InvalidFinding(problem="cites E99, which does not exist")
    assert isinstance(second, ConcludedFinding)
    assert second.evidence_ids == ["E6"]
    assert third == InvalidFinding(problem="cites no evidence")
    # the conclusion itself is left as it was
    assert conclusion.root_cause.evidence_ids == ["E1", "E77", "E78"]


def test_a_root_cause_citing_nothing_or_unsupporting_evidence_is_rejected() -> None:
    uncited = ModelConclusion.model_validate(_answer(root_cause=_root(evidence_ids=[])))
    check = apply_citation_policy(uncited, {"E1"}, _supports_database_unreachable)
    assert (check.accepted, check.problem) == (False, "it cites no evidence")
    # E6 exists but does not show the database unreachable
    elsewhere = ModelConclusion.model_validate(_answer(root_cause=_root(evidence_ids=["E6"])))
    check = apply_citation_policy(elsewhere, {"E1", "E6"}, _supports_database_unreachable)
    assert (check.accepted, check.problem) == (False, "E6 does not show database unreachable")
    # the claim E1 shows
    grounded = ModelConclusion.model_validate(_answer(root_cause=_root(evidence_ids=["E1"])))
    check = apply_citation_policy(grounded, {"E1", "E6"}, _supports_database_unreachable)
    assert (check.accepted, check.problem) == (True, None)


def test_the_status_agrees_with_the_root_cause() -> None:
    from agent.conclusion import _status_for
    from agent.models import RootCause

    def root(component: str, category: str) -> RootCause:
        return RootCause(component=component, category=category, summary="", confidence=0.5)

    assert _status_for(root("none", "unknown"), "degraded", "healthy") == "healthy"
    assert _status_for(root("system", "unknown"), None, "degraded") == "healthy"
    assert _status_for(root("database", "latency"), "healthy", "healthy") == "degraded"
    assert _status_for(root("database", "unreachable"), "unhealthy", "degraded") == "unhealthy"
