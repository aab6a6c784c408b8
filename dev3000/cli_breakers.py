"""``dev3000 breakers list | set``: the circuit breakers from the command line.

Breakers are read from the process-wide registry: with ``CIRCUIT_BREAKER_REDIS_URL`` that is
the shared state of every process; without it a fresh CLI process only knows its own (empty)
in-memory registry, which the commands say.

``set`` is a control action like any other: the operator at the terminal is the local
operator (:func:`guilde_core.http.authz.local_operator`, read-only unless
``DIAGNOSTIC_CONTROL_ENABLED=true``) on the ``cli`` surface, and the action goes through the
breaker adapter's rules (:func:`servers.circuits.logic.control`: the one gate, a reason, a
known name). Its ``control_action`` record is printed to stderr and, with a shared Redis
(``REDIS_URL`` or ``CIRCUIT_BREAKER_REDIS_URL``), appended to the shared timeline, so running
dev3000 instances show it.
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Any

import typer

from guilde_core.resilience.cli import dump, fail

if TYPE_CHECKING:
    from guilde_core.config import Settings
    from guilde_core.events import TimelineEvent
    from servers.circuits.models import ControlResult, OperatorAction

breakers_app = typer.Typer(help="Inspect and control circuit breakers.", no_args_is_help=True)

__all__ = ["breakers_app", "register", "set_breaker"]


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
        fail(exc.message)
        return
    if as_json:
        typer.echo(dump({"store": status, "breakers": snaps}))
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


async def set_breaker(
    settings: Settings,
    name: str,
    action: OperatorAction,
    reason: str,
    *,
    timeline_prefix: str | None = None,
) -> tuple[ControlResult, list[TimelineEvent]]:
    """``breakers set`` without the terminal: the local operator's control action through
    the adapter; its ``control_action`` record appended to the shared timeline
    (``<timeline_prefix>timeline``) when a shared Redis is configured."""
    from dev3000.redis_keys import dev3000_prefix
    from dev3000.timeline.fanout import append_event
    from guilde_core.http.authz import Caller, Posture
    from guilde_core.resilience import get_registry
    from servers.circuits import logic

    caller = Caller.local(Posture.from_settings(settings), surface="cli")
    records: list[TimelineEvent] = []
    try:
        result = await logic.control(
            name, action, caller=caller, reason=reason, settings=settings, audit=records.append
        )
    finally:
        await get_registry().aclose()
        redis_url = settings.shared_redis_url
        for event in records:
            if redis_url:
                await append_event(
                    redis_url,
                    event,
                    origin=f"cli-{os.getpid()}",
                    prefix=timeline_prefix or dev3000_prefix(settings),
                )
    return result, records


@breakers_app.command("set")
def control(
    name: str = typer.Argument(..., help="Breaker name (in use, or a configured service)."),
    action: str = typer.Argument(..., help="open | close | reset | disable"),
    reason: str = typer.Option(..., "--reason", "-r", help="Why (recorded with the event)."),
) -> None:
    """Force a breaker open or closed, reset it, or disable it: a control action (needs
    DIAGNOSTIC_CONTROL_ENABLED=true), recorded as a control_action event."""
    from guilde_core.config import ConfigurationInvalid, load_settings
    from guilde_core.errors import GuildeError, InvalidInputError
    from servers.circuits.logic import OPERATOR_ACTIONS

    chosen = next((a for a in OPERATOR_ACTIONS if a == action), None)
    if chosen is None:
        fail(f"unknown action {action!r}: use one of {', '.join(OPERATOR_ACTIONS)}", 2)
        return
    try:
        settings = load_settings()
    except ConfigurationInvalid as exc:
        fail(str(exc), 2)
        return
    try:
        result, records = asyncio.run(set_breaker(settings, name, chosen, reason))
    except InvalidInputError as exc:
        fail(exc.message, 2)
        return
    except GuildeError as exc:
        fail(exc.message)
        return
    for event in records:
        typer.echo(f"recorded: {event.model_dump_json()}", err=True)
    typer.echo(dump(result.breaker.model_dump(mode="json")))


def register(app: typer.Typer) -> None:
    """Add ``breakers list|set`` to the ``dev3000`` command line."""
    app.add_typer(breakers_app, name="breakers")
