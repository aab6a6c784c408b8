"""``dev3000 mcp <area> --transport stdio|sse|http [--host --port]``: run one MCP server.

:data:`SERVER_BUILDERS` maps an area name to ``"module:function"``; the function is called
with the settings and returns a FastMCP server. The ``dev3000`` command adds more servers
through ``register(app, more_servers=...)`` (``all``: the aggregate) — the command accepts
every name.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

import typer

__all__ = ["SERVER_BUILDERS", "ServerBuilder", "build", "register", "run_server"]

#: ``builder(settings) -> FastMCP``
ServerBuilder = Callable[[Any], Any]

#: area → "module:function(settings) -> FastMCP"
SERVER_BUILDERS: dict[str, str] = {
    "health": "servers.health.server:build_server",
    "circuits": "servers.circuits.server:build_server",
    "logs": "servers.logs.server:build_server",
    "system": "servers.system.server:build_server",
    "browser": "servers.browser.server:build_standalone_server",
}

TRANSPORTS = ("stdio", "sse", "http")


def build(area: str, settings: Any = None) -> Any:
    """The FastMCP server of ``area`` (a key of :data:`SERVER_BUILDERS`)."""
    if area not in SERVER_BUILDERS:
        raise KeyError(area)
    module_name, _, function = SERVER_BUILDERS[area].partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, function or "build_server")(settings)


def run_server(
    area: str,
    transport: str = "stdio",
    host: str | None = None,
    port: int | None = None,
    more_servers: Mapping[str, ServerBuilder] | None = None,
) -> None:
    """Build and run one server; logs go to stderr (stdout is the protocol over stdio)."""
    from guilde_core.config import load_settings
    from servers.common import log_to_stderr

    settings = load_settings()
    log_to_stderr("WARNING" if transport == "stdio" else settings.dev3000_log_level)
    if settings.logfire_write_token is not None or settings.sentry_dsn_value is not None:
        from guilde_core.observability import setup_observability

        setup_observability(settings)
    extra = (more_servers or {}).get(area)
    server = extra(settings) if extra is not None else build(area, settings)
    if transport == "stdio":
        server.run("stdio", show_banner=False)
        return
    server.run(
        transport,
        show_banner=False,
        host=host or settings.dev3000_host,
        port=port or settings.dev3000_port,
    )


def register(app: typer.Typer, *, more_servers: Mapping[str, ServerBuilder] | None = None) -> None:
    """Add ``mcp`` to the ``dev3000`` command line; ``more_servers`` are served beside the
    areas of :data:`SERVER_BUILDERS` (name → ``builder(settings)``)."""
    names = [*SERVER_BUILDERS, *(more_servers or {})]

    @app.command("mcp")
    def mcp_command(
        area: str = typer.Argument(
            ..., help="Which server: " + " | ".join(names), metavar="SERVER"
        ),
        transport: str | None = typer.Option(
            None, "--transport", "-t", help="stdio | sse | http (default: MCP_TRANSPORT)."
        ),
        host: str | None = typer.Option(None, "--host", help="Bind address (sse/http)."),
        port: int | None = typer.Option(None, "--port", help="Port (sse/http).", min=1, max=65535),
    ) -> None:
        """Run one diagnostic MCP server (health, circuits, logs, system …)."""
        if area not in names:
            typer.echo(
                f"unknown server {area!r}; choose one of: {', '.join(names)}",
                err=True,
            )
            raise typer.Exit(2)
        if transport is None:
            from guilde_core.config import load_settings

            transport = load_settings().mcp_transport
        if transport not in TRANSPORTS:
            typer.echo(
                f"unsupported transport {transport!r}; use one of: {', '.join(TRANSPORTS)}",
                err=True,
            )
            raise typer.Exit(2)
        try:
            run_server(area, transport, host, port, more_servers)
        except KeyboardInterrupt:
            sys.exit(0)
