"""``dev3000 eval``: run the scenario suite and score each diagnosis against its ground truth.

A scenario is a folder under ``evals/scenarios/`` with a ``scenario.yaml``::

    name: pool-exhausted-chain
    question: why is checkout failing?
    paraphrases: [why can't customers check out?]   # each diagnosed too
    tags: [resource_exhaustion, multi-step]
    runtime: {pool_timeout_s: 0.1}        # live: the sandbox's runtime config at start
    sandbox: {}                           # live: SandboxConfig overrides
    dev3000: {}                           # live: dev3000 settings on top of both setups
    setup: []                             # live: planted log lines, breakers (evals.live)
    faults: [{id: pool-exhaustion, options: {}}]   # live: fault ids of ``dev3000 chaos``
    traffic: [{method: GET, path: /api/v1/orders, count: 6}]
    recorded: {health: …, circuits: …, errors: …, timeline: …, logs: …}
    expect:
      component: [database, postgres]   # any alias matches
      category: resource_exhaustion
      mention: [pool]                  # facts the diagnosis must mention
      not_claim: [redis]               # the root cause must not say these
      tools: [health, circuits, errors]  # tool roles it must have used
    llm: {reply: {...}}                # llm mode: the scripted model conclusion

Every scenario runs **live** (:mod:`evals.live`: the sandbox with the faults injected, the
traffic driven, the agent connected to dev3000's real aggregate MCP server) — the default
of offline mode — in two setups of dev3000 over the same faulty sandbox: ``demo`` (what
``dev3000 demo`` gives a new user) and ``clean`` (dev3000's defaults, the agent and frontend
declared and never started); the scores are kept per setup. ``recorded`` holds the tool outputs captured from such a run
(``dev3000 eval --record`` writes them, redacted): ``--source recorded`` replays them
(:mod:`evals.recorded`) without a sandbox, and so do the unit tests and LLM mode (whose
default source is ``recorded``; ``--source live`` works there too).

Scores: root-cause accuracy (component and category; a healthy stack is right only when
the answer is healthy), evidence grounding (the root cause cites evidence whose excerpts
carry the facts), cited evidence ids that resolve, mentions, forbidden claims, tools used,
steps, duration — per scenario, per tag and per setup.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, ExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from agent.analyzers import canonical_component
from agent.models import Diagnosis
from agent.toolnames import role_of
from evals.scenario import Scenario, load_scenarios

__all__ = [
    "EvalReport",
    "ScenarioResult",
    "SetupScore",
    "print_report",
    "run_suite",
    "score",
]


class ScenarioResult(BaseModel):
    name: str
    tags: list[str]
    source: str
    mode: str
    setup: str = Field("recorded", description="demo | clean (live), recorded")
    healthy_expected: bool = False
    citations_resolve: bool = True
    correct: bool
    component_ok: bool
    category_ok: bool
    grounded: bool
    mentions_ok: bool
    no_false_claims: bool
    tools_ok: bool
    got_component: str
    got_category: str
    tools_used: list[str]
    steps: int
    tool_calls: int
    duration_ms: float
    diagnosis_mode: str
    error: str | None = None


class TagScore(BaseModel):
    tag: str
    scenarios: int
    accuracy: float
    grounding: float


class SetupScore(BaseModel):
    """The suite's score in one setup."""

    setup: str
    scenarios: int
    accuracy: float = Field(description="Root cause right: component and category.")
    healthy: float | None = Field(
        None, description="Healthy stacks answered healthy (None: no such scenario)."
    )
    grounding: float
    citations: float = Field(description="Diagnoses whose every cited evidence id resolves.")


class EvalReport(BaseModel):
    mode: str
    results: list[ScenarioResult]
    tags: list[TagScore]
    setups: list[SetupScore] = Field(default_factory=list)
    accuracy: float
    grounding: float
    duration_ms: float


def _component_matches(got: str, aliases: list[str]) -> bool:
    canon = canonical_component(got)
    names = {canon, got.lower()}
    for alias in aliases:
        a = alias.lower()
        if a in names or canonical_component(a) == canon or a in got.lower():
            return True
    return False


def _citations_resolve(diagnosis: Diagnosis) -> bool:
    known = {e.id for e in diagnosis.evidence}
    cited = [*diagnosis.root_cause.evidence_ids]
    for finding in [*diagnosis.findings, *diagnosis.other_problems]:
        cited.extend(finding.evidence_ids)
    return all(c in known for c in cited)


