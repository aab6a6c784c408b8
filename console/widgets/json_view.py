"""A read-only, scrollable view of one object as highlighted JSON."""

from __future__ import annotations

import json
from typing import Any

from rich.json import JSON
from textual.containers import VerticalScroll
from textual.widgets import Static

from console.models import redact

__all__ = ["JsonView"]


class JsonView(VerticalScroll):
    """Shows ``data`` (redacted) as pretty JSON; ``show(None)`` shows a hint."""

    DEFAULT_CSS = """
    JsonView {
        border: round $primary 50%;
        padding: 0 1;
    }
    """

    def __init__(self, hint: str = "select a row to see its details", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._hint = hint
        self._body = Static(hint, classes="json-body")
        self.data: Any = None

    def compose(self) -> Any:
        yield self._body

    def show(self, data: Any, title: str | None = None) -> None:
        self.data = data
        if title is not None:
            self.border_title = title
        if data is None:
            self._body.update(self._hint)
            return
        text = json.dumps(redact(data), indent=2, default=str, ensure_ascii=False)
        self._body.update(JSON(text))
