"""The console's way to the diagnosis agent (the ``agent`` package).

:class:`InProcessAgent` runs :class:`agent.runner.DiagnosisAgent` inside the console,
pointed at the same dev3000 MCP endpoint the console watches, and keeps one session so
follow-up questions have context. Progress events (dicts from the agent's graph) go to
``on_event`` as they happen. Nothing here knows about Textual.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from guilde_core.redaction import redact

__all__ = ["AgentUnavailable", "InProcessAgent", "describe_event"]


class AgentUnavailable(RuntimeError):
    """The agent package cannot run here (not installed or failed to start)."""


def describe_event(event: dict[str, Any]) -> str:
    """One readable line for a progress event of the agent."""
    kind = str(event.get("type") or "event")
    if kind == "phase":
        step = f" (step {event['step']})" if event.get("step") else ""
        return f"▶ {event.get('phase')}{step}"
    if kind == "tool":
        ok = event.get("ok")
        mark = "…" if ok is None else ("✓" if ok else "✗")
        evidence = f" → {event['evidence_id']}" if event.get("evidence_id") else ""
        return f"  {mark} tool {event.get('tool')}{evidence}"
    if kind == "finding":
        finding = event.get("finding") if isinstance(event.get("finding"), dict) else event
        assert isinstance(finding, dict)
        return f"  ◆ finding: {finding.get('title') or finding.get('summary') or finding}"
    if kind == "diagnosis":
        return "✔ diagnosis ready"
    if kind in ("llm_failed", "tool_refused", "approval_required", "approval", "llm"):
        rest = {k: v for k, v in event.items() if k != "type"}
        return f"  · {kind}: {redact(rest)}"
    return f"  · {kind}"


class InProcessAgent:
    """One conversation with the agent, over dev3000's MCP endpoint at ``url``."""

    def __init__(self, url: str, *, api_key: str | None = None) -> None:
        self.mcp_url = url.rstrip("/") + "/mcp"
        self.api_key = api_key
        self.session_id = uuid.uuid4().hex
        self._checkpointer: Any = None

    def new_session(self) -> str:
        self.session_id = uuid.uuid4().hex
        return self.session_id

    async def ask(
        self,
        question: str,
        on_event: Callable[[dict[str, Any]], None],
        approver: Callable[[dict[str, Any]], Any] | None = None,
    ) -> Any:
        """Investigate ``question`` in the current session; return the ``Diagnosis``."""
        try:
            from agent.mcp_client import DiagTools
            from agent.providers import build_chain
            from agent.runner import DiagnosisAgent
            from guilde_core.config import get_settings
        except ImportError as exc:  # pragma: no cover - the agent ships with the console
            raise AgentUnavailable(f"the agent package is not available: {exc}") from exc
        if self._checkpointer is None:
            from langgraph.checkpoint.memory import InMemorySaver

            self._checkpointer = InMemorySaver()
        settings = get_settings()
        async with DiagTools(self.mcp_url, api_key=self.api_key) as tools:
            agent = DiagnosisAgent(
                tools,
                build_chain(settings),
                settings=settings,
                checkpointer=self._checkpointer,
                on_event=on_event,
            )
            result = await agent.ask(question, session_id=self.session_id, approver=approver)
        return result.diagnosis
