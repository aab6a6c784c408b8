"""``dev3000 ask | chat | agent web`` — the agent's commands.

Heavy imports (LangGraph, SDKs, FastMCP) happen inside the commands so ``dev3000 --help``
stays fast.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from agent.state import ApprovalDecision

__all__ = ["register"]

agent_app = typer.Typer(help="The diagnosis agent's services.", no_args_is_help=True)


def _default_url() -> str:
    from guilde_core.config import get_settings

    s = get_settings()
    host = "127.0.0.1" if s.dev3000_host in ("0.0.0.0", "::", "") else s.dev3000_host
    return f"http://{host}:{s.dev3000_port}/mcp"


def _fail(message: str, code: int = 2) -> None:
    from guilde_core.redaction import redact_text

    typer.echo(f"error: {redact_text(message)}", err=True)
    raise typer.Exit(code)


async def _ask(
    question: str,
    *,
    url: str,
    api_key: str | None,
    session: str | None,
    provider: str | None,
    json_out: bool,
    focus: str | None,
    window: float | None,
    checkpointer: str | None,
    quiet: bool,
) -> int:
    from rich.console import Console

    from agent.checkpoint import open_checkpointer
    from agent.mcp_client import DiagTools
    from agent.providers import build_chain
    from agent.report import progress_line, render_diagnosis
    from agent.runner import DiagnosisAgent
    from guilde_core.config import get_settings

    settings = get_settings()
    err = Console(stderr=True, highlight=False)
    out = Console(highlight=False)

    def on_event(event: dict[str, object]) -> None:
        line = progress_line(event)
        if line and not quiet:
            err.print(line, markup=False, style="dim")

    async def approver(request: dict[str, object]) -> ApprovalDecision:
        if json_out or not sys.stdin.isatty():
            return {"approved": False, "reason": "no operator to approve (non-interactive run)"}
        err.print(
            f"The investigation wants to run control tool {request.get('tool')} "
            f"with {request.get('arguments')}",
            markup=False,
        )
        answer = await asyncio.to_thread(input, "Approve? [y/N] ")
        return {"approved": answer.strip().lower() in ("y", "yes"), "reason": "operator"}

    kind = checkpointer or ("memory" if session is None else None)
    chain = build_chain(settings, provider)
    try:
        async with (
            open_checkpointer(settings, kind) as saver,
            DiagTools(url, api_key=api_key) as tools,
        ):
            agent = DiagnosisAgent(
                tools, chain, settings=settings, checkpointer=saver, on_event=on_event
            )
            result = await agent.ask(
                question, session_id=session, focus=focus, window_minutes=window, approver=approver
            )
    finally:
        await chain.aclose()
    if result.diagnosis is None:
        _fail("the investigation ended without a diagnosis")
        return 1
    if json_out:
        typer.echo(result.diagnosis.model_dump_json(indent=2))
    else:
        render_diagnosis(result.diagnosis, out)
    return 0


def _run(coro: Coroutine[object, object, int], url: str) -> int:
    from guilde_core.errors import ConfigurationError, classify

    try:
        code: int = asyncio.run(coro)
    except ConfigurationError as exc:
        _fail(str(exc))
        return 2
    except Exception as exc:
        err = classify(exc)
        if err.code in ("connection_failed", "timeout", "unavailable", "authentication"):
            # the MCP client's own errors already name the endpoint
            _fail(err.message if url in err.message else f"cannot reach {url}: {err.message}")
        _fail(f"{type(exc).__name__}: {exc}")
        return 2
    return code


def ask(
    question: str = typer.Argument(
        ..., help="What to investigate, e.g. 'why is checkout failing?'"
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the diagnosis as JSON."),
    session: str | None = typer.Option(
        None, "--session", help="Session id: keep context across questions (persisted)."
    ),
    provider: str | None = typer.Option(
        None, "--provider", help="Provider chain, e.g. 'anthropic:<model>,openai:<model>,offline'."
    ),
    url: str | None = typer.Option(None, "--url", help="dev3000 MCP endpoint."),
    api_key: str | None = typer.Option(
        None, "--api-key", envvar="DEV3000_API_KEY", help="API key for dev3000."
    ),
    focus: str | None = typer.Option(None, "--focus", help="Component to focus on."),
    window: float | None = typer.Option(None, "--window", help="Time window in minutes."),
    checkpointer: str | None = typer.Option(
        None, "--checkpointer", help="memory|sqlite|postgres|redis (default: settings)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress lines."),
) -> None:
    """Ask the diagnosis agent a question about the running stack."""
    target = url or _default_url()
    code = _run(
        _ask(
            question,
            url=target,
            api_key=api_key,
            session=session,
            provider=provider,
            json_out=json_out,
            focus=focus,
            window=window,
            checkpointer=checkpointer,
            quiet=quiet,
        ),
        target,
    )
    raise typer.Exit(code)


def chat(
    session: str | None = typer.Option(None, "--session", help="Session id to continue."),
    provider: str | None = typer.Option(None, "--provider", help="Provider chain."),
    url: str | None = typer.Option(None, "--url", help="dev3000 MCP endpoint."),
    api_key: str | None = typer.Option(None, "--api-key", envvar="DEV3000_API_KEY"),
) -> None:
    """Interactive session: follow-up questions keep their context (empty line or Ctrl-D quits)."""
    import uuid

    session_id = session or uuid.uuid4().hex[:12]
    target = url or _default_url()
    typer.echo(f"session {session_id} — ask a question (empty line to quit)", err=True)
    while True:
        try:
            question = input("? ").strip()
        except EOFError:
            break
        if not question:
            break
        code = _run(
            _ask(
                question,
                url=target,
                api_key=api_key,
                session=session_id,
                provider=provider,
                json_out=False,
                focus=None,
                window=None,
                checkpointer=None,
                quiet=False,
            ),
            target,
        )
        if code:
            raise typer.Exit(code)
    typer.echo(f"continue later with: dev3000 chat --session {session_id}", err=True)


#: seconds agent-web lets requests in flight finish after SIGTERM before cancelling them
DRAIN_SECONDS = 10


@agent_app.command("web")
def web(
    port: int | None = typer.Option(None, "--port", help="Port (default AGENT_WEB_PORT, 8001)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind."),
    url: str | None = typer.Option(None, "--url", help="dev3000 MCP endpoint."),
    api_key: str | None = typer.Option(
        None,
        "--api-key",
        envvar="DEV3000_API_KEY",
        help="API key agent-web sends to dev3000 (read+control for approved control actions "
        "where dev3000 refuses anonymous control).",
    ),
) -> None:
    """Serve agent-web: REST sessions API, a WebSocket per session, OpenAPI, /health."""
    import uvicorn

    from agent.web import create_app
    from guilde_core.config import get_settings
    from guilde_core.safelog import install_safe_logging

    install_safe_logging()  # the access log shows paths with their query strings
    settings = get_settings()
    app = create_app(settings, mcp_url=url or _default_url(), mcp_api_key=api_key, bind_host=host)
    # SIGTERM: stop accepting, close the WebSockets, give requests in flight (a ?wait=true
    # diagnosis) DRAIN_SECONDS, then cancel the rest and exit: well inside Kubernetes'
    # terminationGracePeriodSeconds (30 s for agent-web), so a pod is drained, not killed
    uvicorn.run(
        app,
        host=host,
        port=port or settings.agent_web_port,
        log_level="info",
        timeout_graceful_shutdown=DRAIN_SECONDS,
    )


def register(app: typer.Typer) -> None:
    """Add ``ask``, ``chat`` and ``agent web`` to ``app``."""
    app.command("ask")(ask)
    app.command("chat")(chat)
    app.add_typer(agent_app, name="agent")
