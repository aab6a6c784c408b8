"""The generated configuration docs (.env.example, profiles, README table) match the code."""

from __future__ import annotations

from pathlib import Path

from guilde_core.config import PROFILES, Settings
from guilde_core.envdoc import main, render_all

ROOT = Path(__file__).resolve().parents[2]


def test_generated_files_are_up_to_date() -> None:
    assert main(["--check", "--root", str(ROOT)]) == 0, (
        "configuration docs are stale: run `uv run python -m guilde_core.envdoc --write`"
    )


def test_env_example_lists_every_variable() -> None:
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    for name in Settings.model_fields:
        assert f"# {name.upper()}=" in text, name


def test_readme_table_lists_every_variable() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in Settings.model_fields:
        assert f"| `{name.upper()}` |" in text, name


def test_profile_files_match_profiles() -> None:
    for mode, values in PROFILES.items():
        lines = (ROOT / f".env.{mode}").read_text(encoding="utf-8").splitlines()
        pairs = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
        assert pairs == values


def test_check_detects_a_stale_table(tmp_path: Path) -> None:
    for path, content in render_all(ROOT).items():
        (tmp_path / path.name).write_text(content, encoding="utf-8")
    assert main(["--check", "--root", str(tmp_path)]) == 0
    readme = tmp_path / "README.md"
    readme.write_text(readme.read_text().replace("`DEV3000_PORT`", "`DEV3000_PORTX`"))
    assert main(["--check", "--root", str(tmp_path)]) == 1
