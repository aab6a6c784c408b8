"""The investigation graph (LangGraph): gather → analyse → investigate ⇄ tools/approve → conclude.

* **gather** — one deterministic, parallel first pass over MCP (deep health, circuits,
  error groups, recent timeline); each result is numbered evidence.
* **analyse** — the offline analyzers turn evidence into findings citing evidence ids.
  Always runs; its findings survive whatever happens next.
* **investigate** — one LLM step through the provider chain, inside a step budget and a
  token budget. When no LLM is configured, or every provider fails, or a budget runs out,
  the graph goes to *conclude* with what it knows.
* **tools** — runs the model's read-only tool calls in parallel; refuses repeated
  identical calls; trims oversized output with a note; shows tool errors as errors. Each
  result becomes new evidence. Control calls are parked for *approve*.
* **approve** — a LangGraph ``interrupt`` per control call; only a human's approval
  (``Command(resume={"approved": True})``) lets it run. Nothing with side effects happens
  in this node before the interrupts, and read-only calls ran in the previous node, whose
  results are checkpointed — so resuming never repeats a side effect.
* **conclude** — the structured :class:`~agent.models.Diagnosis` (:mod:`agent.conclusion`).

Every node is a module-level function ``(state, runtime) -> update`` over the typed
:class:`~agent.state.AgentState`; what it needs besides the state (MCP tools, provider
chain, budgets, thresholds, clock, progress consumer) is LangGraph's runtime context,
:class:`~agent.state.AgentContext`, passed with every run and resume::

    graph = build_graph(checkpointer)
    await graph.ainvoke(turn_input(...), config, context=AgentContext(tools, chain))
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Literal

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import interrupt

from agent.analyzers import analyse
from agent.conclusion import conclude
from agent.gather import gather, record_from_outcome
from agent.mcp_client import DiagTools, ToolOutcome
from agent.models import EvidenceRecord, PendingAction, ToolArguments
from agent.prompt import SYSTEM_PROMPT, turn_message, wrap_data
from agent.providers import (
    AllProvidersFailed,
    AssistantMessage,
    ChatMessage,
    SystemMessage,
    ToolCall,
    ToolDef,
    ToolMessage,
    UserMessage,
)
from agent.state import (
    AgentContext,
    AgentState,
    ApprovalRequest,
    OfflineAnalysis,
    TurnInput,
)
from guilde_core.redaction import redact, redact_text

if TYPE_CHECKING:
    from langgraph.checkpoint.base import BaseCheckpointSaver
    from langgraph.graph.state import CompiledStateGraph

__all__ = [
    "AgentGraph",
    "build_graph",
]

type AgentGraph = CompiledStateGraph[AgentState, AgentContext, TurnInput, AgentState]


def _signature(name: str, arguments: ToolArguments) -> str:
    return f"{name}:{json.dumps(arguments, sort_keys=True, default=str)}"


def _next_evidence_index(evidence: list[EvidenceRecord]) -> int:
    numbers = [int(r["id"][1:]) for r in evidence if r["id"][1:].isdigit()]
    return max(numbers, default=0) + 1


def _turn(state: AgentState) -> int:
    return int(state.get("turn") or 0)


def _tool_msg(call: ToolCall, content: str, *, error: bool) -> ToolMessage:
    return ToolMessage(
        role="tool",
        tool_call_id=call["id"],
        name=call["name"],
        content=content,
        is_error=error,
    )


def _offered_tools(tools: DiagTools) -> list[ToolDef]:
    """The tools the model may call (every one but ``diagnose``, which is this agent)."""
    return [
        ToolDef(s.name, s.description, s.input_schema)
        for s in tools.specs.values()
        if s.name.split("_")[-1] != "diagnose" and s.name != "diagnose"
    ]


def _trim(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return (
        f"{text[:limit]}\n[output trimmed: showing {limit} of {len(text)} characters; "
        "ask for a narrower query to see more]"
    )


def _prompt_view(message: ChatMessage) -> ChatMessage:
    """``message`` without the graph's bookkeeping (``id``, ``turn``)."""
    view = message.copy()
    view.pop("id", None)
    view.pop("turn", None)
    return view


