"""Every relative link in README.md and docs/ points to a file that exists (and, for a link
into a Markdown file with a #fragment, to a heading that exists)."""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path
from urllib.parse import unquote

import pytest
import yaml

from tests.docs.markdown import ROOT, Link, fenced_blocks, links, markdown_files

_EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//)", re.IGNORECASE)
_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)[ \t#]*$")


def _documents() -> list[Path]:
    docs = ROOT / "docs"
    return [p for p in markdown_files() if p == ROOT / "README.md" or p.is_relative_to(docs)]


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"`([^`]*)`", r"\1", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # link text only
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    text = path.read_text(encoding="utf-8")
    in_code: set[int] = set()
    for block in fenced_blocks(path, text):
        in_code.update(range(block.line, block.line + block.body.count("\n") + 2))
    seen: dict[str, int] = {}
    found = set()
    for number, line in enumerate(text.splitlines(), start=1):
        m = _HEADING.match(line)
        if not m or number in in_code:
            continue
        slug = github_slug(m.group(1))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    found.update(re.findall(r"<a\s+(?:name|id)=\"([^\"]+)\"", text))
    return frozenset(found)


@cache
def _tracked() -> frozenset[Path] | None:
    """Files git tracks (or has staged); None outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return frozenset((ROOT / name).resolve() for name in out.split("\0") if name)


def broken(link: Link) -> str | None:
    target = link.target
    if _EXTERNAL.match(target):
        return None
    path_part, _, fragment = target.partition("#")
    path_part = unquote(path_part.split("?", 1)[0])
    if path_part:
        base = ROOT if path_part.startswith("/") else link.path.parent
        resolved = (base / path_part.lstrip("/")).resolve()
        if not resolved.exists():
            return f"{target}: no such file"
        if not resolved.is_relative_to(ROOT):
            return f"{target}: points outside the repository"
        tracked = _tracked()
        if tracked is not None and resolved.is_file() and resolved not in tracked:
            return f"{target}: not committed (git add it, or a clean clone has no such file)"
    else:
        resolved = link.path
    if (
        fragment
        and resolved.suffix.lower() == ".md"
        and resolved.is_file()
        and fragment.lower() not in anchors(resolved)
    ):
        return f"{target}: no heading #{fragment} in {resolved.relative_to(ROOT)}"
    return None


def test_every_relative_link_resolves() -> None:
    documents = _documents()
    assert ROOT / "README.md" in documents
    problems = [
        f"{link.path.relative_to(ROOT)}:{link.line}: {why}"
        for doc in documents
        for link in links(doc)
        if (why := broken(link))
    ]
    assert not problems, "broken links:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    ("target", "ok"),
    [
        ("https://example.invalid/x", True),
        ("README.md", True),
        ("README.md#guilde-diag", True),
        ("README.md#no-such-heading", False),
        ("docs/no-such-file.md", False),
        ("../outside.md", False),
    ],
)
def test_link_checker_tells_good_from_bad(target: str, ok: bool) -> None:
    link = Link(ROOT / "README.md", target, 1)
    assert (broken(link) is None) is ok


def test_slugs_follow_github() -> None:
    assert github_slug("Failure modes & what we do") == "failure-modes--what-we-do"
    assert github_slug("`dev3000 serve` on :3001") == "dev3000-serve-on-3001"
    assert github_slug("Kubernetes (probes)") == "kubernetes-probes"


def test_link_extraction_skips_code(tmp_path: Path) -> None:
    path = tmp_path / "x.md"
    path.write_text(
        "[a](one.md) `[b](two.md)`\n```\n[c](three.md)\n```\n![img](four.png)\n[r]: five.md\n",
        encoding="utf-8",
    )
    assert [link.target for link in links(path)] == ["one.md", "four.png", "five.md"]


_TEST_REF = re.compile(r"`(tests/[\w/]+\.py)?::(\w+)`")


def test_docs_name_only_tests_that_exist() -> None:
    """The failure-mode table (and any `tests/x.py::test_y` in the docs) names real tests;
    a bare `::test_y` refers to the file named last before it on the same line."""
    problems = []
    for doc in _documents():
        for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), start=1):
            current: str | None = None
            for match in _TEST_REF.finditer(line):
                current = match.group(1) or current
                if current is None:
                    problems.append(
                        f"{doc.relative_to(ROOT)}:{number}: ::{match.group(2)} without a file"
                    )
                    continue
                path = ROOT / current
                name = match.group(2)
                tracked = _tracked()
                if not path.is_file() or (tracked is not None and path.resolve() not in tracked):
                    problems.append(
                        f"{doc.relative_to(ROOT)}:{number}: {current} does not exist (or is not committed)"
                    )
                elif not re.search(
                    rf"^\s*(?:async\s+)?def {name}\(", path.read_text(encoding="utf-8"), re.M
                ):
                    problems.append(
                        f"{doc.relative_to(ROOT)}:{number}: no test {name} in {current}"
                    )
    assert not problems, "docs name tests that do not exist:\n" + "\n".join(problems)


def test_every_alert_rule_has_a_runbook() -> None:
    rules_file = ROOT / "deploy" / "prometheus" / "alerts.yml"
    if not rules_file.is_file():  # pragma: no cover - before the aggregator's rules land
        pytest.skip("deploy/prometheus/alerts.yml not in this checkout")
    rules = yaml.safe_load(rules_file.read_text(encoding="utf-8"))
    alerts = [r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r]
    assert alerts
    runbooks = anchors(ROOT / "docs" / "operations.md")
    missing = [a for a in alerts if a.lower() not in runbooks]
    assert not missing, f"alerts without a runbook heading in docs/operations.md: {missing}"