def score(
    scenario: Scenario,
    diagnosis: Diagnosis,
    mode: str,
    source: str = "live",
    setup: str = "recorded",
) -> ScenarioResult:
    """Score one diagnosis against the scenario's ground truth (a healthy stack is right
    only when the answer is healthy, with no root cause)."""
    rc = diagnosis.root_cause
    exp = scenario.expect
    component_ok = _component_matches(rc.component, exp.component)
    category_ok = rc.category == exp.category
    healthy_expected = exp.category == "unknown"
    if healthy_expected:
        component_ok = component_ok and diagnosis.status == "healthy"
    text = " ".join(
        [rc.summary, rc.component]
        + [f"{f.title} {f.detail}" for f in diagnosis.findings]
        + diagnosis.recommendations
    ).lower()
    mentions_ok = all(m.lower() in text for m in exp.mention)
    # what was checked on a healthy answer names components without claiming anything
    root_text = f"{rc.component} {rc.summary.split(' Checked:')[0]}".lower()
    no_false = not any(c.lower() in root_text for c in exp.not_claim)
    by_id = {e.id: e for e in diagnosis.evidence}
    cited = " ".join(by_id[i].excerpt for i in rc.evidence_ids if i in by_id).lower()
    grounded = bool(rc.evidence_ids) and (
        all(m.lower() in cited for m in exp.mention) if exp.mention else True
    )
    if exp.category == "unknown":
        grounded = True  # nothing to cite when nothing is wrong
    used = sorted({role_of(e.tool) for e in diagnosis.evidence})
    tools_ok = all(t in used for t in exp.tools)
    return ScenarioResult(
        name=scenario.name,
        tags=scenario.tags,
        source=source,
        mode=mode,
        setup=setup,
        healthy_expected=healthy_expected,
        citations_resolve=_citations_resolve(diagnosis),
        correct=component_ok and category_ok,
        component_ok=component_ok,
        category_ok=category_ok,
        grounded=grounded,
        mentions_ok=mentions_ok,
        no_false_claims=no_false,
        tools_ok=tools_ok,
        got_component=rc.component,
        got_category=rc.category,
        tools_used=used,
        steps=diagnosis.steps,
        tool_calls=diagnosis.tool_calls,
        duration_ms=diagnosis.duration_ms,
        diagnosis_mode=diagnosis.mode,
    )


#: opens the MCP target for a scenario: yields whatever DiagTools accepts (server or URL)
TargetFactory = Callable[[Scenario], Any]


@asynccontextmanager
async def recorded_target(scenario: Scenario) -> AsyncIterator[Any]:
    """The replay MCP server of a recorded scenario."""
    from evals.recorded import build_recorded_server

    if not scenario.recorded:
        raise ValueError(f"{scenario.name}: no recorded tool outputs (dev3000 eval --record)")
    server, _state = build_recorded_server(scenario.recorded, name=f"recorded:{scenario.name}")
    yield server


async def diagnose_scenario(
    scenario: Scenario,
    *,
    mode: str = "offline",
    target: Any = None,
    chain_factory: Callable[[Scenario], Awaitable[Any]] | None = None,
) -> Diagnosis:
    """Run the agent once on a scenario: on ``target`` (an MCP server or URL), else on its
    recorded tool outputs."""
    from agent.mcp_client import DiagTools
    from agent.providers import ProviderChain
    from agent.runner import DiagnosisAgent
    from guilde_core.config import get_settings

    settings = get_settings()
    if chain_factory is not None:
        chain = await chain_factory(scenario)
    else:
        chain = ProviderChain([], settings)
    try:
        async with AsyncExitStack() as stack:
            if target is None:
                target = await stack.enter_async_context(recorded_target(scenario))
            tools = await stack.enter_async_context(DiagTools(target))
            agent = DiagnosisAgent(tools, chain, settings=settings)
            result = await agent.ask(scenario.question)
    finally:
        await chain.aclose()
    if result.diagnosis is None:
        raise RuntimeError(f"{scenario.name}: no diagnosis (pending approval?)")
    return result.diagnosis