# --------------------------------------------------------------------------------- gather
async def gather_node(state: AgentState, runtime: Runtime[AgentContext]) -> AgentState:
    ctx = runtime.context
    ctx.emit({"type": "phase", "phase": "gather"})
    records = await gather(
        ctx.tools,
        start_index=_next_evidence_index(state.get("evidence") or []),
        turn=_turn(state),
        focus=state.get("focus"),
        window_minutes=state.get("window_minutes"),
    )
    for record in records:
        ctx.emit(
            {
                "type": "tool",
                "phase": "gather",
                "tool": record["tool"],
                "ok": record["ok"],
                "evidence_id": record["id"],
            }
        )
    return {"evidence": records, "usage": {"tool_calls": len(records)}}


# --------------------------------------------------------------------------------- analyse
async def analyse_node(state: AgentState, runtime: Runtime[AgentContext]) -> AgentState:
    ctx = runtime.context
    ctx.emit({"type": "phase", "phase": "analyse"})
    turn = _turn(state)
    question = state.get("question", "")
    records = [r for r in state.get("evidence") or [] if r.get("turn") == turn]
    result = analyse(
        records,
        question=question,
        focus=state.get("focus"),
        thresholds=ctx.thresholds,
        finding_prefix=f"F{turn}." if turn else "F",
        window_minutes=state.get("window_minutes"),
    )
    for f in result.findings:
        ctx.emit(
            {
                "type": "finding",
                "severity": f.severity,
                "component": f.component,
                "category": f.category,
                "title": f.title,
                "evidence_ids": f.evidence_ids,
            }
        )
    offline = OfflineAnalysis(
        root_cause=result.root_cause.model_dump(),
        status=result.status,
        recommendations=result.recommendations,
        symptom=result.symptom.model_dump() if result.symptom is not None else None,
        chain=result.chain,
        other_problems=[f.model_dump() for f in result.other_problems],
        checked=result.checked,
    )
    if ctx.chain.has_llm:
        content = turn_message(
            question,
            records,
            result.findings,
            result.root_cause,
            chain=result.chain,
            other_problems=result.other_problems,
        )
    else:
        content = redact_text(question)
    return {
        "findings": [f.model_dump() for f in result.findings],
        "offline": offline,
        "messages": [UserMessage(role="user", content=content, turn=turn)],
    }


def after_analyse(
    state: AgentState, runtime: Runtime[AgentContext]
) -> Literal["investigate", "conclude"]:
    return "investigate" if runtime.context.chain.has_llm else "conclude"


# --------------------------------------------------------------------------------- investigate
def _budget_spent(state: AgentState, ctx: AgentContext) -> str | None:
    """Why no further LLM step may be taken (``None``: within budget)."""
    usage = state.get("usage") or {}
    budgets = ctx.budgets
    if usage.get("steps", 0) >= budgets.max_steps:
        return f"step budget ({budgets.max_steps}) exhausted; concluded with what is known"
    tokens = usage.get("tokens", 0)
    if tokens >= budgets.token_budget:
        return (
            f"token budget ({budgets.token_budget}) exhausted after {tokens} tokens; "
            "concluded with what is known"
        )
    return None


