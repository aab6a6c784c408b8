"""``dev3000 mcp <area> --transport stdio|sse|http [--host --port]``: run one MCP server.

The areas are :data:`servers.registry.AREAS`. The ``dev3000`` command serves more beside
them through ``register(app, more_servers=...)`` (``all``: dev3000's aggregate) — the
command accepts every name.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal

import typer

from servers.registry import AREAS, ServerArea

if TYPE_CHECKING:
    from fastmcp import FastMCP
    from starlette.middleware import Middleware

    from guilde_core.config import Settings

__all__ = ["TRANSPORTS", "Transport", "build", "guard_middleware", "register", "run_server"]

Transport = Literal["stdio", "sse", "http"]
TRANSPORTS: tuple[Transport, ...] = ("stdio", "sse", "http")


def _transport(name: str) -> Transport | None:
    return next((t for t in TRANSPORTS if t == name), None)


def _servers(more: Sequence[ServerArea] = ()) -> Mapping[str, ServerArea]:
    return {**AREAS, **{area.name: area for area in more}}


def build(area: str, settings: Settings | None = None) -> FastMCP:
    """The FastMCP server of ``area`` (a name of :data:`~servers.registry.AREAS`)."""
    return AREAS[area].build(settings, None)


def run_server(
    area: str,
    transport: Transport = "stdio",
    host: str | None = None,
    port: int | None = None,
    more_servers: Sequence[ServerArea] = (),
) -> None:
    """Build and run one server; logs go to stderr (stdout is the protocol over stdio)."""
    from guilde_core.config import load_settings
    from guilde_core.safelog import install_safe_logging
    from servers.common import log_to_stderr

    settings = load_settings()
    install_safe_logging()
    log_to_stderr("WARNING" if transport == "stdio" else settings.dev3000_log_level)
    if settings.logfire_write_token is not None or settings.sentry_dsn_value is not None:
        from guilde_core.observability import setup_observability

        setup_observability(settings)
    server = _servers(more_servers)[area].build(settings, None)
    if transport == "stdio":
        server.run("stdio", show_banner=False)
        return
    bind = host or settings.dev3000_host
    server.run(
        transport,
        show_banner=False,
        host=bind,
        port=port or settings.dev3000_port,
        middleware=guard_middleware(settings, bind, transport),
        host_origin_protection=False,  # the Host/Origin decision is guard_middleware's
    )


def guard_middleware(settings: Settings, bind: str, transport: Transport) -> list[Middleware]:
    """What protects an MCP server served over HTTP on its own, as dev3000 protects /mcp and
    /sse: the Host/Origin check (with request ids and a problem for any crash), then the
    API-key guard that leaves each request's caller for the control tools' decision."""
    from starlette.middleware import Middleware

    from guilde_core.http.auth import AuthGuard, Keyring
    from guilde_core.http.hosts import HostPolicy
    from guilde_core.http.middleware import ApiMiddleware

    keyring = Keyring.from_settings(settings, bind_host=bind)
    hosts = HostPolicy.from_settings(settings, bind_host=bind)
    return [
        Middleware(
            ApiMiddleware, limiter=lambda: None, keyring=lambda: keyring, hosts=lambda: hosts
        ),
        Middleware(AuthGuard, lambda: keyring, surface="mcp-sse" if transport == "sse" else "mcp"),
    ]


def register(app: typer.Typer, *, more_servers: Sequence[ServerArea] = ()) -> None:
    """Add ``mcp`` to the ``dev3000`` command line; ``more_servers`` are served beside the
    areas of :data:`~servers.registry.AREAS`."""
    servers = _servers(more_servers)
    listing = "\n\n".join(f"{a.name}: {a.description}" for a in servers.values())

    @app.command("mcp", epilog=listing)
    def mcp_command(
        area: str = typer.Argument(
            ..., help="Which server: " + " | ".join(servers), metavar="SERVER"
        ),
        transport: str | None = typer.Option(
            None, "--transport", "-t", help="stdio | sse | http (default: MCP_TRANSPORT)."
        ),
        host: str | None = typer.Option(None, "--host", help="Bind address (sse/http)."),
        port: int | None = typer.Option(None, "--port", help="Port (sse/http).", min=1, max=65535),
    ) -> None:
        """Run one diagnostic MCP server (health, circuits, logs, system …)."""
        if area not in servers:
            typer.echo(
                f"unknown server {area!r}; choose one of: {', '.join(servers)}",
                err=True,
            )
            raise typer.Exit(2)
        if transport is None:
            from guilde_core.config import ConfigurationInvalid, load_settings

            try:
                transport = load_settings().mcp_transport
            except ConfigurationInvalid as exc:  # MCP_TRANSPORT=websocket among others
                typer.echo(f"dev3000 mcp: {exc}", err=True)
                raise typer.Exit(2) from None
        chosen = _transport(transport)
        if chosen is None:
            typer.echo(
                f"unsupported transport {transport!r}; use one of: {', '.join(TRANSPORTS)}",
                err=True,
            )
            raise typer.Exit(2)
        try:
            run_server(area, chosen, host, port, more_servers)
        except KeyboardInterrupt:
            sys.exit(0)
