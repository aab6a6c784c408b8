"""Colours shared by the widgets (status, severity, breaker state)."""

from __future__ import annotations

from rich.text import Text

__all__ = ["CIRCUIT_STYLE", "SEVERITY_STYLE", "STATUS_STYLE", "plain", "styled"]

STATUS_STYLE = {
    "healthy": "bold green",
    "degraded": "bold yellow",
    "unhealthy": "bold red",
    "unknown": "dim",
}
CIRCUIT_STYLE = {
    "closed": "green",
    "half-open": "bold yellow",
    "open": "bold red",
    "disabled": "dim",
    "unknown": "dim",
}
SEVERITY_STYLE = {
    "debug": "dim",
    "info": "green",
    "warning": "yellow",
    "error": "bold red",
    "critical": "bold white on red",
}


def plain(value: object, style: str = "") -> Text:
    """``value`` as literal text: server and user strings are never parsed as markup."""
    return Text("" if value is None else str(value), style=style)


def styled(value: str, table: dict[str, str]) -> Text:
    """``value`` coloured from ``table``."""
    return Text(value, style=table.get(value, ""))
