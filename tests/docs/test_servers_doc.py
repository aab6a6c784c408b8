"""docs/servers.md documents every server area of ``servers.registry.AREAS``."""

from __future__ import annotations

from servers.registry import AREAS
from tests.docs.markdown import ROOT


def test_docs_have_a_section_for_every_area() -> None:
    text = (ROOT / "docs" / "servers.md").read_text(encoding="utf-8")
    for name in AREAS:
        assert f"## {name} (`servers/{name}/`)" in text, name
