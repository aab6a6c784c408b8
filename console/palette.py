"""Command-palette provider (ctrl+p): the screens and the commands of ``:`` mode."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

from console.commands import COMMANDS

if TYPE_CHECKING:
    from console.app import ConsoleApp

__all__ = ["ConsoleCommands"]


class ConsoleCommands(Provider):
    """``Go to logs``, ``Help``, ``Quit`` … matched fuzzily, aliases included."""

    def _entries(self) -> list[tuple[str, str, str]]:
        entries: list[tuple[str, str, str]] = []
        for name, (aliases, text) in COMMANDS.items():
            label = f":{name}" + (f"  ({', '.join(':' + a for a in aliases)})" if aliases else "")
            entries.append((label, text, name))
        return entries

    async def _run(self, name: str) -> None:
        app = cast("ConsoleApp", self.app)
        await app.run_command(name)

    async def discover(self) -> Hits:
        for label, text, name in self._entries():
            yield DiscoveryHit(label, partial(self._run, name), help=text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for label, text, name in self._entries():
            score = matcher.match(label)
            if score > 0:
                yield Hit(score, matcher.highlight(label), partial(self._run, name), help=text)
