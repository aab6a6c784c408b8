"""``dev3000 breakers …`` and ``dev3000 deadletters …``.

Breakers are read from the process-wide registry: with ``CIRCUIT_BREAKER_REDIS_URL`` that is
the shared state of every process; without it a fresh CLI process only knows its own (empty)
in-memory registry, which the commands say.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import typer

from guilde_core.resilience._breaker import BreakerRegistry

breakers_app = typer.Typer(help="Inspect and control circuit breakers.", no_args_is_help=True)
deadletters_app = typer.Typer(help="List and replay dead letters.", no_args_is_help=True)

_ACTIONS = {
    "open": BreakerRegistry.force_open,
    "close": BreakerRegistry.force_close,
    "reset": BreakerRegistry.reset,
    "disable": BreakerRegistry.disable,
}


def _fail(message: str, code: int = 1) -> None:
    from guilde_core.redaction import redact_text

    typer.echo(f"error: {redact_text(message)}", err=True)
    raise typer.Exit(code)


def _dump(value: Any) -> str:
    from guilde_core.redaction import redact

    return json.dumps(redact(value), indent=2, default=str)


@breakers_app.command("list")
def list_breakers(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Every breaker with its state, failures and time until half-open."""
    from guilde_core.errors import GuildeError
    from guilde_core.resilience import get_registry

    async def run() -> tuple[list[dict[str, Any]], dict[str, Any]]:
        reg = get_registry()
        try:
            snaps = [s.model_dump(mode="json") for s in await reg.snapshots()]
            return snaps, reg.store_status().model_dump(mode="json")
        finally:
            await reg.aclose()

    try:
        snaps, status = asyncio.run(run())
    except GuildeError as exc:
        _fail(exc.message)
        return
    if as_json:
        typer.echo(_dump({"store": status, "breakers": snaps}))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"circuit breakers (store: {status['backend']})")
    for col in ("name", "state", "failures", "half-open in", "last error", "flags"):
        table.add_column(col)
    for s in snaps:
        flags = ",".join(
            f for f in ("forced" if s["forced"] else "", "disabled" if s["disabled"] else "") if f
        )
        until = s["seconds_until_half_open"]
        table.add_row(
            s["name"],
            s["state"],
            str(s["failure_count"]),
            "" if until is None else f"{until:.1f}s",
            (s["last_error"] or "")[:60],
            flags,
        )
    Console().print(table)
    if status["backend"] == "memory":
        typer.echo(
            "note: in-memory store — only this process's breakers are visible; "
            "set CIRCUIT_BREAKER_REDIS_URL to see shared state."
        )
    if status["degraded"]:
        typer.echo(f"warning: store degraded: {status['error']}", err=True)


@breakers_app.command("set")
def control(
    name: str = typer.Argument(..., help="Breaker name."),
    action: str = typer.Argument(..., help="open | close | reset | disable"),
    reason: str = typer.Option(..., "--reason", "-r", help="Why (recorded with the event)."),
) -> None:
    """Force a breaker open or closed, reset it, or disable it (recorded as an event)."""
    from guilde_core.resilience import get_registry

    if action not in _ACTIONS:
        _fail(f"unknown action {action!r}: use one of {', '.join(_ACTIONS)}", 2)
    if not reason.strip():
        _fail("a reason is required", 2)

    async def run() -> dict[str, Any]:
        reg = get_registry()
        try:
            snap = await _ACTIONS[action](reg, name, reason=reason)
            return snap.model_dump(mode="json")
        finally:
            await reg.aclose()

    try:
        typer.echo(_dump(asyncio.run(run())))
    except ValueError as exc:
        _fail(str(exc), 2)


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
        typer.echo(_dump(letters))
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
        _fail(exc.message)
        return
    except Exception as exc:  # the operation failed again: the letter stays
        _fail(f"replay failed, dead letter kept: {type(exc).__name__}: {exc}")
        return
    typer.echo(_dump({"replayed": letter_id, "result": result}))


def register(app: typer.Typer) -> None:
    app.add_typer(breakers_app, name="breakers")
    app.add_typer(deadletters_app, name="deadletters")
