"""The ``:`` command language and its aliases (parsing only; the app runs them)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["COMMANDS", "Command", "CommandError", "parse_command"]


class CommandError(ValueError):
    """Unknown command."""


#: canonical command → (aliases, help)
COMMANDS: dict[str, tuple[tuple[str, ...], str]] = {
    "dashboard": (("d", "dash", "home", "overview"), "Dashboard: health, breakers, events"),
    "health": (("h", "checks", "targets"), "Health checks and targets (arg: check name)"),
    "circuits": (("c", "cb", "breakers", "circuit"), "Circuit breakers (arg: name filter)"),
    "logs": (("l", "log", "tail"), "Live logs (arg: filter text)"),
    "timeline": (("t", "tl", "events", "ev"), "Timeline of events (arg: kind)"),
    "agent": (("a", "ask", "diagnose"), "Ask the diagnosis agent (arg: question)"),
    "help": (("?", "keys"), "Show the key bindings"),
    "quit": (("q", "q!", "exit"), "Quit the console"),
}

_ALIASES: dict[str, str] = {}
for _name, (_aliases, _help) in COMMANDS.items():
    _ALIASES[_name] = _name
    for _alias in _aliases:
        _ALIASES[_alias] = _name


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    arg: str = ""


def parse_command(text: str) -> Command:
    """``":circuits api"`` → ``Command("circuits", "api")``; raises :class:`CommandError`."""
    text = text.strip().removeprefix(":").strip()
    if not text:
        raise CommandError("empty command")
    head, _, arg = text.partition(" ")
    name = _ALIASES.get(head.lower())
    if name is None:
        matches = sorted({c for a, c in _ALIASES.items() if a.startswith(head.lower())})
        if len(matches) != 1:
            known = ", ".join(COMMANDS)
            raise CommandError(f"unknown command {head!r} (commands: {known})")
        name = matches[0]
    return Command(name, arg.strip())