async def investigate_node(state: AgentState, runtime: Runtime[AgentContext]) -> AgentState:
    ctx = runtime.context
    spent = _budget_spent(state, ctx)
    if spent is not None:
        return {"stop": True, "pending": [], "notes": [spent]}
    steps = (state.get("usage") or {}).get("steps", 0)
    ctx.emit({"type": "phase", "phase": "investigate", "step": steps + 1})
    prompt: list[ChatMessage] = [
        SystemMessage(role="system", content=SYSTEM_PROMPT),
        *(_prompt_view(m) for m in state.get("messages") or []),
    ]
    notes_before = len(ctx.chain.notes)
    try:
        reply = await ctx.chain.complete(
            prompt, _offered_tools(ctx.tools), max_tokens=ctx.budgets.max_tokens_per_call
        )
    except AllProvidersFailed:
        failed = ctx.chain.notes[notes_before:] or ["no LLM provider could answer"]
        ctx.emit({"type": "llm_failed", "notes": failed})
        return {"stop": True, "llm_failed": True, "pending": [], "notes": failed}
    assistant = AssistantMessage(role="assistant", content=reply.text)
    if reply.tool_calls:
        assistant["tool_calls"] = list(reply.tool_calls)
    ctx.emit(
        {
            "type": "llm",
            "provider": reply.provider,
            "model": reply.model,
            "tool_calls": [c["name"] for c in reply.tool_calls],
            "tokens": reply.tokens,
        }
    )
    update: AgentState = {
        "usage": {"steps": 1, "tokens": reply.tokens},
        "notes": ctx.chain.notes[notes_before:],
        "messages": [assistant],
    }
    if reply.tool_calls:
        update["pending"] = list(reply.tool_calls)
        update["llm"] = {"provider": reply.provider, "model": reply.model, "answer": None}
        return update
    update["pending"] = []
    update["stop"] = True
    update["llm"] = {"provider": reply.provider, "model": reply.model, "answer": reply.text}
    return update


def after_investigate(state: AgentState) -> Literal["tools", "conclude"]:
    if state.get("stop") or not state.get("pending"):
        return "conclude"
    return "tools"


# --------------------------------------------------------------------------------- tools
async def tools_node(state: AgentState, runtime: Runtime[AgentContext]) -> AgentState:
    ctx = runtime.context
    seen = set(state.get("seen_calls") or [])
    next_index = _next_evidence_index(state.get("evidence") or [])
    turn = _turn(state)
    messages: list[ChatMessage] = []
    control: list[ToolCall] = []
    to_run: list[ToolCall] = []
    new_seen: list[str] = []
    for call in state.get("pending") or []:
        name, args = call["name"], call.get("arguments") or {}
        spec = ctx.tools.spec(name)
        if spec is None:
            messages.append(_tool_msg(call, f"unknown tool {name!r}", error=True))
            continue
        if "__invalid_arguments__" in args:
            messages.append(_tool_msg(call, "arguments were not valid JSON", error=True))
            continue
        sig = _signature(name, args)
        if sig in seen or sig in new_seen:
            messages.append(
                _tool_msg(
                    call,
                    "refused: this identical call was already made in this session; "
                    "use its earlier result",
                    error=True,
                )
            )
            ctx.emit({"type": "tool_refused", "tool": name, "reason": "repeated"})
            continue
        new_seen.append(sig)
        if spec.control:
            control.append(call)
            continue
        to_run.append(call)

    for call in to_run:
        ctx.emit({"type": "tool", "phase": "investigate", "tool": call["name"], "ok": None})
    outcomes: list[ToolOutcome] = await asyncio.gather(
        *(ctx.tools.call(c["name"], c.get("arguments") or {}) for c in to_run)
    )
    records: list[EvidenceRecord] = []
    for call, outcome in zip(to_run, outcomes, strict=True):
        eid = f"E{next_index}"
        next_index += 1
        records.append(record_from_outcome(eid, outcome, turn=turn))
        if outcome.ok:
            body = json.dumps(outcome.data, default=str) if outcome.data else outcome.text
            text = wrap_data(eid, outcome.name, _trim(body, ctx.budgets.tool_output_chars))
        else:
            text = wrap_data(eid, outcome.name, outcome.error or "failed", error=True)
        messages.append(_tool_msg(call, text, error=not outcome.ok))
        ctx.emit(
            {
                "type": "tool",
                "phase": "investigate",
                "tool": outcome.name,
                "ok": outcome.ok,
                "evidence_id": eid,
            }
        )
    return {
        "messages": messages,
        "evidence": records,
        "seen_calls": new_seen,
        "control_pending": control,
        "pending": [],
        "usage": {"tool_calls": len(to_run)},
    }


