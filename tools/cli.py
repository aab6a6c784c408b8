"""Commands of this area for the `dev3000` command line (being built)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this area's commands to ``app``."""
    del app
