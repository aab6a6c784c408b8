"""The stack model as the console draws it (no Textual, no I/O).

dev3000's model (:class:`guilde_core.stack.StackModel`, from ``GET /api/v1/diag/topology``)
is a graph; the console shows it as a tree: each component under what depends on it — a
service's datastores, providers and other checks under the service, dev3000's breakers under
dev3000 — so a component several services need appears under each. The *failing path* is
every chain from a root to the deepest fault below it (:meth:`StackModel.deepest_fault`):
those rows are highlighted and expanded; every unhealthy row carries its reason; absent
components (never answered, not critical) are greyed and never on a failing path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.text import Text

if TYPE_CHECKING:
    from guilde_core.stack import Node, StackModel

__all__ = [
    "ABSENT_STYLE",
    "Row",
    "declared_targets",
    "failing_paths",
    "node_details",
    "node_label",
    "roots",
    "rows",
    "summary_lines",
    "why",
]

_STATUS_STYLE = {"healthy": "green", "degraded": "bold yellow", "unhealthy": "bold red"}
_RANK = {"healthy": 0, "degraded": 1, "unhealthy": 2}
ABSENT_STYLE = "dim"
_ICON = {"healthy": "●", "degraded": "▲", "unhealthy": "✖"}


@dataclass(frozen=True, slots=True)
class Row:
    """One row of the tree: ``path`` is the ids from the root to the node (unique per row,
    a component that several services need has a row under each)."""

    path: tuple[str, ...]
    node: Node
    on_path: bool
    #: the node's subtree holds a counted fault (the row starts expanded)
    expanded: bool
    #: the node is already an ancestor of this row (a dependency cycle): no children shown
    cycle: bool = False

    @property
    def key(self) -> str:
        return ">".join(self.path)

    @property
    def depth(self) -> int:
        return len(self.path) - 1


def roots(model: StackModel) -> list[Node]:
    """Components no counted component depends on: the entry points, faulty first (worst
    first), absent last, otherwise in the model's order."""
    top = [n for n in model.nodes if not any(d.counts for d in model.dependents(n.id))]
    order = {n.id: i for i, n in enumerate(model.nodes)}
    return sorted(top, key=lambda n: (n.absent, -_rank(n) if n.faulty else 0, order[n.id]))


def _rank(node: Node) -> int:
    return _RANK.get(node.status, 0)


def failing_paths(model: StackModel) -> list[list[Node]]:
    """For every root with a fault below it, the chain from the root to the deepest fault
    (worst chains first)."""
    chains: list[list[Node]] = []
    for root in roots(model):
        chain = model.deepest_fault(root.id)
        if chain:
            chains.append(chain)
    chains.sort(key=lambda c: -_rank(c[-1]))
    return chains


def _faulty_below(model: StackModel, node_id: str) -> bool:
    return any(n.faulty for n, _ in model.walk(node_id))


def rows(model: StackModel) -> list[Row]:
    """The tree's rows, depth first; children (what a node depends on) faulty first."""
    on_path = {n.id for chain in failing_paths(model) for n in chain}
    out: list[Row] = []
    order = {n.id: i for i, n in enumerate(model.nodes)}

    seen: set[str] = set()

    def visit(node: Node, path: tuple[str, ...]) -> None:
        seen.add(node.id)
        cycle = node.id in path[:-1]
        faulty = not cycle and _faulty_below(model, node.id)
        out.append(Row(path, node, node.id in on_path and not cycle, faulty, cycle))
        if cycle:
            return
        deps = sorted(
            model.dependencies(node.id),
            key=lambda d: (d.absent, -_rank(d) if d.faulty else 0, order[d.id]),
        )
        for dep in deps:
            visit(dep, (*path, dep.id))

    top = roots(model)
    for root in (n for n in top if not n.absent):
        visit(root, (root.id,))
    # what no entry point reaches (a dependency cycle): shown from its first component
    for node in model.nodes:
        if node.id not in seen and not node.absent and node not in top:
            visit(node, (node.id,))
    for root in (n for n in top if n.absent):
        visit(root, (root.id,))
    for node in model.nodes:
        if node.id not in seen:
            visit(node, (node.id,))
    return out


