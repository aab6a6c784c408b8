"""The master switches (``DIAGNOSTIC_MODE``, ``DEV3000_ENABLED``) and the paths each one turns off (one table for the
middleware that enforces them, the start-up warning and ``dev3000 doctor``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["SWITCHES", "Switch", "disabled_by", "switches_off"]


@dataclass(frozen=True)
class Switch:
    variable: str  # DIAGNOSTIC_MODE
    field: str  # its Settings field
    what: str  # what is off, for people
    prefixes: tuple[str, ...]  # the paths it governs (and everything under them)

    def covers(self, path: str) -> bool:
        return any(path == p or path.startswith(p + "/") for p in self.prefixes)

    @property
    def off_text(self) -> str:
        return f"{self.what} is off ({self.variable}=false)"


SWITCHES = (
    Switch(
        "DIAGNOSTIC_MODE",
        "diagnostic_mode",
        "the diagnostic API",
        # the alert intake answers with diagnoses: the same API, under the same switch
        ("/api/v1/diag", "/api/v1/alerts", "/api/v1/investigations"),
    ),
    Switch(
        "DEV3000_ENABLED",
        "dev3000_enabled",
        "the dev3000 debug server's surfaces",
        (
            "/mcp",
            "/sse",
            "/messages",
            "/timeline",
            "/api/v1/timeline",
            "/api/v1/logs",
            "/api/v1/targets",
            "/api/v1/browser",
        ),
    ),
)


def switches_off(settings: Any) -> list[Switch]:
    """The switches ``settings`` turn off."""
    return [s for s in SWITCHES if not getattr(settings, s.field)]


def disabled_by(path: str, settings: Any) -> Switch | None:
    """The switch that turns ``path`` off, if any."""
    for switch in SWITCHES:
        if not getattr(settings, switch.field) and switch.covers(path):
            return switch
    return None
