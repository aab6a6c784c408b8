"""A one-line prompt at the bottom of the screen (``:`` commands, jump to time, trace id)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen
from textual.widgets import Input

__all__ = ["PromptScreen"]


class PromptScreen(ModalScreen[str | None]):
    """Dismisses with the text entered, or ``None`` on escape."""

    DEFAULT_CSS = """
    PromptScreen {
        align: left bottom;
        background: $background 0%;
    }
    PromptScreen > Input {
        dock: bottom;
        width: 100%;
        margin-bottom: 1;
        border: tall $accent;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, prompt: str, *, value: str = "", placeholder: str = "") -> None:
        super().__init__()
        self._prompt = prompt
        self._value = value
        self._placeholder = placeholder

    def compose(self) -> ComposeResult:
        field = Input(value=self._value, placeholder=self._placeholder, id="prompt-input")
        field.border_title = self._prompt
        yield field

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
