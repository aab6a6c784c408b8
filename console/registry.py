"""THE list of the console's main screens.

One :class:`ScreenEntry` per screen — name, screen class (or factory), key, title,
``:`` aliases and a line of help. Everything else is derived from it by the app: the
modes, the number-key bindings (and their footer labels), the ``:`` commands, the
``ctrl+p`` palette's entries and the ``?`` help's command table. Adding a screen is one
module under ``console/screens/`` and one entry here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from console.commands import APP_COMMANDS, CommandSpec, CommandTable
from console.screens.base import ConsoleScreen
from console.screens.circuits import CircuitsScreen
from console.screens.dashboard import DashboardScreen
from console.screens.health import HealthScreen
from console.screens.logs import LogsScreen
from console.screens.timeline import TimelineScreen

__all__ = ["SCREENS", "ScreenEntry", "ScreenRegistry"]

#: a screen's name is a mode name, an action argument and a ``:`` command
_NAME = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True, slots=True)
class ScreenEntry:
    """One main screen of the console."""

    #: mode name and ``:`` command (``:logs``)
    name: str
    #: a :class:`ConsoleScreen` subclass, or a function returning a new screen (to import
    #: a slow screen on first use)
    screen: Callable[[], ConsoleScreen]
    #: the key that shows it (``"1"``)
    key: str
    #: shown in the connection bar, the help overlay and (unless ``footer``) the footer
    title: str
    #: other words for its ``:`` command
    aliases: tuple[str, ...] = ()
    #: one line for the help overlay and the palette (say what ``:name arg`` does)
    help: str = ""
    #: a shorter footer label, when the title is too long for it
    footer: str = ""

    def create(self) -> ConsoleScreen:
        """A new screen of this entry, titled."""
        screen = self.screen()
        screen.screen_title = self.title
        return screen

    @property
    def command(self) -> CommandSpec:
        return CommandSpec(self.name, self.aliases, self.help)


class ScreenRegistry:
    """Screens in key order; names, keys and command words are unique (``ValueError``)."""

    def __init__(self, entries: Iterable[ScreenEntry]) -> None:
        self._entries = tuple(entries)
        for entry in self._entries:
            if not _NAME.fullmatch(entry.name):
                raise ValueError(f"screen name {entry.name!r} is not a word like 'logs'")
        keys = [entry.key for entry in self._entries]
        if len(set(keys)) != len(keys):
            raise ValueError(f"two screens share a key: {keys}")
        # names and aliases must not clash with each other nor with the app's commands
        self._commands = CommandTable([*(entry.command for entry in self._entries), *APP_COMMANDS])

    def __iter__(self) -> Iterator[ScreenEntry]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return any(entry.name == name for entry in self._entries)

    def __getitem__(self, name: str) -> ScreenEntry:
        for entry in self._entries:
            if entry.name == name:
                return entry
        raise KeyError(name)

    @property
    def commands(self) -> CommandTable:
        """The ``:`` commands: one per screen (in key order), then ``help`` and ``quit``."""
        return self._commands

    def with_screen(self, entry: ScreenEntry) -> ScreenRegistry:
        """A registry with ``entry`` added after the others."""
        return ScreenRegistry([*self._entries, entry])


def _agent_screen() -> ConsoleScreen:
    """The agent screen, imported on first use (Markdown and the agent load slowly)."""
    from console.screens.agent import AgentScreen

    return AgentScreen()


SCREENS = ScreenRegistry(
    [
        ScreenEntry(
            name="dashboard",
            screen=DashboardScreen,
            key="1",
            title="Dashboard",
            footer="Dash",
            aliases=("d", "dash", "home", "overview"),
            help="Dashboard: health, breakers, events",
        ),
        ScreenEntry(
            name="health",
            screen=HealthScreen,
            key="2",
            title="Health",
            aliases=("h", "checks", "targets"),
            help="Health checks and targets (arg: check name)",
        ),
        ScreenEntry(
            name="circuits",
            screen=CircuitsScreen,
            key="3",
            title="Circuits",
            aliases=("c", "cb", "breakers", "circuit"),
            help="Circuit breakers (arg: name filter)",
        ),
        ScreenEntry(
            name="logs",
            screen=LogsScreen,
            key="4",
            title="Logs",
            aliases=("l", "log", "tail"),
            help="Live logs (arg: filter text)",
        ),
        ScreenEntry(
            name="timeline",
            screen=TimelineScreen,
            key="5",
            title="Timeline",
            aliases=("t", "tl", "events", "ev"),
            help="Timeline of events (arg: kind)",
        ),
        ScreenEntry(
            name="agent",
            screen=_agent_screen,
            key="6",
            title="Agent",
            aliases=("a", "ask", "diagnose"),
            help="Ask the diagnosis agent (arg: question)",
        ),
    ]
)
