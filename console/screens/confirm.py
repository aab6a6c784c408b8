"""Confirmation of a destructive action, with the reason it is taken."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

__all__ = ["ConfirmScreen"]


class ConfirmScreen(ModalScreen[str | None]):
    """Dismisses with the reason typed (confirmed) or ``None`` (cancelled)."""

    DEFAULT_CSS = """
    ConfirmScreen {
        align: center middle;
    }
    ConfirmScreen > Vertical {
        width: 70;
        height: auto;
        border: thick $error;
        background: $surface;
        padding: 1 2;
    }
    ConfirmScreen #confirm-message { margin-bottom: 1; }
    ConfirmScreen #confirm-error { color: $error; height: auto; }
    ConfirmScreen Horizontal { height: auto; margin-top: 1; align-horizontal: right; }
    ConfirmScreen Button { margin-left: 2; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, message: str, *, action_label: str = "Confirm") -> None:
        super().__init__()
        self._title = title
        self._message = message
        self._action_label = action_label

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = self._title
            yield Static(self._message, id="confirm-message")
            yield Label("Reason (required):")
            yield Input(placeholder="why are you doing this?", id="confirm-reason")
            yield Static("", id="confirm-error")
            with Horizontal():
                yield Button("Cancel", id="confirm-cancel")
                yield Button(self._action_label, variant="error", id="confirm-ok")

    def on_mount(self) -> None:
        self.query_one("#confirm-reason", Input).focus()

    def _submit(self) -> None:
        reason = self.query_one("#confirm-reason", Input).value.strip()
        if not reason:
            self.query_one("#confirm-error", Static).update("A reason is required.")
            self.query_one("#confirm-reason", Input).focus()
            return
        self.dismiss(reason)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "confirm-ok":
            self._submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
