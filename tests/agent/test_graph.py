"""The investigation graph on its own: nodes take their dependencies from LangGraph's runtime
context (never from the checkpoint), and a follow-up question starts fresh counters."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from langgraph.checkpoint.memory import InMemorySaver

from agent.graph import build_graph
from agent.mcp_client import DiagTools, MCPTarget
from agent.models import Diagnosis
from agent.providers import ProviderChain
from agent.runner import DiagnosisAgent
from agent.state import AgentContext, turn_input
from evals.recorded import build_recorded_server
from guilde_core.config import get_settings
from tests.agent.conftest import scenario_data


def _ticks(start: float, step: float) -> Iterator[float]:
    now = start
    while True:
        yield now
        now += step


def test_one_compiled_graph_serves_each_run_with_its_own_context() -> None:
    """The same graph (and checkpointer) runs two sessions against two MCP servers: what a
    node reaches — the tools, the clock, the progress consumer — is the run's context."""
    db_server, db_state = build_recorded_server(scenario_data("db-unreachable"))
    redis_server, redis_state = build_recorded_server(
        scenario_data("redis-unreachable-memory-herring")
    )
    graph = build_graph(InMemorySaver())
    chain = ProviderChain([], get_settings())

    async def run(
        server: MCPTarget, session: str, ticks: Iterator[float]
    ) -> tuple[Diagnosis, list[str]]:
        seen: list[str] = []
        async with DiagTools(server) as tools:
            context = AgentContext(
                tools=tools,
                chain=chain,
                clock=lambda: next(ticks),
                on_event=lambda e: seen.append(str(e["type"])),
            )
            await graph.ainvoke(
                turn_input("why?", turn=0, started=context.clock()),
                {"configurable": {"thread_id": session}},
                context=context,
            )
            snapshot = await graph.aget_state({"configurable": {"thread_id": session}})
        return Diagnosis.model_validate(snapshot.values["diagnosis"]), seen

    db, db_events = asyncio.run(run(db_server, "a", _ticks(100.0, 0.25)))
    redis, redis_events = asyncio.run(run(redis_server, "b", _ticks(500.0, 2.0)))
    assert (db.root_cause.component, redis.root_cause.component) == ("database", "redis")
    assert len(db_state.calls) == len(redis_state.calls) == 6  # each context's own tools
    assert db.duration_ms == 250.0  # the clock of the context: started 100.0, ended 100.25
    assert redis.duration_ms == 2000.0
    assert db_events[0] == redis_events[0] == "phase"
    assert db_events[-1] == redis_events[-1] == "diagnosis"


def test_a_follow_up_question_starts_fresh_counters_and_notes() -> None:
    server, state = build_recorded_server(scenario_data("db-unreachable"))
    settings = get_settings()

    async def go() -> tuple[Diagnosis, Diagnosis, int]:
        async with DiagTools(server) as tools:
            agent = DiagnosisAgent(
                tools, ProviderChain([], settings, notes=["openai:x: skipped"]), settings=settings
            )
            first = await agent.ask("why is checkout failing?", session_id="s")
            second = await agent.ask("and redis?", session_id="s")
            values = await agent.state("s")
        assert first.diagnosis is not None
        assert second.diagnosis is not None
        return first.diagnosis, second.diagnosis, len(values.get("messages") or [])

    first, second, messages = asyncio.run(go())
    assert first.tool_calls == second.tool_calls == 6  # not added up across questions
    assert [e.id for e in second.evidence] == ["E7", "E8", "E9", "E10", "E11", "E12"]
    assert second.notes.count("openai:x: skipped") == 1  # notes of the first are not carried
    assert second.mode == first.mode == "degraded"
    assert messages == 4  # question and answer of each turn
    assert len(state.calls) == 12
