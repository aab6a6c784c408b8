"""A scenario of the suite: its ``scenario.yaml`` as a model, and the loader.

The format is described in :mod:`evals.suite`; the suite lives in ``evals/scenarios/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field

from agent.models import CATEGORIES

__all__ = ["Expect", "Scenario", "default_scenario_dir", "load_scenarios"]


class Expect(BaseModel):
    component: list[str]
    category: str
    mention: list[str] = Field(default_factory=list)
    not_claim: list[str] = Field(default_factory=list)
    tools: list[str] = Field(default_factory=list)


class Scenario(BaseModel):
    name: str
    question: str
    #: the same question in other words: each is diagnosed too, against the same live state
    paraphrases: list[str] = Field(default_factory=list)
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    faults: list[dict[str, Any]] = Field(default_factory=list)
    traffic: list[dict[str, Any]] = Field(default_factory=list)
    setup: list[dict[str, Any]] = Field(default_factory=list)
    sandbox: dict[str, Any] = Field(default_factory=dict)
    runtime: dict[str, Any] = Field(default_factory=dict)
    #: dev3000 settings on top of every setup (``{free_port}``: a port nothing listens on)
    dev3000: dict[str, str] = Field(default_factory=dict)
    recorded: dict[str, Any] = Field(default_factory=dict)
    expect: Expect
    llm: dict[str, Any] = Field(default_factory=dict)
    path: str = ""


def default_scenario_dir() -> Path:
    """``evals/scenarios``: the suite ships with this package."""
    return Path(__file__).resolve().parent / "scenarios"


def load_scenarios(folder: str | Path, tags: list[str] | None = None) -> list[Scenario]:
    """Every ``*/scenario.yaml`` under ``folder`` (filtered by tags), sorted by name."""
    out: list[Scenario] = []
    for path in sorted(Path(folder).glob("*/scenario.yaml")):
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        scenario = Scenario.model_validate({**raw, "path": str(path.parent)})
        if scenario.expect.category not in CATEGORIES:
            raise ValueError(f"{path}: unknown category {scenario.expect.category!r}")
        if tags and not set(tags) & set(scenario.tags):
            continue
        out.append(scenario)
    return out
