"""The base of every main screen: connection bar on top, key hints at the bottom."""

from __future__ import annotations

from typing import ClassVar, cast

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer

from console.host import ConsoleHost
from console.messages import ConnectionChanged, StoreUpdated, Topic
from console.store import ConsoleStore
from console.widgets.connection_bar import ConnectionBar

__all__ = ["ConsoleScreen"]


class ConsoleScreen(Screen[None]):
    """Subclasses compose their body and redraw it in :meth:`refresh_data`.

    A screen reaches the app only through :class:`~console.host.ConsoleHost` (its
    :attr:`console`); its title comes from its entry in :mod:`console.registry`."""

    #: store topics this screen shows (``StoreUpdated`` for others is ignored)
    TOPICS: ClassVar[frozenset[Topic]] = frozenset()

    def __init__(self) -> None:
        super().__init__()
        #: set by the registry entry that made the screen
        self.screen_title = ""

    @property
    def console(self) -> ConsoleHost:
        return cast(ConsoleHost, self.app)

    @property
    def store(self) -> ConsoleStore:
        return self.console.store

    def compose(self) -> ComposeResult:
        yield ConnectionBar(id="connection")
        yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        return iter(())

    def on_mount(self) -> None:
        self.update_connection()
        self.refresh_data(frozenset({"all"}))

    def on_screen_resume(self) -> None:
        self.update_connection()
        self.refresh_data(frozenset({"all"}))

    def on_store_updated(self, message: StoreUpdated) -> None:
        if "all" in message.topics or message.topics & self.TOPICS:
            self.refresh_data(message.topics)

    def on_connection_changed(self, message: ConnectionChanged) -> None:
        self.update_connection()

    def update_connection(self) -> None:
        store = self.store
        self.query_one(ConnectionBar).show(
            url=self.console.url,
            rest=store.connection,
            stream=store.stream,
            readonly=self.console.readonly,
            title=self.screen_title,
            updated_at=None if self.console.frozen_clock else store.updated_at,
        )
        self.set_class(store.connection.stale, "-stale")

    def refresh_data(self, topics: frozenset[Topic]) -> None:
        """Redraw from the store; ``topics`` says what changed."""

    def apply_argument(self, arg: str) -> None:
        """Handle the argument of a ``:command arg`` that opened this screen."""
