"""The agent's diagnosis as Markdown: root cause, findings citing evidence, evidence,
recommendations, and how it was produced."""

from __future__ import annotations

from console.agent_models import Diagnosis
from guilde_core.redaction import redact_text

__all__ = ["diagnosis_markdown"]


def diagnosis_markdown(diagnosis: Diagnosis) -> str:
    """Markdown for one diagnosis (server text redacted)."""
    root = diagnosis.root_cause
    lines = [
        f"## {redact_text(diagnosis.question)}",
        "",
        f"**Status:** {diagnosis.status}  ·  **mode:** {diagnosis.mode}"
        f"  ·  provider: {diagnosis.provider or '—'}"
        f"  ·  {diagnosis.tool_calls} tool calls"
        f"  ·  {diagnosis.duration_ms:.0f} ms",
        "",
        "### Root cause",
        f"**{root.component}** — {root.category} (confidence {root.confidence:.0%})",
        "",
        redact_text(root.summary),
    ]
    if root.evidence_ids:
        lines += ["", "Evidence: " + ", ".join(f"`{e}`" for e in root.evidence_ids)]
    if diagnosis.findings:
        lines += ["", "### Findings"]
        for finding in diagnosis.findings:
            ids = ", ".join(f"`{e}`" for e in finding.evidence_ids)
            lines.append(
                f"- **[{finding.severity}] {redact_text(finding.title)}**"
                f" ({finding.component}, {finding.category}) — {ids}"
            )
    if diagnosis.recommendations:
        lines += ["", "### Recommendations"]
        lines += [f"- {redact_text(r)}" for r in diagnosis.recommendations]
    if diagnosis.evidence:
        lines += ["", "### Evidence"]
        for item in diagnosis.evidence:
            excerpt = redact_text(item.excerpt)[:400].replace("\n", " ")
            lines.append(f"- `{item.id}` **{item.tool}**: {excerpt}")
    if diagnosis.notes:
        lines += ["", "### Notes"] + [f"- {redact_text(n)}" for n in diagnosis.notes]
    return "\n".join(lines)
