"""The stack model as a tree: each component under what depends on it, the failing path
highlighted and expanded, the reason on every unhealthy row, absent components greyed.

Rows come from :func:`console.stackview.rows`; a row's data is its key (the ids from the
root, joined by ``>``). Redrawing keeps the rows when the structure is unchanged (labels
only), so the cursor and what the user expanded survive the poller's refreshes."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual.binding import Binding, BindingType
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from console.stackview import Row, node_label, rows

if TYPE_CHECKING:
    from guilde_core.stack import Node, StackModel

__all__ = ["StackTree"]


class StackTree(Tree[str]):
    """``enter`` selects a component (its details are shown beside); ``space`` expands or
    collapses it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "toggle_node", "Expand", show=False),
    ]

    DEFAULT_CSS = """
    StackTree { background: $surface; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("stack", id=id)
        self.show_root = False
        self.auto_expand = False  # enter shows details; space expands
        self.guide_depth = 3
        self.stack: StackModel | None = None
        self.shown: list[Row] = []
        self._by_key: dict[str, TreeNode[str]] = {}

    def show_model(self, model: StackModel | None) -> None:
        """Draw ``model`` (a hint when there is none)."""
        self.stack = model
        if model is None:
            if self.shown or not self.root.children:
                self.clear()
                self._by_key.clear()
                self.shown = []
                self.root.add_leaf("waiting for dev3000's model of the stack…")
            return
        new = rows(model)
        if [r.key for r in new] == [r.key for r in self.shown]:
            for row in new:
                self._by_key[row.key].set_label(node_label(row.node, on_path=row.on_path,
                                                          cycle=row.cycle))  # fmt: skip
            self.shown = new
            return
        selected = self.selected_key()
        self.clear()
        self._by_key.clear()
        for row in new:
            parent = self._by_key.get(">".join(row.path[:-1]), self.root)
            label = node_label(row.node, on_path=row.on_path, cycle=row.cycle)
            has_kids = not row.cycle and bool(model.dependencies(row.node.id))
            if has_kids:
                node = parent.add(label, row.key, expand=row.expanded)
            else:
                node = parent.add_leaf(label, row.key)
            self._by_key[row.key] = node
        self.shown = new
        if selected in self._by_key:
            self.move_cursor(self._by_key[selected])

    def selected_key(self) -> str | None:
        node = self.cursor_node
        return node.data if node is not None else None

    def selected(self) -> Node | None:
        """The component under the cursor."""
        key = self.selected_key()
        if self.stack is None or key is None:
            return None
        return self.stack.get(key.rsplit(">", 1)[-1])

    def label_of(self, key: str) -> str:
        """The text of the row ``key`` as shown ('' when there is no such row)."""
        node = self._by_key.get(key)
        return str(node.label) if node is not None else ""

    def key_of(self, node_id: str) -> str | None:
        """The first row that shows ``node_id``."""
        return next((r.key for r in self.shown if r.node.id == node_id), None)

    def select(self, key: str) -> None:
        """Move the cursor to the row ``key`` (expanding its ancestors)."""
        node = self._by_key.get(key)
        if node is None:
            return
        parent = node.parent
        while parent is not None:
            parent.expand()
            parent = parent.parent
        self.move_cursor(node)
