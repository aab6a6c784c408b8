"""Every Mermaid diagram in every Markdown file of the repository renders.

The blocks are rendered by ``tools/mermaid/render-all.mjs`` with ``renderMermaid`` from
``@mermaid-js/mermaid-cli`` (what ``mmdc`` runs for each block of a Markdown file), in ONE
headless Debian chromium for all of them, so a failure names its file, line and error and the
whole check stays within seconds. ``tools/mermaid/node_modules`` is installed with ``npm ci``
(from the committed package-lock.json) when it is missing.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.docs.markdown import ROOT, Block, fenced_blocks, markdown_files, mermaid_blocks

MERMAID_DIR = ROOT / "tools" / "mermaid"
RENDERER = MERMAID_DIR / "render-all.mjs"
#: diagram kinds the docs must have, by the keyword that opens a Mermaid block
REQUIRED_KINDS = {
    "entity-relationship": ("erDiagram",),
    "state": ("stateDiagram", "stateDiagram-v2"),
    "sequence": ("sequenceDiagram",),
    "flowchart": ("flowchart", "graph"),
    "architecture": ("architecture-beta",),
    "gitgraph": ("gitGraph",),
    "timeline": ("timeline",),
}
CANARY_OK = "flowchart LR\n  canary_a --> canary_b\n"
CANARY_BROKEN = "flowchart LR\n  canary_a -->> canary_b[[[\n"


def _chromium() -> str:
    for candidate in (
        os.environ.get("CHROMIUM_PATH"),
        shutil.which("chromium"),
        "/usr/bin/chromium",
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.fail(
        "chromium is needed to render the Mermaid diagrams: apt-get install -y chromium "
        "(or set CHROMIUM_PATH)"
    )


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=MERMAID_DIR, env=env, capture_output=True, text=True, timeout=110, check=False
    )


def _ensure_node_modules() -> None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail(
            "node and npm are needed to render the Mermaid diagrams: apt-get install -y nodejs npm"
        )
    marker = MERMAID_DIR / "node_modules" / "@mermaid-js" / "mermaid-cli" / "package.json"
    lock_path = Path(tempfile.gettempdir()) / "guilde-diag-mermaid-npm.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test workers install once
        if marker.is_file():
            return
        env = {
            **os.environ,
            "PUPPETEER_SKIP_DOWNLOAD": "1",
            "PUPPETEER_SKIP_CHROMIUM_DOWNLOAD": "1",
        }
        done = _run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], env)
        if done.returncode != 0 or not marker.is_file():
            pytest.fail(f"npm ci in tools/mermaid failed:\n{done.stdout}\n{done.stderr}")


def render(sources: list[tuple[str, str]], tmp: Path) -> list[dict[str, Any]]:
    """Render ``(id, source)`` diagrams in one browser; one result dict per diagram."""
    _ensure_node_modules()
    blocks_file = tmp / "blocks.json"
    blocks_file.write_text(
        json.dumps([{"id": i, "source": s} for i, s in sources]), encoding="utf-8"
    )
    env = {**os.environ, "CHROMIUM_PATH": _chromium()}
    done = _run(["node", str(RENDERER), str(blocks_file)], env)
    assert done.returncode == 0, f"the renderer crashed:\n{done.stderr[-4000:]}"
    results: list[dict[str, Any]] = json.loads(done.stdout)
    assert [r["id"] for r in results] == [i for i, _ in sources]
    return results


@pytest.fixture(scope="module")
def doc_blocks() -> list[Block]:
    return mermaid_blocks(markdown_files())


@pytest.fixture(scope="module")
def rendered(doc_blocks: list[Block]) -> Iterator[dict[str, dict[str, Any]]]:
    """All diagrams of the docs plus two canaries (one good, one broken), in one run."""
    sources = [(b.where, b.body) for b in doc_blocks]
    sources += [("canary-ok", CANARY_OK), ("canary-broken", CANARY_BROKEN)]
    with tempfile.TemporaryDirectory() as tmp:
        yield {r["id"]: r for r in render(sources, Path(tmp))}


def test_every_mermaid_block_renders(
    doc_blocks: list[Block], rendered: dict[str, dict[str, Any]]
) -> None:
    assert doc_blocks, "no Mermaid diagrams found in the Markdown files"
    failures = [
        f"{b.where}: {rendered[b.where]['error']}"
        for b in doc_blocks
        if not rendered[b.where]["ok"]
    ]
    assert not failures, "Mermaid diagrams that do not render:\n\n" + "\n\n".join(failures)
    assert all(rendered[b.where]["bytes"] > 0 for b in doc_blocks)


def test_a_broken_diagram_is_reported_with_its_error(rendered: dict[str, dict[str, Any]]) -> None:
    """The check can fail: a syntax error is reported (and the run goes on past it)."""
    assert rendered["canary-ok"]["ok"] is True
    broken = rendered["canary-broken"]
    assert broken["ok"] is False
    assert "Parse error" in broken["error"]


def _kind(block: Block) -> str:
    lines = block.body.splitlines()
    if lines and lines[0].strip() == "---":  # front matter (title, config)
        end = next((i for i, ln in enumerate(lines[1:], 1) if ln.strip() == "---"), 0)
        lines = lines[end + 1 :]
    for line in lines:
        stripped = line.strip()
        if stripped and not stripped.startswith("%%"):
            return stripped.split()[0]
    return ""


def test_docs_use_every_diagram_kind_seed_004_names(doc_blocks: list[Block]) -> None:
    ours = [b for b in doc_blocks if b.path.relative_to(ROOT).parts[0] in {"README.md", "docs"}]
    kinds = {_kind(b) for b in ours}
    missing = [name for name, words in REQUIRED_KINDS.items() if not kinds & set(words)]
    assert not missing, f"diagram kinds missing from README.md and docs/: {missing}"


def test_block_extraction_follows_commonmark(tmp_path: Path) -> None:
    text = (
        "# t\n"
        "```mermaid\ngraph TD\n  A --> B\n```\n"
        "````markdown\n```mermaid\nnot a top-level block\n```\n````\n"
        "  ~~~ Mermaid title\n  sequenceDiagram\n    A->>B: hi\n  ~~~\n"
        "```python\nprint('x')\n```\n"
        "```mermaid\nunclosed\n"
    )
    path = tmp_path / "x.md"
    path.write_text(text, encoding="utf-8")
    blocks = fenced_blocks(path)
    mermaid = [b for b in blocks if b.lang == "mermaid"]
    assert [b.line for b in mermaid] == [2, 11, 18]
    assert mermaid[0].body == "graph TD\n  A --> B\n"
    assert mermaid[1].body == "sequenceDiagram\n  A->>B: hi\n"
    assert mermaid[2].body == "unclosed\n"
    assert [b.lang for b in blocks] == ["mermaid", "markdown", "mermaid", "python", "mermaid"]
    assert re.search(r"x\.md:11 \(mermaid block #2\)", mermaid[1].where)
