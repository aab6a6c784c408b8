"""The ``dev3000`` command: every package's commands, composed.

Each package contributes its commands through a ``register(app)`` function; this module,
above all of them, imports each one and wires in what crosses packages: the agent's
``diagnose`` tool on the aggregate MCP server of ``dev3000 serve`` and ``dev3000 mcp all``.
Heavy imports stay inside the commands, so ``dev3000 --help`` stays quick.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import typer

from agent import cli as agent_cli
from console import cli as console_cli
from dev3000 import cli_breakers, cli_config, cli_serve
from evals import cli as evals_cli
from guilde_core import __version__
from guilde_core.resilience import cli as resilience_cli
from servers import cli as servers_cli
from servers.registry import ServerArea
from tools import cli as tools_cli

if TYPE_CHECKING:
    from fastmcp import FastMCP

    from guilde_core.config import Settings
    from servers.context import ServerContext

__all__ = ["app", "main"]

app = typer.Typer(
    name="dev3000",
    help="guilde-diag: self-diagnostics for a running service stack (debug server on :3001).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dev3000 (guilde-diag) {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """guilde-diag: self-diagnostics for a running service stack."""


def diagnose_tool(server: FastMCP, settings: Settings) -> None:
    """The agent's ``diagnose`` tool on dev3000's aggregate MCP server."""
    from agent.mcp_tool import register_diagnose

    register_diagnose(server, settings)


def aggregate_server(settings: Settings | None, context: ServerContext | None = None) -> FastMCP:
    """``dev3000 mcp all``: the aggregate over stdio/SSE/HTTP, with the agent's tool."""
    del context  # the aggregate builds the context of the areas it mounts
    from dev3000.mcp_aggregate import build_standalone_server

    return build_standalone_server(settings, extra_tools=[diagnose_tool])


#: ``dev3000 mcp all``
ALL = ServerArea(
    "all", "every area, the timeline and the agent's diagnose tool in one server", aggregate_server
)


cli_config.register(app)  # config show|check
servers_cli.register(app, more_servers=[ALL])  # mcp <server>
tools_cli.register(app)  # chaos …, demo, sandbox, fakellm
cli_serve.register(app, extra_tools=[diagnose_tool])  # serve, doctor
agent_cli.register(app)  # ask, chat, agent web
evals_cli.register(app)  # eval
console_cli.register(app)  # console
cli_breakers.register(app)  # breakers list|set
resilience_cli.register(app)  # deadletters list|replay


def main() -> None:
    """Entry point of the ``dev3000`` console script: every log record of the command is
    redacted (:mod:`guilde_core.safelog`), then the command runs."""
    from guilde_core.safelog import install_safe_logging

    install_safe_logging()
    from guilde_core.config import ConfigurationInvalid

    try:
        app()
    except ConfigurationInvalid as exc:  # any command: name every bad variable, no traceback
        print(f"dev3000: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":  # pragma: no cover
    main()
