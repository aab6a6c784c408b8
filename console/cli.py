"""``dev3000 console [--url] [--api-key] [--readonly] [--refresh 2.0] [--agent-url URL]``."""

from __future__ import annotations

import os

import typer

__all__ = ["register"]


def _default_url() -> str:
    port = os.environ.get("DEV3000_PORT", "3001")
    return f"http://127.0.0.1:{port}"


def register(app: typer.Typer) -> None:
    """Add ``console`` to the ``dev3000`` command line."""

    @app.command("console")
    def console(
        url: str = typer.Option(
            None,
            "--url",
            envvar="DEV3000_URL",
            help="dev3000 base URL (default http://127.0.0.1:$DEV3000_PORT).",
        ),
        api_key: str = typer.Option(
            None,
            "--api-key",
            envvar="DEV3000_API_KEY",
            help="API key sent as X-API-Key (needs read+control to act on circuits).",
        ),
        readonly: bool = typer.Option(
            False, "--readonly", help="Watch only: circuit control is hidden and refused."
        ),
        refresh: float = typer.Option(
            2.0, "--refresh", min=0.2, max=3600, help="Seconds between refreshes."
        ),
        stream: str = typer.Option(
            "ws", "--stream", help="Event stream transport: ws (default) or sse."
        ),
        agent_url: str = typer.Option(
            "auto",
            "--agent-url",
            help="agent-web base URL for the Agent screen (sessions over its REST API, "
            "progress over its WebSocket). 'auto': the settings' DEV3000_AGENT_URL; 'off': "
            "always run the agent inside the console. When agent-web does not answer, the "
            "agent runs inside the console over dev3000's /mcp (the screen says which).",
        ),
    ) -> None:
        """Open the Textual console (k9s-style TUI) on a running dev3000.

        Keys: the number keys switch screens (the footer names them), ':' command mode,
        '?' help (keys and commands), ctrl+p palette, q quit.
        """
        from console.app import ConsoleApp

        if stream not in ("ws", "sse"):
            raise typer.BadParameter("--stream must be ws or sse")
        ConsoleApp(
            url or _default_url(),
            api_key=api_key,
            readonly=readonly,
            refresh=refresh,
            stream_transport=stream,
            agent_url=agent_url,
        ).run()
