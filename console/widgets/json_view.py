"""A read-only, scrollable view of one object as highlighted JSON."""

from __future__ import annotations

import json

from rich.json import JSON
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from console.models import JsonObject, redact

__all__ = ["JsonView"]


class JsonView(VerticalScroll):
    """Shows ``data`` (redacted) as pretty JSON; ``show(None)`` shows a hint."""

    DEFAULT_CSS = """
    JsonView {
        border: round $primary 50%;
        padding: 0 1;
    }
    """

    def __init__(
        self,
        hint: str = "select a row to see its details",
        *,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self._hint = hint
        self._body = Static(hint, classes="json-body")
        self.data: JsonObject | None = None

    def compose(self) -> ComposeResult:
        yield self._body

    def show(self, data: JsonObject | None, title: str | None = None) -> None:
        self.data = data
        if title is not None:
            self.border_title = title
        if data is None:
            self._body.update(self._hint)
            return
        text = json.dumps(redact(data), indent=2, default=str, ensure_ascii=False)
        self._body.update(JSON(text))
