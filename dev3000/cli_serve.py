"""``dev3000 serve`` (the aggregator on :3001) and ``dev3000 doctor`` (preflight checks)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from dev3000.mcp_aggregate import ToolRegistrar

__all__ = ["register"]

_LOG_LEVELS = ("debug", "info", "warning", "error")


def register(app: typer.Typer, *, extra_tools: Sequence[ToolRegistrar] = ()) -> None:
    """Add ``serve`` and ``doctor`` to the ``dev3000`` command line; ``serve`` adds
    ``extra_tools`` to its aggregate MCP server (each ``registrar(server, settings)``)."""

    @app.command("serve")
    def serve(
        host: str | None = typer.Option(
            None, "--host", help="Bind address (default DEV3000_HOST)."
        ),
        port: int | None = typer.Option(
            None, "--port", min=0, max=65535, help="Port (default DEV3000_PORT, 3001)."
        ),
        run: list[str] = typer.Option(  # noqa: B008 - typer's option declaration
            [],
            "--run",
            help='A dev server to supervise, e.g. --run "uvicorn app:app" (repeatable).',
        ),
        drain_seconds: float = typer.Option(
            1.0,
            "--drain-seconds",
            min=0,
            max=8,
            help="After SIGTERM: seconds readiness answers 503 before the server stops.",
        ),
        log_level: str | None = typer.Option(
            None,
            "--log-level",
            help="debug | info | warning | error (default DEV3000_LOG_LEVEL).",
        ),
        browser: str | None = typer.Option(
            None,
            "--browser",
            help="A page to watch in headless Chromium: console errors, exceptions, failed "
            "requests, screenshots (default DEV3000_BROWSER_URL).",
        ),
    ) -> None:
        """Serve the HTTP API, the stream and the aggregate MCP endpoint (/mcp, /sse)."""
        from dev3000.serve import run_server
        from guilde_core.config import ConfigurationInvalid, load_settings

        if log_level is not None and log_level.lower() not in _LOG_LEVELS:
            # not uvicorn's "trace": it logs every ASGI scope, request headers included
            typer.echo(
                f"dev3000 serve: --log-level must be one of {', '.join(_LOG_LEVELS)}", err=True
            )
            raise typer.Exit(2)

        try:
            settings = load_settings()
        except ConfigurationInvalid as exc:
            typer.echo(f"dev3000 serve: {exc}", err=True)
            raise typer.Exit(2) from None
        code = run_server(
            settings,
            host=host,
            port=port,
            run=run,
            drain_seconds=drain_seconds,
            log_level=log_level.lower() if log_level else None,
            extra_tools=extra_tools,
            browser=browser,
        )
        raise typer.Exit(code)

    app.command("doctor")(doctor)
    app.command("verify")(verify)


def doctor(
    as_json: bool = typer.Option(False, "--json", help="Print the findings as JSON."),
    timeout: float = typer.Option(2.0, "--timeout", min=0.1, max=30, help="Per-check timeout."),
) -> None:
    """Preflight: configuration, Redis, PostgreSQL, targets, LLM providers; what to fix."""
    from dev3000.doctor import render, run_doctor

    findings = run_doctor(timeout=timeout)
    if as_json:
        import json

        typer.echo(json.dumps([f.as_dict() for f in findings], indent=2))
    else:
        render(findings, sys.stdout)
    critical = [f for f in findings if f.status == "fail" and f.critical]
    raise typer.Exit(1 if critical else 0)


def verify(
    url: str = typer.Option(
        ..., "--url", help="Base URL of the dev3000 to check, e.g. http://dev3000:3001."
    ),
    api_key: str | None = typer.Option(
        None, "--api-key", envvar="DEV3000_API_KEY", help="Sent as X-API-Key (read scope)."
    ),
    timeout: float = typer.Option(15.0, "--timeout", min=0.5, max=120, help="Per-check timeout."),
    as_json: bool = typer.Option(False, "--json", help="Print the checks as JSON."),
) -> None:
    """Post-deploy checks of a running dev3000: probes (health, live, ready), the deep
    report against its schema, the breakers, MCP initialize on /mcp and the stream's hello.
    One line per check; exit 0 when all pass, 1 otherwise."""
    from dev3000.verify import run

    if not url.startswith(("http://", "https://")):
        typer.echo(f"dev3000 verify: --url must be an http(s) URL, not {url!r}", err=True)
        raise typer.Exit(2)
    code, text = run(url, api_key, timeout=timeout, as_json=as_json)
    typer.echo(text)
    raise typer.Exit(code)
