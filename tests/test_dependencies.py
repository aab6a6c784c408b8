"""The dependencies in pyproject.toml tell the truth.

* Every third-party module the project's packages import comes from a declared runtime
  dependency or one of its own sub-distributions (``psycopg-pool`` of the ``psycopg[pool]``
  we ask for, the ``fastmcp-slim`` the meta-package ``fastmcp`` stands for) — not from
  whatever else happens to be installed (``websockets`` through ``uvicorn[standard]``);
  the benchmark scripts (``tools/bench``) may also use the dev group.
* Every declared runtime dependency is imported by the packages somewhere.

Import names are mapped to distributions through the installed distributions' file lists
(``importlib.metadata``), so namespace packages (``langgraph.checkpoint.sqlite`` …) map to
the distribution that ships the module, not to every one sharing the name.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Iterable
from functools import cache
from importlib import metadata
from pathlib import Path

import pytest

from tests.test_layering import PACKAGES

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))

#: modules of optional extras (not installed by default); the extra must declare them
OPTIONAL_MODULES = {"langgraph.checkpoint.redis": "langgraph-checkpoint-redis"}

_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement(spec: str) -> tuple[str, set[str]]:
    """(normalized name, extras) of a requirement string."""
    match = _REQUIREMENT.match(spec)
    assert match is not None, spec
    extras = {e.strip() for e in (match.group(2) or "").split(",") if e.strip()}
    return normalize(match.group(1)), extras


@cache
def module_owners() -> dict[str, frozenset[str]]:
    """Dotted module name → the installed distributions that ship it."""
    owners: dict[str, set[str]] = {}
    for dist in metadata.distributions():
        name = normalize(dist.metadata["Name"])
        for file in dist.files or ():
            parts = list(file.parts)
            if not parts or parts[0] == ".." or parts[0].endswith((".dist-info", ".data")):
                continue
            last = parts[-1]
            if last.endswith(".py"):
                parts[-1] = last[:-3]
            elif last.endswith((".so", ".pyd")):
                parts[-1] = last.split(".")[0]
            else:
                continue
            if parts[-1] == "__init__":
                parts.pop()
            if parts:
                owners.setdefault(".".join(parts), set()).add(name)
    return {module: frozenset(names) for module, names in owners.items()}


def owner_of(module: str) -> frozenset[str]:
    """The distributions shipping ``module`` (its longest known prefix)."""
    owners = module_owners()
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        found = owners.get(".".join(parts[:end]))
        if found:
            return found
    return frozenset()


@cache
def shipping() -> frozenset[str]:
    """The installed distributions that ship at least one module (not meta-packages)."""
    return frozenset(name for names in module_owners().values() for name in names)


def _requires(dist: str, extras: set[str], *, unconditional: bool) -> list[tuple[str, set[str]]]:
    out: list[tuple[str, set[str]]] = []
    for spec in metadata.requires(dist) or []:
        _, _, marker = spec.partition(";")
        wanted = re.findall(r"extra\s*==\s*['\"]([^'\"]+)['\"]", marker)
        if (wanted and set(wanted) & extras) or (not wanted and unconditional):
            out.append(requirement(spec))
    return out


def allowed(specs: Iterable[str]) -> set[str]:
    """The declared distributions and their own sub-distributions (``<name>-…``) that the
    extras asked for or a meta-package brings."""
    todo = [requirement(s) for s in specs]
    seen: set[str] = set()
    while todo:
        name, extras = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            more = _requires(name, extras, unconditional=name not in shipping())
        except metadata.PackageNotFoundError:
            continue
        todo.extend((sub, e) for sub, e in more if sub.startswith(name + "-"))
    return seen


def _imports(path: Path) -> Iterable[tuple[str, int]]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from ((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            yield node.module, node.lineno


@cache
def third_party_imports(bench: bool) -> dict[str, list[str]]:
    """Third-party module → where it is imported (``path:line``): in the project's packages
    (``bench=False``) or in the benchmark scripts of ``tools/bench`` (``bench=True``)."""
    found: dict[str, list[str]] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "node_modules" in path.parts or bench != (path.parent == ROOT / "tools" / "bench"):
                continue
            for name, line in _imports(path):
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in PACKAGES or top == "__future__":
                    continue
                found.setdefault(name, []).append(f"{path.relative_to(ROOT)}:{line}")
    return found


RUNTIME = PYPROJECT["project"]["dependencies"]
OPTIONAL = [s for group in PYPROJECT["project"]["optional-dependencies"].values() for s in group]
DEV = PYPROJECT["dependency-groups"]["dev"]


def _undeclared(imports: dict[str, list[str]], permitted: set[str]) -> list[str]:
    optional = {requirement(s)[0] for s in OPTIONAL}
    out = []
    for module, places in sorted(imports.items()):
        extra = next((d for p, d in OPTIONAL_MODULES.items() if module.startswith(p)), None)
        if extra is not None:
            if normalize(extra) not in optional:
                out.append(f"{module} (optional {extra} not in optional-dependencies)")
            continue
        owners = owner_of(module)
        if not owners & permitted:
            out.append(f"{module} from {sorted(owners) or 'nothing installed'} at {places[0]}")
    return out


def test_the_mapping_follows_the_shipping_distribution() -> None:
    assert owner_of("langgraph.checkpoint.sqlite.aio") == {"langgraph-checkpoint-sqlite"}
    assert owner_of("yaml") == {"pyyaml"}
    assert "fastmcp-slim" in allowed(["fastmcp>=4"])  # a meta-package's implementation
    assert "fastmcp" not in shipping()
    assert "starlette" not in allowed(["fastapi"])  # not what a real package depends on
    assert "websockets" not in allowed(["uvicorn[standard]"])  # nor another's extra
    assert "psycopg-pool" in allowed(["psycopg[pool]"])  # an extra we ask for
    assert "psycopg-pool" not in allowed(["psycopg"])
    assert _undeclared({"yaml": ["x.py:1"]}, allowed(["httpx"])) == [
        "yaml from ['pyyaml'] at x.py:1"
    ]


def test_every_import_of_the_packages_is_declared() -> None:
    assert _undeclared(third_party_imports(bench=False), allowed(RUNTIME)) == []


def test_the_benchmarks_use_declared_or_dev_dependencies() -> None:
    assert _undeclared(third_party_imports(bench=True), allowed([*RUNTIME, *DEV])) == []


@pytest.mark.parametrize("spec", RUNTIME)
def test_every_runtime_dependency_is_imported(spec: str) -> None:
    name, _ = requirement(spec)
    imported = {d for module in third_party_imports(bench=False) for d in owner_of(module)}
    # a meta-package is imported through the distribution it stands for (fastmcp-slim)
    stands_for = {name} if name in shipping() else allowed([spec])
    assert stands_for & imported, f"{spec} is never imported"
