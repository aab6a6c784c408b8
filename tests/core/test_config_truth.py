"""Configuration that tells the truth: every setting is read by some code, and a value that
cannot work is refused by ``config check`` (and at start-up) with the reason."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from typer.testing import CliRunner

from guilde_core.config import ConfigurationInvalid, Settings, load_settings
from guilde_diag.cli import app

ROOT = Path(__file__).resolve().parents[2]
#: the project's packages (tests excluded: a test reading a field is no use of it)
PACKAGES = (
    "guilde_core",
    "servers",
    "dev3000",
    "agent",
    "console",
    "evals",
    "tools",
    "guilde_diag",
)

runner = CliRunner()


def _names_read(path: Path) -> set[str]:
    """Attribute names and string constants in ``path``, except inside decorators (a
    ``field_validator("x")`` names a field without reading it)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    in_decorators: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            for decorator in node.decorator_list:
                in_decorators.update(id(n) for n in ast.walk(decorator))
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in in_decorators:
            continue
        if isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.add(node.value)  # getattr(settings, "field") and tables of field names
    return names


def _read_by_code() -> set[str]:
    names: set[str] = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            names |= _names_read(path)
    return names


def test_every_setting_is_read_by_some_code() -> None:
    """A variable that passes ``config check`` but changes nothing lies to its operator."""
    read = _read_by_code()
    unread = sorted(name.upper() for name in Settings.model_fields if name not in read)
    assert not unread, f"settings no code reads (implement or remove them): {unread}"


def test_the_scan_sees_an_unread_field(tmp_path: Path) -> None:
    """The scan is not vacuous: a field only declared and named in a validator is unread."""
    module = tmp_path / "m.py"
    module.write_text(
        "class S:\n"
        "    never_read: bool = False\n"
        "    @field_validator('never_read')\n"
        "    def check(cls, v): return v\n"
        "def use(s): return s.other_field\n",
        encoding="utf-8",
    )
    names = _names_read(module)
    assert "other_field" in names
    assert "never_read" not in names


def test_mcp_transport_websocket_is_refused_with_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MCP_TRANSPORT", "websocket")
    result = runner.invoke(app, ["config", "check"])
    assert result.exit_code == 1
    assert "MCP_TRANSPORT" in result.output
    assert "websocket is not a transport dev3000 serves" in " ".join(result.output.split())
    with pytest.raises(ConfigurationInvalid, match="MCP_TRANSPORT"):
        load_settings()  # and so every start-up refuses it too
    started = runner.invoke(app, ["mcp", "health"])  # the transport's default: refused too
    assert started.exit_code == 2
    assert "MCP_TRANSPORT" in started.output
    assert "Traceback" not in started.output
    for served in ("stdio", "sse", "http"):
        monkeypatch.setenv("MCP_TRANSPORT", served)
        assert runner.invoke(app, ["config", "check"]).exit_code == 0, served


def test_every_command_refuses_an_invalid_configuration_without_a_traceback(
    tmp_path: Path,
) -> None:
    """agent-web reads the settings itself: the console script names the variable and
    exits 2 for it too."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "MCP_TRANSPORT": "websocket", "DEV3000_ENV_FILE": str(tmp_path / "x")}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "dev3000"), "agent", "web", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "MCP_TRANSPORT" in done.stderr
    assert "Traceback" not in done.stderr
