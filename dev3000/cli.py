"""The one ``dev3000`` command line.

Each area contributes its commands from its own module through a ``register(app)``
function listed in :data:`COMMAND_MODULES`, so the parts stay independent.
"""

from __future__ import annotations

import importlib

import typer

from guilde_core import __version__

app = typer.Typer(
    name="dev3000",
    help="guilde-diag: self-diagnostics for a running service stack (debug server on :3001).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: modules that add commands; each defines ``register(app: typer.Typer) -> None``
COMMAND_MODULES: tuple[str, ...] = (
    "dev3000.cli_config",  # config show|check (foundation)
    "servers.cli",  # mcp <server> (servers)
    "tools.cli",  # chaos …, demo (sandbox)
    "dev3000.cli_serve",  # serve, doctor (aggregator)
    "agent.cli",  # ask, chat, eval, agent web (agent)
    "console.cli",  # console (console)
    "guilde_core.resilience.cli",  # breakers …, deadletters list|replay (resilience)
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


for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(app)


def main() -> None:
    """Entry point of the ``dev3000`` console script."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
