"""``dev3000 deadletters list | replay`` (the breakers' commands are dev3000's:
``dev3000.cli_breakers``, where control goes through the one authorization decision)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import typer

deadletters_app = typer.Typer(help="List and replay dead letters.", no_args_is_help=True)


def fail(message: str, code: int = 1) -> None:
    """Print a redacted ``error: …`` to stderr and exit with ``code``."""
    from guilde_core.redaction import redact_text

    typer.echo(f"error: {redact_text(message)}", err=True)
    raise typer.Exit(code)


def dump(value: Any) -> str:
    """``value`` as indented, redacted JSON."""
    from guilde_core.redaction import redact

    return json.dumps(redact(value), indent=2, default=str)


@deadletters_app.command("list")
def list_letters(
    service: str | None = typer.Option(None, "--service", help="Only this service."),
    limit: int = typer.Option(50, "--limit", min=1, max=10000, help="Newest N."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Dead letters, newest first (payloads are stored redacted)."""
    from guilde_core.resilience.deadletter import list_dead_letters

    letters = [x.model_dump(mode="json") for x in asyncio.run(list_dead_letters(limit, service))]
    if as_json:
        typer.echo(dump(letters))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="dead letters")
    for col in ("id", "at", "service", "reason", "attempts", "error", "operation"):
        table.add_column(col)
    for x in letters:
        table.add_row(
            x["id"], x["at"], x["service"], x["reason"], str(x["attempts"]),
            x["error"][:60], x["operation"] or "",
        )  # fmt: skip
    Console().print(table)


@deadletters_app.command("replay")
def replay(letter_id: str = typer.Argument(..., help="Dead-letter id.")) -> None:
    """Run a dead letter's operation again ('module:function' handler); removed on success."""
    from guilde_core.errors import GuildeError
    from guilde_core.resilience.deadletter import replay_dead_letter

    try:
        result = asyncio.run(replay_dead_letter(letter_id))
    except GuildeError as exc:
        fail(exc.message)
        return
    except Exception as exc:  # the operation failed again: the letter stays
        fail(f"replay failed, dead letter kept: {type(exc).__name__}: {exc}")
        return
    typer.echo(dump({"replayed": letter_id, "result": result}))


def register(app: typer.Typer) -> None:
    app.add_typer(deadletters_app, name="deadletters")
