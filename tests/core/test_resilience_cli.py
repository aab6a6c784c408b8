"""``dev3000 deadletters`` commands (``breakers``: tests/dev3000/test_cli_breakers.py)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from guilde_core.resilience import FileDeadLetterStore, replayable
from guilde_diag.cli import app
from tests.core.conftest import dead_letter

runner = CliRunner()


@replayable
async def handler(payload: object) -> str:
    return f"done {payload}"


def test_deadletters_list_and_replay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEV3000_DATA_DIR", str(tmp_path))
    store = FileDeadLetterStore(tmp_path / "deadletters.jsonl")
    letter_id = asyncio.run(
        store.add(
            dead_letter(operation="tests.core.test_resilience_cli:handler", payload={"order": 3})
        )
    )
    result = runner.invoke(app, ["deadletters", "list", "--json"])
    assert result.exit_code == 0, result.output
    assert [x["id"] for x in json.loads(result.output)] == [letter_id]
    result = runner.invoke(app, ["deadletters", "replay", letter_id])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["result"] == "done {'order': 3}"
    result = runner.invoke(app, ["deadletters", "replay", letter_id])
    assert result.exit_code == 1
    assert "no dead letter" in result.output
