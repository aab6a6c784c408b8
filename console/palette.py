"""Command-palette provider (ctrl+p): the screens and the commands of ``:`` mode."""

from __future__ import annotations

from functools import partial
from typing import cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

from console.commands import CommandSpec
from console.host import ConsoleHost

__all__ = ["ConsoleCommands"]


class ConsoleCommands(Provider):
    """``:logs  (:l, :log, :tail)`` … matched fuzzily, aliases included; the entries are
    the app's command table (so every registered screen is listed)."""

    @property
    def _host(self) -> ConsoleHost:
        return cast(ConsoleHost, self.app)

    def _specs(self) -> tuple[CommandSpec, ...]:
        return tuple(self._host.command_table)

    async def _run(self, name: str) -> None:
        await self._host.run_command(name)

    async def discover(self) -> Hits:
        for spec in self._specs():
            yield DiscoveryHit(spec.label, partial(self._run, spec.name), help=spec.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for spec in self._specs():
            score = matcher.match(spec.label)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(spec.label),
                    partial(self._run, spec.name),
                    help=spec.help,
                )
