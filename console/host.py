"""What a screen (or the palette) may ask of the console application.

Screens and the palette depend on this protocol, never on :mod:`console.app`; the app
satisfies it and imports the screens through :mod:`console.registry`. So the import
graph runs one way: app → registry → screens → host.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from console.commands import CommandTable
    from console.models import CircuitAction
    from console.store import ConsoleStore

__all__ = ["ConsoleHost"]


class ConsoleHost(Protocol):
    """The console app as its screens see it: settings, the store, and the actions that
    reach dev3000 (run by the app's workers)."""

    @property
    def store(self) -> ConsoleStore:
        """The last known data."""

    @property
    def url(self) -> str:
        """dev3000's base URL."""

    @property
    def api_key(self) -> str | None: ...

    @property
    def agent_url(self) -> str | None:
        """``--agent-url`` as given (``auto``, ``off`` or a URL)."""

    @property
    def readonly(self) -> bool:
        """Circuit control (and agent approvals) refused."""

    @property
    def frozen_clock(self) -> bool:
        """A fixed clock (snapshots): show no wall-clock times."""

    @property
    def logs_paused(self) -> bool: ...

    @property
    def pending_logs(self) -> int:
        """Lines held back while the tail is paused."""

    @property
    def command_table(self) -> CommandTable:
        """The ``:`` commands (screens' and the app's own)."""

    def now(self) -> datetime: ...

    def run_deep_check(self) -> None: ...

    def control_circuit(self, name: str, action: CircuitAction, reason: str) -> None:
        """Open / close / reset a breaker (the screen has already asked to confirm)."""

    def set_logs_paused(self, paused: bool) -> None: ...

    def fetch_trace(self, correlation_id: str) -> None:
        """Pull the lines of one correlation id into the log buffer."""

    async def run_command(self, text: str) -> None:
        """Run one ``:`` command."""
