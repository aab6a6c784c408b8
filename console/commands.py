"""The ``:`` command language and its aliases (parsing only; the app runs them).

The commands are data: one :class:`CommandSpec` per command. The screens' commands come
from the screen registry (:mod:`console.registry`), the app's own (``help``, ``quit``)
from :data:`APP_COMMANDS`; a :class:`CommandTable` holds both and parses what is typed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

__all__ = ["APP_COMMANDS", "Command", "CommandError", "CommandSpec", "CommandTable"]


class CommandError(ValueError):
    """Unknown command, or a table whose names and aliases clash."""


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """One ``:`` command: its canonical name, its aliases and a line of help."""

    name: str
    aliases: tuple[str, ...] = ()
    help: str = ""

    @property
    def label(self) -> str:
        """``:circuits  (:c, :cb, …)`` — how the palette lists it."""
        if not self.aliases:
            return f":{self.name}"
        return f":{self.name}  ({', '.join(':' + a for a in self.aliases)})"


#: the commands the app itself runs (every other command opens a screen)
APP_COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec("help", ("?", "keys"), "Show the key bindings"),
    CommandSpec("quit", ("q", "q!", "exit"), "Quit the console"),
)


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    arg: str = ""


class CommandTable:
    """The commands in order; names and aliases are unique across all of them."""

    def __init__(self, specs: Iterable[CommandSpec]) -> None:
        self._specs = tuple(specs)
        self._aliases: dict[str, str] = {}
        for spec in self._specs:
            for word in (spec.name, *spec.aliases):
                taken = self._aliases.get(word.lower())
                if taken is not None:
                    raise CommandError(f"{word!r} of :{spec.name} is already :{taken}")
                self._aliases[word.lower()] = spec.name

    def __iter__(self) -> Iterator[CommandSpec]:
        return iter(self._specs)

    def __contains__(self, name: object) -> bool:
        return any(spec.name == name for spec in self._specs)

    def parse(self, text: str) -> Command:
        """``":circuits api"`` → ``Command("circuits", "api")``; a unique prefix of a name
        or alias works too. Raises :class:`CommandError`."""
        text = text.strip().removeprefix(":").strip()
        if not text:
            raise CommandError("empty command")
        head, _, arg = text.partition(" ")
        name = self._aliases.get(head.lower())
        if name is None:
            matches = {c for a, c in self._aliases.items() if a.startswith(head.lower())}
            if len(matches) != 1:
                known = ", ".join(spec.name for spec in self._specs)
                raise CommandError(f"unknown command {head!r} (commands: {known})")
            (name,) = matches
        return Command(name, arg.strip())
