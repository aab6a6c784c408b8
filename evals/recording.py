"""``dev3000 eval --record``: capture a live run's MCP tool outputs into its scenario.

Right after the agent diagnosed a live scenario — faults still active — :func:`capture`
asks dev3000's aggregate MCP server, over MCP, what each diagnostic tool answers (the roles
:mod:`evals.recorded` replays: deep health, every health check, the breakers, error groups,
the timeline, warning-and-above log lines, their tracebacks cut to the last lines).
:func:`write_recording` scrubs what belongs to
this machine and this run (the temporary sandbox directory, loopback ports, the working
directory), passes the result through the project's redaction, and writes it as the
scenario's ``recorded:`` block, marked as captured from a live run.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from guilde_core.redaction import redact

__all__ = ["CAPTURE", "HEADER", "capture", "scrub", "write_recording"]

#: role of a ``recorded:`` block → (tool on the aggregate endpoint, arguments)
CAPTURE: dict[str, tuple[str, dict[str, Any]]] = {
    "topology": ("health_stack", {}),
    "checks": ("health_check", {"scope": "deep"}),
    "circuits": ("circuits_breakers", {}),
    "errors": ("logs_errors", {"limit": 20}),
    "timeline": ("timeline_recent", {"limit": 50}),
    "logs": ("logs_search", {"query": ".", "regex": True, "level": "warning", "limit": 25}),
}

HEADER = (
    "# recorded: tool outputs captured from a live run of this scenario (sandbox + chaos faults,\n"
    "# dev3000's aggregate MCP server) by `dev3000 eval --record`, scrubbed and redacted;\n"
    "# replayed by `dev3000 eval --source recorded` and the unit tests.\n"
)

_KEY_ORDER = (
    "name",
    "description",
    "question",
    "paraphrases",
    "tags",
    "runtime",
    "sandbox",
    "dev3000",
    "setup",
    "faults",
    "traffic",
    "expect",
    "llm",
)


async def capture(run: Any, server: Any) -> dict[str, Any]:
    """What each recorded role's tool answers now on ``server`` (the aggregate MCP server of
    ``run``, a :class:`~evals.live.LiveRun`, in one setup)."""
    from fastmcp import Client
    from fastmcp.exceptions import ToolError

    out: dict[str, Any] = {}
    async with Client(server) as client:
        for role, (tool, arguments) in CAPTURE.items():
            try:
                result = await client.call_tool(tool, arguments)
            except ToolError as exc:
                out[role] = {"error": str(exc)}
                continue
            data = result.structured_content
            if isinstance(data, dict) and set(data) == {"result"}:
                data = data["result"]
            out[role] = data
    _shorten_tracebacks(out.get("logs"))
    return scrub(out, run)


def _shorten_tracebacks(logs: Any, keep: int = 4) -> None:
    """Cut each log entry's traceback to its last ``keep`` lines (the error groups keep
    their sample whole): a file of scenarios, not of framework frames."""
    for entry in logs.get("entries", []) if isinstance(logs, dict) else []:
        fields = entry.get("fields") if isinstance(entry, dict) else None
        if not isinstance(fields, dict):
            continue
        trace = fields.get("traceback")
        if isinstance(trace, str) and trace.count("\n") >= keep:
            lines = trace.splitlines()
            cut = len(lines) - keep
            fields["traceback"] = "\n".join(
                [f"… ({cut} lines cut by the recording)", *lines[-keep:]]
            )


def scrub(data: dict[str, Any], run: Any) -> dict[str, Any]:
    """Replace this run's paths and ports with stable placeholders; redact."""
    text = json.dumps(data, default=str)
    replacements = [
        (str(run.workdir), "<sandbox>"),
        (run.sandbox_url, "http://127.0.0.1:8000"),
        (run.upstream_url, "http://127.0.0.1:8100"),
        (os.getcwd(), "."),
        (str(Path.home()), "~"),
    ]
    for old, new in replacements:
        if old:
            text = text.replace(json.dumps(old)[1:-1], json.dumps(new)[1:-1])
    temp = re.escape(tempfile.gettempdir().rstrip("/") + "/")
    text = re.sub(temp + r"[\w.\-]+", "<tmp>", text)
    clean: dict[str, Any] = redact(json.loads(text))
    return clean


def write_recording(folder: Path, recorded: dict[str, Any]) -> None:
    """Write ``recorded`` as the ``recorded:`` block of ``folder/scenario.yaml``."""
    path = folder / "scenario.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    raw.pop("recorded", None)
    raw.pop("source", None)
    ordered = {k: raw[k] for k in _KEY_ORDER if k in raw}
    ordered.update({k: v for k, v in raw.items() if k not in ordered})
    ordered["recorded"] = {"captured_at": datetime.now(UTC).isoformat(timespec="seconds")}
    ordered["recorded"].update(recorded)
    body = yaml.safe_dump(ordered, sort_keys=False, allow_unicode=True, width=100)
    path.write_text(HEADER + body, encoding="utf-8")