def why(node: Node) -> str:
    """The node's reason in one line (whitespace collapsed: a tree row and a summary line
    are one line each): its cause, else its error ('' when healthy)."""
    cause = node.cause
    text = cause.summary if cause is not None else node.error or ""
    return " ".join(text.split())


def node_label(node: Node, *, on_path: bool = False, cycle: bool = False) -> Text:
    """``✖ database  unhealthy  801 ms — latency 801 ms > 100 ms``; absent greyed,
    the failing path bold."""
    text = Text()
    if node.absent:
        text.append(f"○ {node.name}  absent", style=ABSENT_STYLE)
        text.append(" — never answered, not counted", style=ABSENT_STYLE)
        return text
    style = _STATUS_STYLE.get(node.status, "")
    text.append(f"{_ICON.get(node.status, '?')} ", style=style)
    text.append(node.name, style="bold underline" if on_path else "bold" if node.faulty else "")
    if node.kind not in ("service", "check"):
        text.append(f" ({node.kind})", style="dim")
    text.append(f"  {node.status}", style=style)
    if node.latency_ms is not None:
        text.append(f"  {node.latency_ms:.0f} ms", style="dim")
    if node.critical:
        text.append("  critical", style="dim")
    if cycle:
        text.append("  ↺ (already above)", style="dim")
    reason = why(node) if node.faulty else ""
    if reason:
        text.append(f" — {reason}", style="red" if node.status == "unhealthy" else "yellow")
    return text


def summary_lines(model: StackModel) -> list[Text]:
    """Why the stack has its status: one line per failing chain (``backend ← database:
    latency 801 ms > 100 ms``), or what was checked when nothing is wrong."""
    chains = failing_paths(model)
    out: list[Text] = []
    for chain in chains:
        culprit = chain[-1]
        line = Text()
        line.append(f"{_ICON.get(culprit.status, '?')} ", style=_STATUS_STYLE[culprit.status])
        line.append(" ← ".join(n.name for n in chain), style="bold")
        line.append(f": {why(culprit)}")
        out.append(line)
    if not out and model.status != "healthy":  # a fault no root reaches: list the faulty
        for node in model.explaining():
            out.append(Text(f"{node.id}: {why(node)}", style=_STATUS_STYLE[node.status]))
    if not out:
        counted = sum(1 for n in model.nodes if n.counts)
        absent = len(model.nodes) - counted
        line = Text(f"all {counted} counted components healthy", style="green")
        if absent:
            line.append(f" ({absent} absent, not counted)", style=ABSENT_STYLE)
        out.append(line)
    return out


def node_details(node: Node) -> dict[str, Any]:
    """One component as the details pane shows it: why first."""
    out: dict[str, Any] = {
        "id": node.id,
        "status": "absent (never answered, not counted)" if node.absent else node.status,
        "reasons": [r.model_dump(mode="json", exclude_defaults=True) for r in node.reasons],
        "kind": node.kind,
        "component": node.component,
        "critical": node.critical,
        "ever_up": node.ever_up,
        "latency_ms": node.latency_ms,
        "error": node.error,
        "url": node.url,
        "source": node.source,
        "details": node.details,
    }
    return {k: v for k, v in out.items() if v not in (None, [], {})}


#: where a target is declared (what only a compose file names is not a target)
_TARGET_SOURCES = ("builtin", "settings", "file", "registry")


def declared_targets(model: StackModel) -> list[Node]:
    """Every target dev3000 checks — one list, whichever source declared it (settings,
    targets file, runtime registry, built in): the model's top-level components."""
    return [n for n in model.nodes if n.parent is None and n.source in _TARGET_SOURCES]
