"""A readable terminal report of a :class:`~agent.models.Diagnosis` (rich), and progress lines."""

from __future__ import annotations

from collections.abc import Mapping

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from agent.models import Diagnosis

__all__ = ["progress_line", "render_diagnosis"]

_STATUS_STYLE = {
    "healthy": "green",
    "degraded": "yellow",
    "unhealthy": "red",
    "unknown": "dim",
}
_SEVERITY_STYLE = {"info": "dim", "warning": "yellow", "error": "red", "critical": "bold red"}


def render_diagnosis(diagnosis: Diagnosis, console: Console) -> None:
    """Print the diagnosis: status and root cause, findings, evidence, what to do."""
    rc = diagnosis.root_cause
    head = Text()
    head.append("Status: ")
    head.append(diagnosis.status, style=_STATUS_STYLE.get(diagnosis.status, ""))
    head.append(f"   mode: {diagnosis.mode}")
    if diagnosis.provider:
        head.append(f" ({diagnosis.provider}:{diagnosis.model})")
    head.append("\n\nRoot cause: ", style="bold")
    head.append(f"{rc.component} — {rc.category}", style="bold")
    head.append(f"  (confidence {rc.confidence:.0%})\n")
    head.append(rc.summary)
    if rc.evidence_ids:
        head.append(f"  [{', '.join(rc.evidence_ids)}]", style="cyan")
    if diagnosis.chain:
        head.append("\n\nChain: ", style="bold")
        head.append(" ← ".join(diagnosis.chain))
    beside = diagnosis.offline_root_cause
    if beside is not None:
        head.append("\nThe offline analysis says: ", style="yellow")
        head.append(f"{beside.component} — {beside.category}: {beside.summary}")
    console.print(Panel(head, title=diagnosis.question, title_align="left"))

    if diagnosis.other_problems:
        other = Table(title="Other problems (not on the question's path)", expand=True)
        for col in ("sev", "component", "category", "finding", "evidence"):
            other.add_column(col)
        for f in diagnosis.other_problems:
            other.add_row(
                Text(f.severity, style=_SEVERITY_STYLE[f.severity]),
                f.component,
                f.category,
                f.title,
                ", ".join(f.evidence_ids),
            )
        console.print(other)

    if diagnosis.findings:
        table = Table(title="Findings", show_lines=False, expand=True)
        table.add_column("sev", no_wrap=True)
        table.add_column("component", no_wrap=True)
        table.add_column("category", no_wrap=True)
        table.add_column("finding")
        table.add_column("evidence", no_wrap=True, style="cyan")
        for f in diagnosis.findings:
            table.add_row(
                Text(f.severity, style=_SEVERITY_STYLE[f.severity]),
                f.component,
                f.category,
                f.title + (" (llm)" if f.source == "llm" else ""),
                ", ".join(f.evidence_ids),
            )
        console.print(table)

    if diagnosis.evidence:
        ev = Table(title="Evidence", expand=True)
        ev.add_column("id", style="cyan", no_wrap=True)
        ev.add_column("tool", no_wrap=True)
        ev.add_column("excerpt", overflow="fold")
        for e in diagnosis.evidence:
            excerpt = e.excerpt if len(e.excerpt) <= 300 else e.excerpt[:300] + " …"
            ev.add_row(e.id, e.tool + (" (error)" if e.error else ""), excerpt)
        console.print(ev)

    parts: list[RenderableType] = []
    if diagnosis.recommendations:
        parts.append(Text("Recommendations", style="bold"))
        parts.extend(Text(f"  • {r}") for r in diagnosis.recommendations)
    for action in diagnosis.actions:
        parts.append(Text(f"  action {action.tool} {action.arguments}: {action.status}"))
    if diagnosis.notes:
        parts.append(Text("Notes", style="bold"))
        parts.extend(Text(f"  • {n}", style="yellow") for n in diagnosis.notes)
    parts.append(
        Text(
            f"steps {diagnosis.steps} · tool calls {diagnosis.tool_calls} · tokens "
            f"{diagnosis.tokens} · {diagnosis.duration_ms:.0f} ms"
            + (f" · session {diagnosis.session_id}" if diagnosis.session_id else ""),
            style="dim",
        )
    )
    console.print(Group(*parts))


def _names(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def progress_line(event: Mapping[str, object]) -> str | None:
    """One short line for a progress event (None for events not worth a line)."""
    kind = event.get("type")
    if kind == "phase":
        step = f" (step {event['step']})" if event.get("step") else ""
        return f"· {event['phase']}{step}"
    if kind == "tool":
        if event.get("ok") is None:
            return f"  → {event['tool']} …"
        mark = "ok" if event.get("ok") else "error"
        return f"  ← {event['tool']} {mark} [{event.get('evidence_id', '')}]"
    if kind == "finding":
        return (
            f"  ! [{event['severity']}] {event['component']}/{event['category']}: {event['title']}"
        )
    if kind == "llm":
        calls = ", ".join(_names(event.get("tool_calls"))) or "answer"
        return f"  llm {event.get('provider')}:{event.get('model')} → {calls}"
    if kind == "llm_failed":
        return "  llm unavailable: " + "; ".join(_names(event.get("notes")))
    if kind == "tool_refused":
        return f"  refused repeated call {event.get('tool')}"
    if kind == "approval_required":
        return f"  approval required for {event.get('tool')}"
    return None
