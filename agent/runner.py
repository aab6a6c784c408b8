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
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from agent.analyzers import Thresholds
from agent.graph import AgentGraph, build_graph
from agent.mcp_client import DiagTools
from agent.models import Diagnosis
from agent.providers import ChatMessage, ProviderChain
from agent.state import (
    AgentContext,
    AgentState,
    ApprovalRequest,
    Budgets,
    ProgressCallback,
    turn_input,
)
from guilde_core.config import Settings, get_settings

if TYPE_CHECKING:
    from langgraph.checkpoint.base import BaseCheckpointSaver
    from langgraph.types import StateSnapshot

    from agent.state import TurnInput

__all__ = ["Approver", "DiagnosisAgent", "RunResult"]

#: called with an :class:`~agent.state.ApprovalRequest` (as a plain dict); returns an
#: :class:`~agent.state.ApprovalDecision` such as ``{"approved": False, "reason": "…"}``
Approver = Callable[[dict[str, object]], Awaitable[Mapping[str, object]]]


@dataclass
class RunResult:
    """Either a diagnosis, or the approval requests the run is waiting on."""

    session_id: str
    diagnosis: Diagnosis | None = None
    pending: list[ApprovalRequest] = field(default_factory=list)


class DiagnosisAgent:
    """The investigation graph bound to an MCP session, a provider chain and a checkpointer."""

    def __init__(
        self,
        tools: DiagTools,
        chain: ProviderChain,
        *,
        settings: Settings | None = None,
        checkpointer: BaseCheckpointSaver[str] | None = None,
        on_event: ProgressCallback | None = None,
        max_steps: int | None = None,
        token_budget: int | None = None,
    ) -> None:
        settings = settings or get_settings()
        if checkpointer is None:
            from langgraph.checkpoint.memory import InMemorySaver

            checkpointer = InMemorySaver()
        self.settings = settings
        self.context = AgentContext(
            tools=tools,
            chain=chain,
            budgets=Budgets.from_settings(settings, max_steps=max_steps, token_budget=token_budget),
            thresholds=Thresholds.from_settings(settings),
            on_event=on_event,
        )
        self.checkpointer = checkpointer
        self.graph: AgentGraph = build_graph(checkpointer)

    async def _snapshot(self, session_id: str) -> StateSnapshot:
        return await self.graph.aget_state({"configurable": {"thread_id": session_id}})

    async def _start(self, session_id: str, question: TurnInput) -> None:
        await self.graph.ainvoke(
            question, {"configurable": {"thread_id": session_id}}, context=self.context
        )

    async def _resume(self, session_id: str, decision: Mapping[str, object]) -> None:
        from langgraph.types import Command

        await self.graph.ainvoke(
            Command(resume=dict(decision)),
            {"configurable": {"thread_id": session_id}},
            context=self.context,
        )

    async def state(self, session_id: str) -> AgentState:
        """The checkpointed state of a session ({} when it does not exist)."""
        snapshot = await self._snapshot(session_id)
        return cast("AgentState", dict(snapshot.values or {}))

    async def _pending(self, session_id: str) -> list[ApprovalRequest]:
        snapshot = await self._snapshot(session_id)
        found: list[ApprovalRequest] = []
        for task in snapshot.tasks or ():
            for intr in task.interrupts:
                if isinstance(intr.value, dict):
                    found.append(cast("ApprovalRequest", intr.value))
        return found

    async def _finish(self, session_id: str, approver: Approver | None) -> RunResult:
        while True:
            pending = await self._pending(session_id)
            if not pending:
                break
            if approver is None:
                return RunResult(session_id=session_id, pending=pending)
            await self._resume(session_id, await approver(dict(pending[0])))
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
        await self._start(
            session_id,
            turn_input(
                question,
                turn=turn,
                started=self.context.clock(),
                focus=focus,
                window_minutes=window_minutes,
            ),
        )
        return await self._finish(session_id, approver)

    async def resume(
        self,
        session_id: str,
        decision: Mapping[str, object],
        *,
        approver: Approver | None = None,
    ) -> RunResult:
        """Answer the approval request a session waits on (an
        :class:`~agent.state.ApprovalDecision`), and carry on."""
        if not await self._pending(session_id):
            return await self._finish(session_id, approver)
        await self._resume(session_id, decision)
        return await self._finish(session_id, approver)

    async def history(self, session_id: str) -> list[ChatMessage]:
        """The session's conversation (user questions, the model's and the tools' turns)."""
        values = await self.state(session_id)
        return list(values.get("messages") or [])
