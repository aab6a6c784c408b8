"""The ``?`` overlay: the keys of the current screen, the app's keys, and the commands."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from console.commands import CommandSpec

__all__ = ["HelpScreen"]


class HelpScreen(ModalScreen[None]):
    """Lists ``(key, description)`` rows and the ``:`` commands; any of escape, ``?`` or
    ``q`` closes it."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 90;
        max-height: 90%;
        border: thick $accent;
        background: $surface;
        padding: 0 1;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
        Binding("question_mark", "close", "Close", show=False),
        Binding("q", "close", "Close", show=False),
    ]

    def __init__(
        self, screen_title: str, keys: list[tuple[str, str]], commands: Iterable[CommandSpec]
    ) -> None:
        super().__init__()
        self._screen_title = screen_title
        self._keys = keys
        self._commands = tuple(commands)

    def compose(self) -> ComposeResult:
        keys = Table(title=f"Keys — {self._screen_title}", expand=True, show_edge=False)
        keys.add_column("key", style="bold cyan", no_wrap=True)
        keys.add_column("action")
        for key, description in self._keys:
            keys.add_row(key, description)
        commands = Table(title="Commands (type : then a command)", expand=True, show_edge=False)
        commands.add_column("command", style="bold cyan", no_wrap=True)
        commands.add_column("aliases", style="magenta")
        commands.add_column("does")
        for spec in self._commands:
            commands.add_row(f":{spec.name}", " ".join(f":{a}" for a in spec.aliases), spec.help)
        with VerticalScroll() as box:
            box.border_title = "Help"
            yield Static(keys)
            yield Static(commands)
            yield Static(
                "Mouse: click rows, tabs and buttons; wheel scrolls. "
                "ctrl+p opens the command palette.",
                classes="help-footer",
            )

    def action_close(self) -> None:
        self.dismiss(None)
