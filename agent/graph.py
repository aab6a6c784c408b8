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
* **conclude** — the structured :class:`~agent.models.Diagnosis`.

Messages are plain dicts kept under :func:`merge_messages` (our own reducer); the graph
state holds only JSON-like values so any checkpointer can persist it.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypedDict

from agent.analyzers import Thresholds, analyse
from agent.gather import gather, record_from_outcome
from agent.mcp_client import DiagTools, ToolOutcome
from agent.models import CATEGORIES, Diagnosis, Evidence, Finding, PendingAction, RootCause
from agent.prompt import SYSTEM_PROMPT, parse_conclusion, turn_message, wrap_data
from agent.providers import AllProvidersFailed, ProviderChain, ToolDef
from guilde_core.redaction import redact, redact_text

__all__ = [
    "AgentDeps",
    "AgentState",
    "build_graph",
    "merge_messages",
]

ProgressCallback = Callable[[dict[str, Any]], None]


# --- reducers ------------------------------------------------------------------------------
def merge_messages(
    left: list[dict[str, Any]] | None, right: list[dict[str, Any]] | dict[str, Any] | None
) -> list[dict[str, Any]]:
    """Append plain-dict messages; a message with a known ``id`` replaces the old one."""
    merged = list(left or [])
    incoming = [right] if isinstance(right, dict) else list(right or [])
    index = {m.get("id"): i for i, m in enumerate(merged) if m.get("id")}
    for message in incoming:
        message = dict(message)
        message.setdefault("id", uuid.uuid4().hex[:12])
        if message["id"] in index:
            merged[index[message["id"]]] = message
        else:
            index[message["id"]] = len(merged)
            merged.append(message)
    return merged


def merge_evidence(
    left: list[dict[str, Any]] | None, right: list[dict[str, Any]] | None
) -> list[dict[str, Any]]:
    """Evidence records by id (new ids appended, same id replaced)."""
    merged = {r["id"]: r for r in left or []}
    for record in right or []:
        merged[record["id"]] = record
    return list(merged.values())


def add_usage(left: dict[str, int] | None, right: dict[str, int] | None) -> dict[str, int]:
    """Counters add up; ``{"reset": 1}`` starts a new turn's counters."""
    if right and right.get("reset"):
        return {k: v for k, v in right.items() if k != "reset"}
    out = dict(left or {})
    for key, value in (right or {}).items():
        out[key] = out.get(key, 0) + value
    return out


def append_list(left: list[Any] | None, right: list[Any] | None) -> list[Any]:
    """Append, but ``[None]`` first clears (a new turn)."""
    if right and right[0] is None:
        return list(right[1:])
    return [*(left or []), *(right or [])]


class AgentState(TypedDict, total=False):
    """Checkpointed state of one session (thread)."""

    question: str
    focus: str | None
    window_minutes: float | None
    turn: int
    started: float
    messages: Annotated[list[dict[str, Any]], merge_messages]
    evidence: Annotated[list[dict[str, Any]], merge_evidence]
    findings: list[dict[str, Any]]
    offline: dict[str, Any]
    pending: list[dict[str, Any]]
    control_pending: list[dict[str, Any]]
    seen_calls: Annotated[list[str], append_list]
    usage: Annotated[dict[str, int], add_usage]
    notes: Annotated[list[str], append_list]
    actions: Annotated[list[dict[str, Any]], append_list]
    llm: dict[str, Any] | None
    llm_failed: bool
    stop: bool
    diagnosis: dict[str, Any] | None


@dataclass
class AgentDeps:
    """What the nodes need that does not belong in the checkpoint."""

    tools: DiagTools
    chain: ProviderChain
    max_steps: int = 8
    token_budget: int = 40_000
    thresholds: Thresholds = field(default_factory=Thresholds)
    tool_output_chars: int = 4000
    max_tokens_per_call: int = 1024
    on_event: ProgressCallback | None = None

    def emit(self, event: dict[str, Any]) -> None:
        if self.on_event is not None:
            try:
                self.on_event(redact(event))
            except Exception:  # a broken progress consumer never breaks the run
                self.on_event = None


