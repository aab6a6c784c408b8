"""Scripts for the fake LLM providers: what the "model" answers, turn by turn.

A script is a mapping (YAML or JSON file, or a dict)::

    steps:                 # consumed in order, one per model request that no rule matched
      - tool_calls:
          - name: logs_search
            arguments: {query: database}
      - text: "The database is slow."
        usage: {input_tokens: 120, output_tokens: 30}
    rules:                 # tried first, in order: a regex searched in the last message's text
      - match: "(?i)hello"
        text: "Hi there."
        times: 2           # optional: the rule fires at most this many times
    default: echo          # when nothing is left: "echo" (the last message back) or a text

A step (or rule) has ``text`` and/or ``tool_calls`` (each ``{name, arguments}``, arguments a
mapping), optional ``usage`` and ``id`` for the first tool call id. Invalid scripts raise
:class:`ScriptError` naming the problem.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

__all__ = ["Rule", "Script", "ScriptError", "Step", "ToolCall", "Usage", "load_script"]


class ScriptError(ValueError):
    """A script that cannot be used (bad file, bad shape, bad regex)."""


class ToolCall(BaseModel):
    """One tool call the model asks for."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    arguments: dict[str, Any] = Field(default_factory=dict)
    id: str | None = None


class Usage(BaseModel):
    """Token counts reported for a turn."""

    model_config = ConfigDict(extra="forbid")

    input_tokens: int = Field(default=12, ge=0)
    output_tokens: int = Field(default=8, ge=0)


class Step(BaseModel):
    """One model turn: tool calls, a final text, or both."""

    model_config = ConfigDict(extra="forbid")

    text: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)


class Rule(Step):
    """A turn chosen by a regex searched in the last message's text."""

    match: str
    times: int | None = Field(default=None, ge=1)

    @field_validator("match")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regex {value!r}: {exc}") from exc
        return value


class Script(BaseModel):
    """Steps by turn, rules by pattern, and what to answer when neither applies."""

    model_config = ConfigDict(extra="forbid")

    steps: list[Step] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)
    default: str = "echo"

    @classmethod
    def parse(cls, data: Any) -> Script:
        """Validate ``data`` (a mapping, or a list taken as ``steps``)."""
        if isinstance(data, list):
            data = {"steps": data}
        try:
            return cls.model_validate(data or {})
        except ValidationError as exc:
            raise ScriptError(f"invalid fake LLM script: {exc}") from exc


def load_script(path: str | Path) -> Script:
    """Read a YAML or JSON script file."""
    file = Path(path)
    try:
        raw = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScriptError(f"cannot read script {file}: {exc.strerror}") from exc
    try:
        data = json.loads(raw) if file.suffix == ".json" else yaml.safe_load(raw)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ScriptError(f"cannot parse script {file}: {exc}") from exc
    return Script.parse(data)
