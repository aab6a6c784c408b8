"""The base of every main screen: connection bar on top, key hints at the bottom."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer

from console.messages import ConnectionChanged, StoreUpdated, Topic
from console.store import ConsoleStore
from console.widgets.connection_bar import ConnectionBar

if TYPE_CHECKING:
    from console.app import ConsoleApp

__all__ = ["ConsoleScreen"]


class ConsoleScreen(Screen[None]):
    """Subclasses compose their body and redraw it in :meth:`refresh_data`."""

    SCREEN_TITLE: ClassVar[str] = ""
    #: store topics this screen shows (``StoreUpdated`` for others is ignored)
    TOPICS: ClassVar[frozenset[Topic]] = frozenset()

    @property
    def console(self) -> ConsoleApp:
        return cast("ConsoleApp", self.app)

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
            title=self.SCREEN_TITLE,
            updated_at=None if self.console.frozen_clock else store.updated_at,
        )
        self.set_class(store.connection.stale, "-stale")

    def refresh_data(self, topics: frozenset[Topic]) -> None:
        """Redraw from the store; ``topics`` says what changed."""

    def apply_argument(self, arg: str) -> None:
        """Handle the argument of a ``:command arg`` that opened this screen."""
