"""``dev3000 eval``: run the scenario suite and score the diagnoses.

Heavy imports (LangGraph, the sandbox, FastMCP) happen inside the command so
``dev3000 --help`` stays fast.
"""

from __future__ import annotations

import asyncio

import typer

__all__ = ["register"]


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def eval_cmd(
    mode: str = typer.Option("offline", "--mode", help="offline|llm"),
    source: str | None = typer.Option(
        None,
        "--source",
        help="live (the sandbox with the chaos faults; offline mode's default) | recorded "
        "(the captured tool outputs; LLM mode's default).",
    ),
    record: bool = typer.Option(
        False, "--record", help="Write each live run's tool outputs into its scenario.yaml."
    ),
    tags: str | None = typer.Option(None, "--tags", help="Only scenarios with these tags (comma)."),
    setup: str | None = typer.Option(
        None,
        "--setup",
        help="Live: only this setup (demo: the configuration 'dev3000 demo' gives; clean: "
        "dev3000's defaults, agent and frontend never started). Default: both, scored apart.",
    ),
    scenarios: str | None = typer.Option(None, "--scenarios", help="Scenario folder."),
    json_out: bool = typer.Option(False, "--json", help="Results as JSON."),
    min_accuracy: float = typer.Option(
        0.0, "--min-accuracy", help="Exit 1 when root-cause accuracy is below this (0-1)."
    ),
) -> None:
    """Run the scenario suite and score the diagnoses (live against the sandbox by default)."""
    from evals.scenario import default_scenario_dir
    from evals.suite import print_report, run_suite

    if mode not in ("offline", "llm"):
        _fail("--mode must be offline or llm")
    if source not in (None, "live", "recorded"):
        _fail("--source must be live or recorded")
    if record and source == "recorded":
        _fail("--record captures live runs: use it with --source live")
    if setup not in (None, "demo", "clean"):
        _fail("--setup must be demo or clean")
    tag_list = [t.strip() for t in (tags or "").split(",") if t.strip()]
    report = asyncio.run(
        run_suite(
            scenarios or default_scenario_dir(),
            mode=mode,
            tags=tag_list,
            source=source,
            record=record,
            setups=[setup] if setup else None,
        )
    )
    if json_out:
        typer.echo(report.model_dump_json(indent=2))
    else:
        print_report(report)
    if report.accuracy < min_accuracy or any(x.accuracy < min_accuracy for x in report.setups):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``eval`` to ``app``."""
    app.command("eval")(eval_cmd)
