"""Messages the app posts to the active screen when its data or connection changes."""

from __future__ import annotations

from typing import Literal

from textual.message import Message

from console.connection import ConnectionInfo

__all__ = ["ConnectionChanged", "StoreUpdated", "Topic"]

#: a part of the store; ``all`` means everything (a screen shown again, a recording loaded)
Topic = Literal["health", "topology", "circuits", "targets", "events", "logs", "all"]


class StoreUpdated(Message):
    """Some of the store changed; ``topics`` says which part (health, circuits, …)."""

    def __init__(self, topics: frozenset[Topic]) -> None:
        self.topics = topics
        super().__init__()


class ConnectionChanged(Message):
    """The REST link or the stream changed state."""

    def __init__(self, rest: ConnectionInfo, stream: ConnectionInfo) -> None:
        self.rest = rest
        self.stream = stream
        super().__init__()