def _signature(name: str, arguments: dict[str, Any]) -> str:
    return f"{name}:{json.dumps(arguments, sort_keys=True, default=str)}"


def _next_evidence_index(evidence: list[dict[str, Any]]) -> int:
    numbers = [int(r["id"][1:]) for r in evidence if r["id"][1:].isdigit()]
    return max(numbers, default=0) + 1


def build_graph(deps: AgentDeps, checkpointer: Any = None) -> Any:
    """Compile the investigation graph over ``deps`` (with a checkpointer for sessions)."""
    from langgraph.graph import END, START, StateGraph
    from langgraph.types import interrupt

    # ---------------------------------------------------------------- gather
    async def gather_node(state: AgentState) -> dict[str, Any]:
        deps.emit({"type": "phase", "phase": "gather"})
        start = _next_evidence_index(state.get("evidence") or [])
        records = await gather(
            deps.tools,
            start_index=start,
            focus=state.get("focus"),
            window_minutes=state.get("window_minutes"),
        )
        turn = int(state.get("turn") or 0)
        for record in records:
            record["turn"] = turn
            deps.emit(
                {
                    "type": "tool",
                    "phase": "gather",
                    "tool": record["tool"],
                    "ok": record["ok"],
                    "evidence_id": record["id"],
                }
            )
        return {"evidence": records, "usage": {"tool_calls": len(records)}}

    # ---------------------------------------------------------------- analyse
    async def analyse_node(state: AgentState) -> dict[str, Any]:
        deps.emit({"type": "phase", "phase": "analyse"})
        turn = int(state.get("turn") or 0)
        records = [r for r in state.get("evidence") or [] if r.get("turn") == turn]
        result = analyse(
            records,
            question=state.get("question", ""),
            focus=state.get("focus"),
            thresholds=deps.thresholds,
            finding_prefix=f"F{turn}." if turn else "F",
        )
        findings = [f.model_dump() for f in result.findings]
        for f in result.findings:
            deps.emit(
                {
                    "type": "finding",
                    "severity": f.severity,
                    "component": f.component,
                    "category": f.category,
                    "title": f.title,
                    "evidence_ids": f.evidence_ids,
                }
            )
        offline: dict[str, Any] = {
            "root_cause": result.root_cause.model_dump(),
            "status": result.status,
            "recommendations": result.recommendations,
        }
        update: dict[str, Any] = {"findings": findings, "offline": offline}
        if deps.chain.has_llm:
            content = turn_message(
                state.get("question", ""), records, findings, offline["root_cause"]
            )
            update["messages"] = [{"role": "user", "content": content, "turn": turn}]
        else:
            question = redact_text(state.get("question", ""))
            update["messages"] = [{"role": "user", "content": question, "turn": turn}]
        return update

    def after_analyse(state: AgentState) -> Literal["investigate", "conclude"]:
        return "investigate" if deps.chain.has_llm else "conclude"

    # ---------------------------------------------------------------- investigate
    def tool_defs() -> list[ToolDef]:
        return [
            ToolDef(s.name, s.description, s.input_schema)
            for s in deps.tools.specs.values()
            if s.name.split("_")[-1] != "diagnose" and s.name != "diagnose"
        ]

    async def investigate_node(state: AgentState) -> dict[str, Any]:
        usage = state.get("usage") or {}
        steps = usage.get("steps", 0)
        tokens = usage.get("tokens", 0)
        if steps >= deps.max_steps:
            return {
                "stop": True,
                "pending": [],
                "notes": [
                    f"step budget ({deps.max_steps}) exhausted; concluded with what is known"
                ],
            }
        if tokens >= deps.token_budget:
            return {
                "stop": True,
                "pending": [],
                "notes": [
                    f"token budget ({deps.token_budget}) exhausted after {tokens} tokens; "
                    "concluded with what is known"
                ],
            }
        deps.emit({"type": "phase", "phase": "investigate", "step": steps + 1})
        history = [
            {k: v for k, v in m.items() if k not in ("id", "turn")}
            for m in state.get("messages") or []
        ]
        prompt = [{"role": "system", "content": SYSTEM_PROMPT}, *history]
        notes_before = len(deps.chain.notes)
        try:
            reply = await deps.chain.complete(
                prompt, tool_defs(), max_tokens=deps.max_tokens_per_call
            )
        except AllProvidersFailed:
            new_notes = deps.chain.notes[notes_before:] or ["no LLM provider could answer"]
            deps.emit({"type": "llm_failed", "notes": new_notes})
            return {"stop": True, "llm_failed": True, "pending": [], "notes": new_notes}
        new_notes = deps.chain.notes[notes_before:]
        update: dict[str, Any] = {
            "usage": {"steps": 1, "tokens": reply.tokens},
            "notes": new_notes,
        }
        assistant: dict[str, Any] = {"role": "assistant", "content": reply.text}
        if reply.tool_calls:
            assistant["tool_calls"] = [
                {"id": c.id, "name": c.name, "arguments": c.arguments} for c in reply.tool_calls
            ]
        update["messages"] = [assistant]
        deps.emit(
            {
                "type": "llm",
                "provider": reply.provider,
                "model": reply.model,
                "tool_calls": [c.name for c in reply.tool_calls],
                "tokens": reply.tokens,
            }
        )
        if reply.tool_calls:
            update["pending"] = assistant["tool_calls"]
            update["llm"] = {"provider": reply.provider, "model": reply.model, "answer": None}
            return update
        update["pending"] = []
        update["stop"] = True
        update["llm"] = {
            "provider": reply.provider,
            "model": reply.model,
            "answer": reply.text,
            "conclusion": parse_conclusion(reply.text),
        }
        return update

    def after_investigate(state: AgentState) -> Literal["tools", "conclude"]:
        if state.get("stop") or not state.get("pending"):
            return "conclude"
        return "tools"

    # ---------------------------------------------------------------- tools
    def trim(text: str) -> str:
        limit = deps.tool_output_chars
        if len(text) <= limit:
            return text
        return (
            f"{text[:limit]}\n[output trimmed: showing {limit} of {len(text)} characters; "
            "ask for a narrower query to see more]"
        )

    async def tools_node(state: AgentState) -> dict[str, Any]:
        pending = state.get("pending") or []
        seen = set(state.get("seen_calls") or [])
        next_index = _next_evidence_index(state.get("evidence") or [])
        turn = int(state.get("turn") or 0)
        messages: list[dict[str, Any]] = []
        control: list[dict[str, Any]] = []
        to_run: list[dict[str, Any]] = []
        new_seen: list[str] = []
        for call in pending:
            name, args = call["name"], call.get("arguments") or {}
            spec = deps.tools.spec(name)
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
                deps.emit({"type": "tool_refused", "tool": name, "reason": "repeated"})
                continue
            new_seen.append(sig)
            if spec.control:
                control.append(call)
                continue
            to_run.append(call)

        for call in to_run:
            deps.emit({"type": "tool", "phase": "investigate", "tool": call["name"], "ok": None})
        outcomes: list[ToolOutcome] = await asyncio.gather(
            *(deps.tools.call(c["name"], c.get("arguments") or {}) for c in to_run)
        )
        records: list[dict[str, Any]] = []
        for call, outcome in zip(to_run, outcomes, strict=True):
            eid = f"E{next_index}"
            next_index += 1
            record = record_from_outcome(eid, outcome)
            record["turn"] = turn
            records.append(record)
            if outcome.ok:
                body = json.dumps(outcome.data, default=str) if outcome.data else outcome.text
                text = wrap_data(eid, outcome.name, trim(body))
            else:
                text = wrap_data(eid, outcome.name, outcome.error or "failed", error=True)
            messages.append(_tool_msg(call, text, error=not outcome.ok))
            deps.emit(
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

    # ---------------------------------------------------------------- approve
    async def approve_node(state: AgentState) -> dict[str, Any]:
        calls = state.get("control_pending") or []
        decisions: list[Any] = []
        for call in calls:
            deps.emit({"type": "approval_required", "tool": call["name"]})
            decisions.append(
                interrupt(
                    {
                        "type": "approval",
                        "tool": call["name"],
                        "arguments": redact(call.get("arguments") or {}),
                        "question": state.get("question", ""),
                    }
                )
            )
        # every decision is known: only now does anything with side effects run
        messages: list[dict[str, Any]] = []
        actions: list[dict[str, Any]] = []
        approved_calls = 0
        for call, decision in zip(calls, decisions, strict=True):
            approved = bool(decision.get("approved")) if isinstance(decision, dict) else False
            if approved:
                outcome = await deps.tools.call(call["name"], call.get("arguments") or {})
                approved_calls += 1
                result = outcome.text if outcome.ok else f"failed: {outcome.error}"
                messages.append(_tool_msg(call, redact_text(result), error=not outcome.ok))
                status = "approved"
            else:
                reason = decision.get("reason") if isinstance(decision, dict) else None
                result = "denied by the operator" + (f": {reason}" if reason else "")
                messages.append(_tool_msg(call, result, error=True))
                status = "denied"
            actions.append(
                PendingAction(
                    tool=call["name"],
                    arguments=redact(call.get("arguments") or {}),
                    status=status,
                    result=redact_text(result)[:500],
                ).model_dump()
            )
            deps.emit({"type": "approval", "tool": call["name"], "status": status})
        return {
            "messages": messages,
            "actions": actions,
            "control_pending": [],
            "usage": {"tool_calls": approved_calls},
        }

    # ---------------------------------------------------------------- conclude
    async def conclude_node(state: AgentState) -> dict[str, Any]:
        deps.emit({"type": "phase", "phase": "conclude"})
        diagnosis = conclude(state, deps)
        deps.emit({"type": "diagnosis", "diagnosis": diagnosis.model_dump(mode="json")})
        update: dict[str, Any] = {"diagnosis": diagnosis.model_dump(mode="json")}
        if diagnosis.mode != "llm":
            rc = diagnosis.root_cause
            summary = (
                f"[{diagnosis.mode} diagnosis] status {diagnosis.status}; root cause "
                f"{rc.component} / {rc.category}: {rc.summary}"
            )
            update["messages"] = [
                {"role": "assistant", "content": summary, "turn": state.get("turn", 0)}
            ]
        return update

    builder: Any = StateGraph(AgentState)
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


def _tool_msg(call: dict[str, Any], content: str, *, error: bool) -> dict[str, Any]:
    return {
        "role": "tool",
        "tool_call_id": call["id"],
        "name": call["name"],
        "content": content,
        "is_error": error,
    }


def turn_input(
    question: str,
    *,
    turn: int,
    focus: str | None = None,
    window_minutes: float | None = None,
) -> dict[str, Any]:
    """The state update that starts a new question in a (new or existing) session."""
    return {
        "question": question,
        "focus": focus,
        "window_minutes": window_minutes,
        "turn": turn,
        "started": time.time(),
        "findings": [],
        "offline": {},
        "pending": [],
        "control_pending": [],
        "usage": {"reset": 1, "steps": 0, "tokens": 0, "tool_calls": 0},
        "notes": [None],
        "actions": [None],
        "llm": None,
        "llm_failed": False,
        "stop": False,
        "diagnosis": None,
    }


def _valid_ids(ids: Any, known: set[str]) -> list[str]:
    if not isinstance(ids, list):
        return []
    return [str(i) for i in ids if str(i) in known]


def conclude(state: AgentState, deps: AgentDeps) -> Diagnosis:
    """Merge the offline analysis and the model's conclusion into a valid Diagnosis."""
    turn = int(state.get("turn") or 0)
    all_records = state.get("evidence") or []
    records = [r for r in all_records if r.get("turn") == turn]
    known = {r["id"] for r in records}
    notes = list(state.get("notes") or [])
    notes.extend(n for n in deps.chain.notes if n not in notes)
    offline = state.get("offline") or {}
    findings = [Finding.model_validate(f) for f in state.get("findings") or []]
    root = RootCause.model_validate(offline.get("root_cause")) if offline else None
    status = str(offline.get("status") or "unknown")
    recommendations = list(offline.get("recommendations") or [])
    llm = state.get("llm") or {}
    mode: Literal["llm", "degraded", "offline"] = "offline"
    provider: str | None = None
    model: str | None = None
    conclusion = llm.get("conclusion") if isinstance(llm, dict) else None

    if deps.chain.configured_llm:
        mode = "degraded"
    if isinstance(conclusion, dict):
        llm_root = conclusion.get("root_cause") or {}
        category = str(llm_root.get("category", "")).strip()
        component = str(llm_root.get("component", "")).strip()
        if category in CATEGORIES and component:
            cited = _valid_ids(llm_root.get("evidence_ids"), known)
            dropped = len(llm_root.get("evidence_ids") or []) - len(cited)
            if dropped:
                notes.append(f"model cited {dropped} unknown evidence id(s); they were dropped")
            if not cited and root is not None:
                cited = list(root.evidence_ids)
            try:
                confidence = float(llm_root.get("confidence", 0.6))
            except (TypeError, ValueError):
                confidence = 0.6
            root = RootCause(
                component=redact_text(component)[:120],
                category=category,
                summary=redact_text(str(llm_root.get("summary") or ""))[:800]
                or f"{component}: {category}",
                confidence=min(max(confidence, 0.0), 1.0),
                evidence_ids=cited,
            )
            mode = "llm"
            provider, model = llm.get("provider"), llm.get("model")
            for i, raw in enumerate(conclusion.get("findings") or []):
                if not isinstance(raw, dict):
                    continue
                ids = _valid_ids(raw.get("evidence_ids"), known)
                cat = str(raw.get("category", "unknown"))
                sev = str(raw.get("severity", "warning"))
                if not ids or cat not in CATEGORIES:
                    notes.append(f"model finding {i + 1} dropped: no valid evidence cited")
                    continue
                findings.append(
                    Finding(
                        id=f"L{i + 1}",
                        title=redact_text(str(raw.get("title") or ""))[:300] or cat,
                        component=redact_text(str(raw.get("component") or root.component)),
                        category=cat,
                        severity=sev
                        if sev in ("info", "warning", "error", "critical")
                        else "warning",
                        evidence_ids=ids,
                        source="llm",
                    )
                )
            recs = [redact_text(str(r)) for r in conclusion.get("recommendations") or []]
            if recs:
                recommendations = recs[:8]
            llm_status = str(conclusion.get("status", ""))
            if llm_status in ("healthy", "degraded", "unhealthy"):
                status = llm_status
        else:
            notes.append("model answer had an invalid root cause; the offline one is kept")
    elif llm.get("answer") is not None and deps.chain.has_llm:
        notes.append("model answer was not the expected JSON; the offline root cause is kept")
    if root is None:
        root = RootCause(component="system", category="unknown", summary="no data", confidence=0)
    usage = state.get("usage") or {}
    started = float(state.get("started") or time.time())
    evidence = [
        Evidence(
            id=r["id"],
            tool=r["tool"],
            arguments=r.get("arguments") or {},
            excerpt=r.get("excerpt") or "",
            error=not r.get("ok", True),
        )
        for r in records
    ]
    if status not in ("healthy", "degraded", "unhealthy", "unknown"):
        status = "unknown"
    diagnosis = Diagnosis(
        question=state.get("question", ""),
        status=status,
        root_cause=root,
        findings=findings,
        evidence=evidence,
        recommendations=recommendations,
        mode=mode,
        provider=provider,
        model=model,
        steps=usage.get("steps", 0),
        tool_calls=usage.get("tool_calls", 0),
        tokens=usage.get("tokens", 0),
        duration_ms=round((time.time() - started) * 1000, 1),
        notes=notes,
        actions=[PendingAction.model_validate(a) for a in state.get("actions") or []],
    )
    return redact(diagnosis)