async def run_suite(
    folder: str | Path,
    *,
    mode: str = "offline",
    tags: list[str] | None = None,
    chain_factory: Callable[[Scenario], Awaitable[Any]] | None = None,
    source: str | None = None,
    record: bool = False,
    setups: Sequence[str] | None = None,
    run_id: str | None = None,
) -> EvalReport:
    """Run every (matching) scenario; aggregate per tag and per setup.

    ``source``: ``live`` (the sandbox with the faults; the default in offline mode) or
    ``recorded`` (the captured tool outputs; the default in LLM mode). Live, each scenario's
    faulty sandbox is diagnosed once per setup of ``setups`` (default: every one of
    :data:`evals.live.SETUPS` — the demo's configuration and dev3000's clean defaults).
    ``record`` (live only) writes the demo setup's tool outputs back into each
    ``scenario.yaml``. ``run_id`` names the PostgreSQL schemas and Redis keys of the run.
    """
    source = source or ("recorded" if mode == "llm" else "live")
    if source not in ("live", "recorded"):
        raise ValueError(f"source must be live or recorded, not {source!r}")
    if record and source != "live":
        raise ValueError("--record captures live runs: use it with --source live")
    from evals.live import SETUPS

    chosen = tuple(setups or SETUPS) if source == "live" else ("recorded",)
    unknown = [x for x in chosen if x not in (*SETUPS, "recorded")]
    if unknown:
        raise ValueError(f"unknown setup(s) {', '.join(unknown)}: one of {', '.join(SETUPS)}")
    plan = _Plan(mode, source, chosen, record, run_id)
    if mode == "llm" and chain_factory is None:
        from evals.llm import scripted_providers

        with scripted_providers() as factory:
            return await _run_all(folder, tags, factory, plan)
    return await _run_all(folder, tags, chain_factory, plan)


@dataclass(frozen=True)
class _Plan:
    mode: str
    source: str
    setups: tuple[str, ...]
    record: bool
    run_id: str | None


def _failed(scenario: Scenario, plan: _Plan, setup: str, error: str) -> ScenarioResult:
    return ScenarioResult(
        name=scenario.name,
        tags=scenario.tags,
        source=plan.source,
        mode=plan.mode,
        setup=setup,
        healthy_expected=scenario.expect.category == "unknown",
        correct=False,
        component_ok=False,
        category_ok=False,
        grounded=False,
        mentions_ok=False,
        no_false_claims=False,
        tools_ok=False,
        got_component="",
        got_category="",
        tools_used=[],
        steps=0,
        tool_calls=0,
        duration_ms=0,
        diagnosis_mode="",
        error=error,
    )


async def _run_one(
    scenario: Scenario,
    plan: _Plan,
    env: Any,
    chain_factory: Callable[[Scenario], Awaitable[Any]] | None,
) -> list[ScenarioResult]:
    if plan.source == "recorded":
        out: list[ScenarioResult] = []
        for asked in _phrasings(scenario, plan):
            try:
                diagnosis = await diagnose_scenario(
                    asked, mode=plan.mode, chain_factory=chain_factory
                )
            except Exception as exc:
                out.append(_failed(asked, plan, "recorded", f"{type(exc).__name__}: {exc}"))
                continue
            out.append(score(asked, diagnosis, plan.mode, plan.source, "recorded"))
        return out
    from evals.live import live_target

    results: list[ScenarioResult] = []
    try:
        async with live_target(scenario, env) as run:
            for setup in plan.setups:
                for asked in _phrasings(scenario, plan):
                    try:
                        with run.setup(setup) as server:
                            diagnosis = await diagnose_scenario(
                                asked, mode=plan.mode, target=server, chain_factory=chain_factory
                            )
                            if plan.record and setup == plan.setups[0] and asked is scenario:
                                from evals.recording import capture, write_recording

                                write_recording(Path(scenario.path), await capture(run, server))
                    except Exception as exc:
                        error = f"{type(exc).__name__}: {exc}"
                        results.append(_failed(asked, plan, setup, error))
                        continue
                    results.append(score(asked, diagnosis, plan.mode, plan.source, setup))
    except Exception as exc:  # the sandbox or a fault did not start
        done = {(r.name, r.setup) for r in results}
        results += [
            _failed(asked, plan, setup, f"{type(exc).__name__}: {exc}")
            for setup in plan.setups
            for asked in _phrasings(scenario, plan)
            if (asked.name, setup) not in done
        ]
    return results


