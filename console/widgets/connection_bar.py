"""The always-visible connection line: URL, REST state, stream state, staleness."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.widgets import Static

from console.connection import ConnectionInfo, ConnectionState

__all__ = ["ConnectionBar", "describe"]

_ICON = {
    ConnectionState.CONNECTING: ("◌ connecting", "yellow"),
    ConnectionState.CONNECTED: ("● connected", "green"),
    ConnectionState.RECONNECTING: ("⟳ reconnecting", "red"),
}


def describe(info: ConnectionInfo) -> tuple[str, str]:
    """``(text, colour)`` of one link's state."""
    label, colour = _ICON[info.state]
    if info.state is ConnectionState.RECONNECTING:
        label += f" (attempt {info.attempt}"
        if info.retry_in is not None:
            label += f", retry in {info.retry_in:.1f}s"
        label += ")"
    return label, colour


class ConnectionBar(Static):
    """One line at the top of every screen."""

    DEFAULT_CSS = """
    ConnectionBar {
        height: 1;
        background: $boost;
        padding: 0 1;
    }
    ConnectionBar.-stale {
        background: $error 30%;
    }
    """

    def show(
        self,
        *,
        url: str,
        rest: ConnectionInfo,
        stream: ConnectionInfo,
        readonly: bool,
        title: str,
        updated_at: datetime | None = None,
    ) -> None:
        text = Text()
        text.append(f" {title} ", style="bold reverse")
        if readonly:
            text.append(" read-only ", style="bold magenta")
        text.append(f"  {url}  ")
        label, colour = describe(rest)
        text.append(label, style=f"bold {colour}")
        text.append("  stream: ")
        s_label, s_colour = describe(stream)
        text.append(s_label.removeprefix("● ").removeprefix("◌ "), style=s_colour)
        if rest.stale and rest.stale_since is not None:
            text.append(f"  STALE since {rest.stale_since:%H:%M:%S}", style="bold yellow")
            if rest.error:
                text.append(f" — {rest.error[:60]}", style="yellow")
        elif updated_at is not None:
            text.append(f"  updated {updated_at:%H:%M:%S}", style="dim")
        self.set_class(rest.stale and rest.stale_since is not None, "-stale")
        self.update(text)
