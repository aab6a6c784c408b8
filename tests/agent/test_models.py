"""The Diagnosis output contract."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agent.models import Diagnosis


def _diagnosis(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "question": "why?",
        "status": "unhealthy",
        "root_cause": {
            "component": "database",
            "category": "unreachable",
            "summary": "refused",
            "confidence": 0.9,
            "evidence_ids": ["E1"],
        },
        "findings": [
            {
                "id": "F1",
                "title": "db down",
                "component": "database",
                "category": "unreachable",
                "severity": "critical",
                "evidence_ids": ["E1"],
            }
        ],
        "evidence": [{"id": "E1", "tool": "health_stack", "excerpt": "{}"}],
        "mode": "offline",
    }
    base.update(over)
    return base


def test_valid_diagnosis_round_trips_through_json() -> None:
    d = Diagnosis.model_validate(_diagnosis())
    again = Diagnosis.model_validate_json(d.model_dump_json())
    assert again == d


def test_cited_evidence_must_exist() -> None:
    with pytest.raises(ValidationError, match="E9"):
        Diagnosis.model_validate(
            _diagnosis(
                findings=[
                    {
                        "id": "F1",
                        "title": "x",
                        "component": "db",
                        "category": "latency",
                        "severity": "warning",
                        "evidence_ids": ["E9"],
                    }
                ]
            )
        )
    bad_root = _diagnosis()
    bad_root["root_cause"] = {**bad_root["root_cause"], "evidence_ids": ["E2"]}  # type: ignore[dict-item]
    with pytest.raises(ValidationError, match="E2"):
        Diagnosis.model_validate(bad_root)


@pytest.mark.parametrize(
    ("field", "value"),
    [("mode", "magic"), ("status", "fine")],
)
def test_enumerations_are_closed(field: str, value: str) -> None:
    with pytest.raises(ValidationError):
        Diagnosis.model_validate(_diagnosis(**{field: value}))


def test_unknown_category_is_rejected() -> None:
    data = _diagnosis()
    data["root_cause"] = {**data["root_cause"], "category": "gremlins"}  # type: ignore[dict-item]
    with pytest.raises(ValidationError):
        Diagnosis.model_validate(data)
