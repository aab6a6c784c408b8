"""The agent's diagnosis as Markdown: root cause, findings citing evidence, evidence,
recommendations, and how it was produced."""

from __future__ import annotations

from typing import Any

from guilde_core.redaction import redact_text

__all__ = ["diagnosis_markdown"]


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def diagnosis_markdown(diagnosis: Any) -> str:
    """Markdown for a ``Diagnosis`` model (or its JSON dict)."""
    root = _get(diagnosis, "root_cause") or {}
    lines = [
        f"## {redact_text(str(_get(diagnosis, 'question', '')))}",
        "",
        f"**Status:** {_get(diagnosis, 'status')}  ·  **mode:** {_get(diagnosis, 'mode')}"
        f"  ·  provider: {_get(diagnosis, 'provider') or '—'}"
        f"  ·  {_get(diagnosis, 'tool_calls', 0)} tool calls"
        f"  ·  {float(_get(diagnosis, 'duration_ms', 0.0) or 0.0):.0f} ms",
        "",
        "### Root cause",
        f"**{_get(root, 'component')}** — {_get(root, 'category')} "
        f"(confidence {float(_get(root, 'confidence', 0.0) or 0.0):.0%})",
        "",
        redact_text(str(_get(root, "summary", ""))),
    ]
    cited = _get(root, "evidence_ids") or []
    if cited:
        lines += ["", "Evidence: " + ", ".join(f"`{e}`" for e in cited)]
    findings = _get(diagnosis, "findings") or []
    if findings:
        lines += ["", "### Findings"]
        for finding in findings:
            ids = ", ".join(f"`{e}`" for e in _get(finding, "evidence_ids") or [])
            lines.append(
                f"- **[{_get(finding, 'severity')}] {redact_text(str(_get(finding, 'title')))}**"
                f" ({_get(finding, 'component')}, {_get(finding, 'category')}) — {ids}"
            )
    recommendations = _get(diagnosis, "recommendations") or []
    if recommendations:
        lines += ["", "### Recommendations"]
        lines += [f"- {redact_text(str(r))}" for r in recommendations]
    evidence = _get(diagnosis, "evidence") or []
    if evidence:
        lines += ["", "### Evidence"]
        for item in evidence:
            excerpt = redact_text(str(_get(item, "excerpt", "")))[:400].replace("\n", " ")
            lines.append(f"- `{_get(item, 'id')}` **{_get(item, 'tool')}**: {excerpt}")
    notes = _get(diagnosis, "notes") or []
    if notes:
        lines += ["", "### Notes"] + [f"- {redact_text(str(n))}" for n in notes]
    return "\n".join(lines)