def _phrasings(scenario: Scenario, plan: _Plan) -> list[Scenario]:
    """The scenario, then one copy per paraphrase of its question (named ``name~n``). LLM
    mode asks the question only: its answers are the script's, whatever the wording."""
    if plan.mode == "llm":
        return [scenario]
    return [scenario] + [
        scenario.model_copy(update={"name": f"{scenario.name}~{i}", "question": q})
        for i, q in enumerate(scenario.paraphrases, 1)
    ]


def _share(results: list[ScenarioResult], flag: str) -> float:
    return sum(bool(getattr(r, flag)) for r in results) / (len(results) or 1)


async def _run_all(
    folder: str | Path,
    tags: list[str] | None,
    chain_factory: Callable[[Scenario], Awaitable[Any]] | None,
    plan: _Plan,
) -> EvalReport:
    started = time.perf_counter()
    results: list[ScenarioResult] = []
    scenarios = load_scenarios(folder, tags)
    with ExitStack() as stack:
        env = None
        if plan.source == "live" and scenarios:
            from evals.live import live_environment

            env = stack.enter_context(live_environment(plan.run_id))
        for scenario in scenarios:
            results += await _run_one(scenario, plan, env, chain_factory)
    tag_names = sorted({t for r in results for t in r.tags})
    tag_scores = []
    for tag in tag_names:
        members = [r for r in results if tag in r.tags]
        tag_scores.append(
            TagScore(
                tag=tag,
                scenarios=len(members),
                accuracy=_share(members, "correct"),
                grounding=_share(members, "grounded"),
            )
        )
    setup_scores = []
    for setup in plan.setups:
        members = [r for r in results if r.setup == setup]
        healthy = [r for r in members if r.healthy_expected]
        setup_scores.append(
            SetupScore(
                setup=setup,
                scenarios=len(members),
                accuracy=_share(members, "correct"),
                healthy=_share(healthy, "correct") if healthy else None,
                grounding=_share(members, "grounded"),
                citations=_share(members, "citations_resolve"),
            )
        )
    return EvalReport(
        mode=plan.mode,
        results=results,
        tags=tag_scores,
        setups=setup_scores,
        accuracy=_share(results, "correct"),
        grounding=_share(results, "grounded"),
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
    )


def print_report(report: EvalReport) -> None:
    """Per-scenario, per-tag and per-setup tables."""
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    sources = sorted({r.source for r in report.results}) or ["-"]
    table = Table(title=f"Scenarios ({report.mode} mode, {'/'.join(sources)})")
    for col in (
        "scenario", "setup", "ok", "got", "grounded", "mentions", "tools", "steps", "ms",
    ):  # fmt: skip
        table.add_column(col)
    for r in report.results:
        table.add_row(
            r.name,
            r.setup,
            "✔" if r.correct else "✘",
            r.error or f"{r.got_component}/{r.got_category}",
            "✔" if r.grounded else "✘",
            "✔" if r.mentions_ok and r.no_false_claims else "✘",
            ",".join(r.tools_used) + ("" if r.tools_ok else " (missing)"),
            str(r.steps),
            f"{r.duration_ms:.0f}",
        )
    console.print(table)
    tags = Table(title="Per tag")
    for col in ("tag", "n", "accuracy", "grounding"):
        tags.add_column(col)
    for t in report.tags:
        tags.add_row(t.tag, str(t.scenarios), f"{t.accuracy:.0%}", f"{t.grounding:.0%}")
    console.print(tags)
    setups = Table(title="Per setup")
    for col in ("setup", "n", "accuracy", "healthy stacks", "grounding", "citations resolve"):
        setups.add_column(col)
    for x in report.setups:
        setups.add_row(
            x.setup,
            str(x.scenarios),
            f"{x.accuracy:.0%}",
            "-" if x.healthy is None else f"{x.healthy:.0%}",
            f"{x.grounding:.0%}",
            f"{x.citations:.0%}",
        )
    console.print(setups)
    for x in report.setups:
        console.print(f"setup {x.setup}: root-cause accuracy {x.accuracy:.0%} ({x.scenarios})")
    console.print(
        f"root-cause accuracy {report.accuracy:.0%} · grounding {report.grounding:.0%} · "
        f"{len(report.results)} diagnoses in {report.duration_ms:.0f} ms"
    )
