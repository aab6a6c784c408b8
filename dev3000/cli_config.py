"""``dev3000 config show | check``."""

from __future__ import annotations

import json
from typing import Any

import typer
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from guilde_core.config import ConfigIssue, check_settings, explain_settings
from guilde_core.redaction import MASK, is_secret_name, redact

config_app = typer.Typer(help="Show or validate the effective configuration.", no_args_is_help=True)


def _display(name: str, value: Any) -> Any:
    if isinstance(value, SecretStr):
        return MASK if value.get_secret_value() else ""
    if value is not None and is_secret_name(name) and not isinstance(value, bool):
        return MASK
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return redact(value)


@config_app.command("show")
def show(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Print every setting, its effective value (secrets redacted) and where it came from."""
    settings, issues = check_settings()
    if settings is None:
        _report(issues)
        raise typer.Exit(2)
    rows = [
        (name, _display(name, value), source) for name, value, source in explain_settings(settings)
    ]
    if as_json:
        typer.echo(
            json.dumps(
                [{"variable": n, "value": v, "source": s} for n, v, s in rows],
                default=str,
                indent=2,
            )
        )
        return
    table = Table(title=f"guilde-diag configuration (profile: {settings.dev3000_mode})")
    table.add_column("variable", style="cyan", no_wrap=True)
    table.add_column("value")
    table.add_column("source", style="magenta")
    for name, value, source in rows:
        table.add_row(name, "" if value is None else str(value), source)
    Console().print(table)


def _report(issues: list[Any]) -> None:
    err = Console(stderr=True)
    err.print(f"[bold red]configuration invalid: {len(issues)} problem(s)[/]")
    for issue in issues:
        err.print(f"  [cyan]{issue.variable}[/]: {issue.message}")


@config_app.command("check")
def check() -> None:
    """Validate the configuration; exit 1 naming every bad variable and why, or a posture
    nobody could control through (exposed, anonymous callers accepted, no control key)."""
    settings, issues = check_settings()
    if settings is not None:
        from guilde_core.http.auth import control_posture_issue  # imports FastAPI: only here

        issue = control_posture_issue(settings)
        if issue is not None:
            issues.append(ConfigIssue("DIAGNOSTIC_API_KEYS", f"{issue[0]}: {issue[1]}"))
    if issues:
        _report(issues)
        raise typer.Exit(1)
    typer.echo("configuration OK")


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
