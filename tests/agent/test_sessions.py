"""Sessions: continuity across processes with the SQLite and PostgreSQL checkpointers.

Two fresh processes each ask one question in the same sessions (one kept by SQLite, one
by PostgreSQL in a schema of the test's own) against a replay MCP server served over
streamable HTTP; the second process must continue the first one's sessions. The
``dev3000 ask --session`` command itself is checked in-process (CliRunner).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from evals.recorded import RecordedState
from guilde_diag.cli import app

pytestmark = pytest.mark.slow


def _proc(url: str, question: str, targets: list[list[str]]) -> dict[str, list[str]]:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.agent.session_proc",
            url,
            question,
            json.dumps(targets),
        ],
        env={**os.environ},
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, list[str]] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def test_sessions_continue_across_processes_sqlite_and_postgres(
    mcp_http: tuple[str, RecordedState], tmp_path: Path, pg_dsn: str, pg_schema: str
) -> None:
    url, state = mcp_http
    sep = "&" if "?" in pg_dsn else "?"
    dsn = f"{pg_dsn}{sep}options=-c%20search_path%3D{pg_schema}"
    sqlite = str(tmp_path / "sessions.sqlite")
    targets = [["sqlite", sqlite, "s-sqlite"], ["postgres", dsn, "s-pg"]]
    first = _proc(url, "why is checkout failing?", targets)
    second = _proc(url, "is it still failing?", targets)
    for session in ("s-sqlite", "s-pg"):
        assert first[session] == ["E1", "E2", "E3", "E4", "E5", "E6"]
        # numbered after the first process's evidence: the session was read back
        assert second[session] == ["E7", "E8", "E9", "E10", "E11", "E12"]
    assert len(state.calls) == 24  # 2 processes × 2 sessions × 6 gather calls
    with psycopg.connect(pg_dsn) as conn:
        row = conn.execute(
            f'SELECT COUNT(DISTINCT thread_id) FROM "{pg_schema}".checkpoints'  # noqa: S608
        ).fetchone()
    assert row is not None
    assert row[0] == 1  # only the test's schema holds the session


def _cli(args: list[str], env: dict[str, str]) -> Any:
    return CliRunner().invoke(app, args, env=env, catch_exceptions=False)


def test_ask_session_command_keeps_context(
    mcp_http: tuple[str, RecordedState], tmp_path: Path
) -> None:
    url, _ = mcp_http
    env = {"AGENT_CHECKPOINTER": "sqlite", "AGENT_CHECKPOINT_URL": str(tmp_path / "s.sqlite")}
    base = ["ask", "--session", "cli-s", "--url", url, "--json", "--quiet"]
    one = _cli([*base[:1], "why is checkout failing?", *base[1:]], env)
    assert one.exit_code == 0, one.output
    two = _cli([*base[:1], "and now?", *base[1:]], env)
    assert two.exit_code == 0, two.output
    d1, d2 = json.loads(one.stdout), json.loads(two.stdout)
    assert d1["session_id"] == d2["session_id"] == "cli-s"
    assert [e["id"] for e in d2["evidence"]] == ["E7", "E8", "E9", "E10", "E11", "E12"]
    assert d2["mode"] == "offline"


def test_ask_renders_a_readable_report(mcp_http: tuple[str, RecordedState]) -> None:
    url, _ = mcp_http
    result = _cli(["ask", "why is checkout failing?", "--url", url], {})
    assert result.exit_code == 0, result.output
    assert "Root cause" in result.stdout
    assert "database" in result.stdout
    assert "unreachable" in result.stdout
    assert "gather" in result.stderr  # progress streamed as it happened


def test_missing_checkpoint_url_is_a_clear_error(mcp_http: tuple[str, RecordedState]) -> None:
    url, _ = mcp_http
    result = _cli(
        ["ask", "q", "--session", "x", "--url", url],
        {"AGENT_CHECKPOINTER": "postgres", "AGENT_CHECKPOINT_URL": ""},
    )
    assert result.exit_code == 2
    assert "AGENT_CHECKPOINT_URL" in result.stderr


def test_unreachable_endpoint_is_a_clear_error() -> None:
    from tools.harness import free_port

    url = f"http://127.0.0.1:{free_port()}/mcp"
    result = _cli(["ask", "q", "--url", url], {})
    assert result.exit_code == 2
    assert "cannot reach the dev3000 MCP endpoint" in result.stderr


def test_chat_keeps_context_between_questions(
    mcp_http: tuple[str, RecordedState], tmp_path: Path
) -> None:
    url, _ = mcp_http
    env = {"AGENT_CHECKPOINTER": "sqlite", "AGENT_CHECKPOINT_URL": str(tmp_path / "c.sqlite")}
    result = CliRunner().invoke(
        app,
        ["chat", "--session", "chat-1", "--url", url],
        input="why is checkout failing?\nand the breaker?\n\n",
        env=env,
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.count("Root cause") == 2
    assert "E12" in result.stdout  # the second answer's evidence continues the session's
    assert "dev3000 chat --session chat-1" in result.stderr