def after_tools(state: AgentState) -> Literal["approve", "investigate"]:
    return "approve" if state.get("control_pending") else "investigate"


# --------------------------------------------------------------------------------- approve
def _approved(decision: object) -> tuple[bool, str | None]:
    """A resume value read as (approved, reason): anything but an explicit approval denies."""
    if not isinstance(decision, dict):
        return False, None
    reason = decision.get("reason")
    return bool(decision.get("approved")), str(reason) if reason else None


async def approve_node(state: AgentState, runtime: Runtime[AgentContext]) -> AgentState:
    ctx = runtime.context
    calls = state.get("control_pending") or []
    decisions: list[object] = []
    for call in calls:
        ctx.emit({"type": "approval_required", "tool": call["name"]})
        request = ApprovalRequest(
            type="approval",
            tool=call["name"],
            arguments=redact(call.get("arguments") or {}),
            question=state.get("question", ""),
        )
        decisions.append(interrupt(request))
    # every decision is known: only now does anything with side effects run
    messages: list[ChatMessage] = []
    actions: list[PendingAction] = []
    approved_calls = 0
    for call, decision in zip(calls, decisions, strict=True):
        approved, reason = _approved(decision)
        if approved:
            outcome = await ctx.tools.call(call["name"], call.get("arguments") or {})
            approved_calls += 1
            result = outcome.text if outcome.ok else f"failed: {outcome.error}"
            messages.append(_tool_msg(call, redact_text(result), error=not outcome.ok))
        else:
            result = "denied by the operator" + (f": {reason}" if reason else "")
            messages.append(_tool_msg(call, result, error=True))
        status: Literal["approved", "denied"] = "approved" if approved else "denied"
        actions.append(
            PendingAction(
                tool=call["name"],
                arguments=redact(call.get("arguments") or {}),
                status=status,
                result=redact_text(result)[:500],
            )
        )
        ctx.emit({"type": "approval", "tool": call["name"], "status": status})
    return {
        "messages": messages,
        "actions": [a.model_dump() for a in actions],
        "control_pending": [],
        "usage": {"tool_calls": approved_calls},
    }


# --------------------------------------------------------------------------------- conclude
async def conclude_node(state: AgentState, runtime: Runtime[AgentContext]) -> AgentState:
    ctx = runtime.context
    ctx.emit({"type": "phase", "phase": "conclude"})
    diagnosis = conclude(state, ctx)
    dump = diagnosis.model_dump(mode="json")
    ctx.emit({"type": "diagnosis", "diagnosis": dump})
    update: AgentState = {"diagnosis": dump}
    if diagnosis.mode != "llm":
        rc = diagnosis.root_cause
        summary = (
            f"[{diagnosis.mode} diagnosis] status {diagnosis.status}; root cause "
            f"{rc.component} / {rc.category}: {rc.summary}"
        )
        update["messages"] = [
            AssistantMessage(role="assistant", content=summary, turn=state.get("turn", 0))
        ]
    return update


def build_graph(checkpointer: BaseCheckpointSaver[str] | None = None) -> AgentGraph:
    """Compile the investigation graph (with a checkpointer for sessions). Run it with an
    :class:`~agent.state.AgentContext`: ``graph.ainvoke(input, config, context=…)``."""
    builder = StateGraph(AgentState, context_schema=AgentContext, input_schema=TurnInput)
    builder.add_node("gather", gather_node)
    builder.add_node("analyse", analyse_node)
    builder.add_node("investigate", investigate_node)
    builder.add_node("tools", tools_node)
    builder.add_node("approve", approve_node)
    builder.add_node("conclude", conclude_node)
    builder.add_edge(START, "gather")
    builder.add_edge("gather", "analyse")
    builder.add_conditional_edges("analyse", after_analyse)
    builder.add_conditional_edges("investigate", after_investigate)
    builder.add_conditional_edges("tools", after_tools)
    builder.add_edge("approve", "investigate")
    builder.add_edge("conclude", END)
    return builder.compile(checkpointer=checkpointer)
