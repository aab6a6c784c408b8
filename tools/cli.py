"""``dev3000 chaos …``, ``dev3000 demo``, ``dev3000 sandbox`` and ``dev3000 fakellm``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["register"]

_URL_HELP = "Sandbox URL (loopback only); default $SANDBOX_URL or http://127.0.0.1:8000."
_FILE_DOC = "File holding the sandbox's chaos key; default $SANDBOX_CHAOS_TOKEN(_FILE)."


def _url(url: str | None) -> str:
    return url or os.environ.get("SANDBOX_URL") or "http://127.0.0.1:8000"


def _fail(exc: Exception) -> typer.Exit:
    from guilde_core.redaction import redact_text

    typer.echo(f"error: {redact_text(str(exc))}", err=True)
    return typer.Exit(2)


def _client(url: str | None, token_file: Path | None) -> Any:
    from tools.chaos.client import ChaosClient, read_token

    return ChaosClient(_url(url), read_token(token_file))


def _params(pairs: list[str], schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """``key=value`` pairs as the fault's parameters: by the fault's schema where it has one (a
    string stays a string, a list is comma-separated: ``kinds=429,timeout``), else JSON values."""
    from guilde_core.errors import InvalidInputError

    def value(raw: str, spec: dict[str, Any]) -> Any:
        if spec.get("type") == "string" or ("enum" in spec and spec.get("type") is None):
            return raw
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw

    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"--param needs key=value, got {pair!r}")
        spec = (schema or {}).get(key) or {}
        if spec.get("type") == "array" and not raw.lstrip().startswith("["):
            items = spec.get("items") or {}
            params[key] = [value(part.strip(), items) for part in raw.split(",") if part.strip()]
        else:
            params[key] = value(raw, spec)
    return params


def _shown(spec: dict[str, Any]) -> str:
    if spec.get("type") == "array" and spec.get("default") is None:
        choices = (spec.get("items") or {}).get("enum")
        return f"[{','.join(map(str, choices))}]" if choices else "[…]"
    return str(spec.get("default"))


def register(app: typer.Typer) -> None:
    """Add the chaos, demo, sandbox and fakellm commands to ``app``."""
    chaos = typer.Typer(
        help="Inject and clear faults in the sandbox; bounded load.", no_args_is_help=True
    )
    app.add_typer(chaos, name="chaos")

    @chaos.command("list")
    def chaos_list(
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """The fault catalogue: ids, parameters and expected symptoms."""
        from tools.chaos.catalogue import FAULTS

        faults = [f.describe() for f in FAULTS.values()]
        if as_json:
            typer.echo(json.dumps(faults, indent=2))
            return
        for fault in faults:
            params = ", ".join(f"{name}={_shown(spec)}" for name, spec in fault["params"].items())
            typer.echo(f"{fault['id']:<22} {fault['title']}")
            typer.echo(f"{'':<22} params: {params}")
            for where, text in fault["symptoms"].items():
                typer.echo(f"{'':<22} {where}: {text}")

    @chaos.command("inject")
    def chaos_inject(
        fault: Annotated[str, typer.Argument(help="Fault id (see `dev3000 chaos list`).")],
        param: Annotated[
            list[str] | None,
            typer.Option(
                "--param", "-p", help="key=value; a list is comma-separated (kinds=429,timeout)."
            ),
        ] = None,
        ttl: Annotated[float | None, typer.Option("--ttl", help="Auto-expiry in seconds.")] = None,
        url: Annotated[str | None, typer.Option("--url", help=_URL_HELP)] = None,
        token_file: Annotated[Path | None, typer.Option("--token-file", help=_FILE_DOC)] = None,
    ) -> None:
        """Turn a fault on (bounded; expires by itself)."""
        from guilde_core.errors import GuildeError
        from tools.chaos.catalogue import FAULTS

        try:
            known = FAULTS.get(fault)
            params = _params(param or [], known.describe()["params"] if known else None)
            if ttl is not None:
                params["ttl_s"] = ttl
            result = _client(url, token_file).inject(fault, **params)
        except GuildeError as exc:
            raise _fail(exc) from None
        typer.echo(f"injected {result['id']} (expires in {result['expires_in_s']} s)")
        typer.echo(json.dumps(result["params"]))

    @chaos.command("clear")
    def chaos_clear(
        fault: Annotated[
            str | None, typer.Argument(help="Fault id; all faults when omitted.")
        ] = None,
        url: Annotated[str | None, typer.Option("--url", help=_URL_HELP)] = None,
        token_file: Annotated[Path | None, typer.Option("--token-file", help=_FILE_DOC)] = None,
    ) -> None:
        """Turn one fault (or every fault) off."""
        from guilde_core.errors import GuildeError

        try:
            cleared = _client(url, token_file).clear(fault)
        except GuildeError as exc:
            raise _fail(exc) from None
        typer.echo("cleared: " + (", ".join(cleared) if cleared else "nothing was active"))

    @chaos.command("status")
    def chaos_status(
        url: Annotated[str | None, typer.Option("--url", help=_URL_HELP)] = None,
        token_file: Annotated[Path | None, typer.Option("--token-file", help=_FILE_DOC)] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """The faults active in the sandbox."""
        from guilde_core.errors import GuildeError

        try:
            active = _client(url, token_file).status()
        except GuildeError as exc:
            raise _fail(exc) from None
        if as_json:
            typer.echo(json.dumps(active, indent=2))
            return
        if not active:
            typer.echo("no active faults")
        for fault in active:
            typer.echo(
                f"{fault['id']:<22} expires in {fault['expires_in_s']} s  "
                f"{json.dumps(fault['params'])}"
            )

    @chaos.command("load")
    def chaos_load(
        rps: Annotated[float, typer.Option("--rps", help="Requests per second (≤ 200).")] = 10,
        duration: Annotated[float, typer.Option("--duration", help="Seconds (≤ 300).")] = 10,
        url: Annotated[str | None, typer.Option("--url", help=_URL_HELP)] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    ) -> None:
        """Bounded load on the sandbox (loopback only); prints count, codes, p50/p99."""
        import asyncio

        from guilde_core.errors import GuildeError
        from tools.chaos.load import run_load

        try:
            summary = asyncio.run(run_load(_url(url), rps=rps, duration=duration))
        except GuildeError as exc:
            raise _fail(exc) from None
        typer.echo(json.dumps(summary.as_dict()) if as_json else summary.render())

    @app.command("demo")
    def demo(
        logs_dir: Annotated[
            Path | None, typer.Option("--logs-dir", help="Logs only. Default: a temp dir.")
        ] = None,
        data_dir: Annotated[
            Path | None,
            typer.Option(
                "--data-dir",
                help="SQLite files, scratch, chaos token. Default: a new dir beside the logs.",
            ),
        ] = None,
        sandbox_port: Annotated[int | None, typer.Option("--sandbox-port")] = None,
        fakellm_port: Annotated[int | None, typer.Option("--fakellm-port")] = None,
        dev3000_port: Annotated[
            int | None,
            typer.Option("--dev3000-port", help="Default DEV3000_PORT, else 3001.", min=1),
        ] = None,
        no_traffic: Annotated[bool, typer.Option("--no-traffic", help="Drive no traffic.")] = False,
        duration: Annotated[
            float | None, typer.Option("--duration", help="Stop after N seconds.")
        ] = None,
        keep_logs: Annotated[
            bool, typer.Option("--keep-logs", help="Keep the temp logs and data dirs.")
        ] = False,
        no_dev3000: Annotated[
            bool, typer.Option("--no-dev3000", help="Do not start dev3000 serve.")
        ] = False,
        spans: Annotated[
            bool, typer.Option("--spans", help="Print dev3000's spans (Logfire console).")
        ] = False,
    ) -> None:
        """Start the fake LLM upstream, the sandbox and dev3000 serve; drive traffic; print hints.

        dev3000 watches exactly this stack and listens on DEV3000_PORT (3001) when it can bind
        it — also right after a previous run; on another free port otherwise, which the demo
        says in capitals and puts in every hint.

        Uses SANDBOX_DATABASE_URL / SANDBOX_REDIS_URL when set; SQLite and memory otherwise.
        """
        from tools.demo import DemoOptions, run_demo

        options = DemoOptions(
            logs_dir=logs_dir,
            data_dir=data_dir,
            sandbox_port=sandbox_port,
            fakellm_port=fakellm_port,
            dev3000_port=dev3000_port,
            database_url=os.environ.get("SANDBOX_DATABASE_URL"),
            redis_url=os.environ.get("SANDBOX_REDIS_URL"),
            traffic=not no_traffic,
            duration=duration,
            keep_logs=keep_logs,
            dev3000=not no_dev3000,
            spans=spans,
        )
        raise typer.Exit(run_demo(options))

    @app.command("sandbox")
    def sandbox(
        port: Annotated[int, typer.Option("--port")] = 8000,
        host: Annotated[
            str, typer.Option("--host", help="Address to bind (0.0.0.0 in a container).")
        ] = "127.0.0.1",
        logs_dir: Annotated[Path | None, typer.Option("--logs-dir")] = None,
        token_file: Annotated[
            Path | None, typer.Option("--token-file", help="Write the token here.")
        ] = None,
        llm_base_url: Annotated[
            str | None, typer.Option("--llm-base-url", help="…/v1 of the LLM.")
        ] = None,
    ) -> None:
        """Serve the sandbox service alone (SANDBOX_* settings), on 127.0.0.1 unless --host."""
        from guilde_core.errors import ConfigurationError
        from tools.sandbox.__main__ import serve

        try:
            serve(
                port=port,
                host=host,
                logs_dir=logs_dir,
                token_file=token_file,
                llm_base_url=llm_base_url,
            )
        except ConfigurationError as exc:
            raise _fail(exc) from None

    @app.command("fakellm")
    def fakellm(
        port: Annotated[int, typer.Option("--port")] = 8400,
        host: Annotated[
            str, typer.Option("--host", help="Address to bind (0.0.0.0 in a container).")
        ] = "127.0.0.1",
        script: Annotated[
            Path | None, typer.Option("--script", help="YAML/JSON script file.")
        ] = None,
    ) -> None:
        """Serve the fake OpenAI/Anthropic providers alone, on 127.0.0.1 unless --host."""
        from tools.fakellm.__main__ import serve
        from tools.fakellm.script import ScriptError

        try:
            serve(port=port, host=host, script=script)
        except ScriptError as exc:
            raise _fail(exc) from None
