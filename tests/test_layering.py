"""The layering of the top-level packages, checked on the source with ``ast``.

Bottom to top (docs/architecture.md): a module imports only from its own package
or from packages below it, counting imports inside functions and ``TYPE_CHECKING`` blocks.
``tools.bench`` (benchmark scripts) sits above everything and may import anything. The agent
and the console are clients of dev3000: they import neither dev3000 nor servers. Within a
package no two modules import each other, directly or through others.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: bottom → top; a module may import from its own layer and the ones before it
LAYERS: tuple[str, ...] = (
    "guilde_core",
    "servers",
    "dev3000",
    "agent",
    "console",
    "tools",
    "evals",
    "guilde_diag",
    "tools.bench",
)
#: the top-level packages (every layer but the sub-package tools.bench)
PACKAGES = tuple(layer for layer in LAYERS if "." not in layer)

#: lower packages a client must not import even so: it reaches them over MCP/HTTP only
CLIENTS_OF: dict[str, frozenset[str]] = {
    "agent": frozenset({"dev3000", "servers"}),
    "console": frozenset({"dev3000", "servers"}),
}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the imported module (or the package a name was imported from)
    line: int


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "node_modules" not in path.parts:
                found[_module_name(path)] = path
    return found


SOURCES = _sources()


def _imports(module: str, text: str, *, is_package: bool = False) -> Iterator[Import]:
    """Every import of ``module`` (module level, in functions, under TYPE_CHECKING)."""
    for node in ast.walk(ast.parse(text, module)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            for alias in node.names:
                # ``from pkg import mod`` imports the module pkg.mod; ``from mod import name``
                # imports mod
                submodule = f"{source}.{alias.name}"
                yield Import(module, submodule if submodule in SOURCES else source, node.lineno)


IMPORTS: list[Import] = [
    imp
    for mod, path in SOURCES.items()
    for imp in _imports(
        mod, path.read_text(encoding="utf-8"), is_package=path.name == "__init__.py"
    )
]


def layer_of(module: str) -> int | None:
    """Index in :data:`LAYERS` of the deepest layer ``module`` belongs to, or None."""
    matches = [
        i for i, layer in enumerate(LAYERS) if module == layer or module.startswith(layer + ".")
    ]
    return max(matches, key=lambda i: len(LAYERS[i]), default=None)


def upward(imports: list[Import]) -> list[str]:
    """The imports that reach a layer above their module's, or that a client must not make."""
    out = []
    for imp in imports:
        own, other = layer_of(imp.module), layer_of(imp.target)
        if own is None or other is None:
            continue
        client_of = CLIENTS_OF.get(imp.module.split(".")[0], frozenset())
        if other > own or imp.target.split(".")[0] in client_of:
            out.append(f"{imp.module}:{imp.line} imports {imp.target}")
    return out


def circles(edges: Mapping[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def package_edges(package: str) -> dict[str, set[str]]:
    """module → modules of the same top-level package it imports."""
    edges: dict[str, set[str]] = {}
    for imp in IMPORTS:
        if imp.module.split(".")[0] != package or imp.target.split(".")[0] != package:
            continue
        if imp.target in SOURCES and imp.target != imp.module:
            edges.setdefault(imp.module, set()).add(imp.target)
    return edges


def test_the_checker_sees_imports_of_every_kind() -> None:
    """Relative, function-level and TYPE_CHECKING imports are all counted."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "from . import common\n"
        "from .health import logic\n"
        "if TYPE_CHECKING:\n"
        "    from dev3000.app import create_app\n"
        "def f():\n"
        "    import agent.cli\n"
    )
    found = {(i.target, i.line) for i in _imports("servers.probe", source)}
    assert {("servers.common", 2), ("servers.health.logic", 3)} <= found
    assert {("dev3000.app", 5), ("agent.cli", 7)} <= found
    above = upward([Import("servers.probe", t, n) for t, n in sorted(found)])
    assert sorted(above) == [
        "servers.probe:5 imports dev3000.app",
        "servers.probe:7 imports agent.cli",
    ]
    assert layer_of("tools.bench.bench_agent") == LAYERS.index("tools.bench")
    assert upward([Import("tools.bench.x", "guilde_diag.cli", 1)]) == []
    assert upward([Import("tools.harness", "evals.live", 1)]) != []
    assert upward([Import("agent.web", "dev3000.api.auth", 1)]) != []  # a client, though below
    assert upward([Import("console.app", "agent.runner", 1)]) == []


def test_the_checker_finds_a_circle() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_layers_cover_every_package() -> None:
    assert set(PACKAGES) <= set(LAYERS)
    assert {m.split(".")[0] for m in SOURCES} == set(PACKAGES)


def test_no_module_imports_a_layer_above_its_own() -> None:
    assert upward(IMPORTS) == []


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_circle_inside_a_package(package: str) -> None:
    found = circles(package_edges(package))
    assert found == [], f"import circles in {package}: {found}"
