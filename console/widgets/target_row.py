"""One target on the dashboard: status colour, latency, and a sparkline of its history."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Sparkline, Static

from console.models import CheckResult
from console.style import STATUS_STYLE

__all__ = ["TargetRow"]


class TargetRow(Horizontal):
    """``● name  status  12.3 ms  why  ▁▂▅▇▃`` (``○ name  absent`` greyed: never answered,
    not counted)."""

    DEFAULT_CSS = """
    TargetRow {
        height: 1;
    }
    TargetRow > .label {
        width: 1fr;
        height: 1;
    }
    TargetRow > Sparkline {
        width: 24;
        height: 1;
    }
    """

    def __init__(self, check: CheckResult, history: Sequence[float]) -> None:
        super().__init__(classes=f"status-{check.status}")
        self.check = check
        self._history = list(history)

    def compose(self) -> ComposeResult:
        yield Static(self._label(), classes="label")
        yield Sparkline(self._history)

    def _label(self) -> Text:
        check = self.check
        style = "dim" if check.absent else STATUS_STYLE.get(check.status, "")
        text = Text()
        text.append("○ " if check.absent else "● ", style=style)
        text.append(f"{check.name[:24]:<24} ", style="dim" if check.absent else "")
        text.append(f"{'absent' if check.absent else check.status:<10}", style=style)
        latency = "—" if check.latency_ms is None else f"{check.latency_ms:.1f} ms"
        text.append(f"{latency:>12} ")
        if check.why and not check.absent:  # never a status without its reason
            text.append(check.why, style="red" if check.status == "unhealthy" else "yellow")
        text.no_wrap = True
        text.overflow = "ellipsis"
        return text

    def show(self, check: CheckResult, history: Sequence[float]) -> None:
        if check == self.check and list(history) == self._history:
            return
        self.check = check
        self._history = list(history)
        self.set_classes(f"status-{check.status}")
        self.query_one(".label", Static).update(self._label())
        self.query_one(Sparkline).data = self._history
