"""Run questions through the graph: one-shot, in sessions, with approval of control actions.

:class:`DiagnosisAgent` is the one entry point the CLI, agent-web, the eval runner and the
benchmark use::

    async with DiagTools(url) as tools:
        agent = DiagnosisAgent(tools, build_chain(settings), settings=settings,
                               checkpointer=saver)
        result = await agent.ask("why is checkout failing?", session_id="s1")
        if result.pending:            # a control action waits for a human
            result = await agent.resume("s1", {"approved": False, "reason": "not now"})
        print(result.diagnosis)
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from agent.analyzers import Thresholds
from agent.graph import AgentDeps, ProgressCallback, build_graph, turn_input
from agent.mcp_client import DiagTools
from agent.models import Diagnosis
from agent.providers import ProviderChain
from guilde_core.config import Settings, get_settings

__all__ = ["Approver", "DiagnosisAgent", "RunResult"]

#: called with an approval request; returns ``{"approved": bool, "reason": str}``
Approver = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass
class RunResult:
    """Either a diagnosis, or the approval request the run is waiting on."""

    session_id: str
    diagnosis: Diagnosis | None = None
    pending: list[dict[str, Any]] = field(default_factory=list)


class DiagnosisAgent:
    """The investigation graph bound to an MCP session, a provider chain and a checkpointer."""

    def __init__(
        self,
        tools: DiagTools,
        chain: ProviderChain,
        *,
        settings: Settings | None = None,
        checkpointer: Any = None,
        on_event: ProgressCallback | None = None,
        max_steps: int | None = None,
        token_budget: int | None = None,
    ) -> None:
        settings = settings or get_settings()
        if checkpointer is None:
            from langgraph.checkpoint.memory import InMemorySaver

            checkpointer = InMemorySaver()
        self.settings = settings
        self.deps = AgentDeps(
            tools=tools,
            chain=chain,
            max_steps=max_steps or settings.agent_max_steps,
            token_budget=token_budget or settings.agent_token_budget,
            thresholds=Thresholds.from_settings(settings),
            on_event=on_event,
        )
        self.checkpointer = checkpointer
        self.graph = build_graph(self.deps, checkpointer)

    @staticmethod
    def _config(session_id: str) -> dict[str, Any]:
        return {"configurable": {"thread_id": session_id}}

    async def state(self, session_id: str) -> dict[str, Any]:
        """The checkpointed state of a session ({} when it does not exist)."""
        snapshot = await self.graph.aget_state(self._config(session_id))
        return dict(snapshot.values or {})

    async def _pending(self, session_id: str) -> list[dict[str, Any]]:
        snapshot = await self.graph.aget_state(self._config(session_id))
        found: list[dict[str, Any]] = []
        for task in snapshot.tasks or ():
            for intr in getattr(task, "interrupts", ()) or ():
                value = getattr(intr, "value", None)
                if isinstance(value, dict):
                    found.append(value)
        return found

    async def _finish(self, session_id: str, approver: Approver | None) -> RunResult:
        config = self._config(session_id)
        while True:
            pending = await self._pending(session_id)
            if not pending:
                break
            if approver is None:
                return RunResult(session_id=session_id, pending=pending)
            from langgraph.types import Command

            decision = await approver(pending[0])
            await self.graph.ainvoke(Command(resume=decision), config)
        values = await self.state(session_id)
        raw = values.get("diagnosis")
        diagnosis = Diagnosis.model_validate(raw) if raw else None
        if diagnosis is not None:
            diagnosis.session_id = session_id
        return RunResult(session_id=session_id, diagnosis=diagnosis)

    async def ask(
        self,
        question: str,
        *,
        session_id: str | None = None,
        focus: str | None = None,
        window_minutes: float | None = None,
        approver: Approver | None = None,
    ) -> RunResult:
        """Investigate ``question`` (a follow-up when the session already exists)."""
        session_id = session_id or uuid.uuid4().hex
        previous = await self.state(session_id)
        if await self._pending(session_id):
            return await self._finish(session_id, approver)
        turn = int(previous.get("turn", -1)) + 1 if previous else 0
        await self.graph.ainvoke(
            turn_input(question, turn=turn, focus=focus, window_minutes=window_minutes),
            self._config(session_id),
        )
        return await self._finish(session_id, approver)

    async def resume(
        self, session_id: str, decision: dict[str, Any], *, approver: Approver | None = None
    ) -> RunResult:
        """Answer the approval request a session waits on, and carry on."""
        from langgraph.types import Command

        if not await self._pending(session_id):
            return await self._finish(session_id, approver)
        await self.graph.ainvoke(Command(resume=decision), self._config(session_id))
        return await self._finish(session_id, approver)

    async def history(self, session_id: str) -> list[dict[str, Any]]:
        """The session's conversation as plain-dict messages (user questions and answers)."""
        values = await self.state(session_id)
        return list(values.get("messages") or [])
