"""Markdown helpers for the documentation tests: find the Markdown files, their top-level
fenced code blocks (Mermaid diagrams among them) and their relative links."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Block", "Link", "fenced_blocks", "links", "markdown_files", "mermaid_blocks"]

ROOT = Path(__file__).resolve().parents[2]
SKIP_DIRS = {
    ".git",
    ".venv",
    "node_modules",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    ".dev3000",
    "__snapshots__",
}

_FENCE_OPEN = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n]*)$")


@dataclass(frozen=True)
class Block:
    """One fenced code block: its info string's first word, body and 1-based opening line."""

    path: Path
    lang: str
    body: str
    line: int
    index: int  # 1-based among the blocks of the same language in the file

    @property
    def where(self) -> str:
        rel = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path
        return f"{rel}:{self.line} ({self.lang} block #{self.index})"


@dataclass(frozen=True)
class Link:
    path: Path
    target: str
    line: int


def markdown_files(root: Path = ROOT) -> list[Path]:
    """Every Markdown file of the repository (not dependencies, caches or snapshots)."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        found.extend(Path(dirpath) / n for n in sorted(filenames) if n.lower().endswith(".md"))
    return found


def fenced_blocks(path: Path, text: str | None = None) -> list[Block]:
    """Top-level fenced blocks (CommonMark rules: a fence closes with the same character, at
    least as long, and nothing after it; a block inside another block is not a block)."""
    lines = (path.read_text(encoding="utf-8") if text is None else text).splitlines()
    blocks: list[Block] = []
    counts: dict[str, int] = {}
    i = 0
    while i < len(lines):
        m = _FENCE_OPEN.match(lines[i])
        if not m or (m["fence"][0] == "`" and "`" in m["info"]):
            i += 1
            continue
        fence, indent = m["fence"], len(m["indent"])
        lang = (m["info"].split() or [""])[0].lower()
        close = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not close.match(lines[j]):
            line = lines[j]
            # CommonMark: remove up to the opening fence's indentation from content lines
            strip = min(indent, len(line) - len(line.lstrip(" ")))
            body.append(line[strip:])
            j += 1
        counts[lang] = counts.get(lang, 0) + 1
        blocks.append(Block(path, lang, "\n".join(body) + "\n", i + 1, counts[lang]))
        i = j + 1  # an unclosed fence runs to the end of the document
    return blocks


def mermaid_blocks(paths: list[Path]) -> list[Block]:
    return [b for p in paths for b in fenced_blocks(p) if b.lang == "mermaid"]


_INLINE_LINK = re.compile(
    r"(?<!\!)\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)"
)
_IMAGE_LINK = re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REF_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
_INLINE_CODE = re.compile(r"`+[^`]*`+")


def links(path: Path) -> list[Link]:
    """Link and image targets outside code blocks and code spans."""
    text = path.read_text(encoding="utf-8")
    in_code = {n for b in fenced_blocks(path, text) for n in _block_lines(b, text)}
    found: list[Link] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if number in in_code:
            continue
        plain = _INLINE_CODE.sub("", line)
        targets = [m.group(1) for m in _INLINE_LINK.finditer(plain)]
        targets += [m.group(1) for m in _IMAGE_LINK.finditer(plain)]
        if ref := _REF_DEF.match(plain):
            targets.append(ref.group(1))
        found.extend(Link(path, t, number) for t in targets)
    return found


def _block_lines(block: Block, text: str) -> Iterator[int]:
    # the opening fence, the body and the closing fence
    end = block.line + block.body.count("\n") + 1
    yield from range(block.line, end + 1)
