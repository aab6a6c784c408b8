"""Bounded-cost redaction for served log text.

``guilde_core.redaction.redact_text`` is quadratic in the length of an unbroken run of
word characters (a 16 KB run takes ~30 s, a 4 KB one ~2 s), so a single opaque blob in a log line could stall
a tool. Before redacting, runs of more than :data:`MAX_RUN` characters without a separator
are replaced by a marker: such a run is a blob or a credential, and eliding it can only
remove information, never leak it.
"""

from __future__ import annotations

import re
from typing import Any

from guilde_core.redaction import redact

__all__ = ["MAX_RUN", "elide_runs", "safe_redact"]

MAX_RUN = 100
_RUN = re.compile(r"[A-Za-z0-9_\-.+/=]{" + str(MAX_RUN + 1) + ",}")


def elide_runs(text: str) -> str:
    """``text`` with every opaque run longer than :data:`MAX_RUN` replaced by a marker."""
    return _RUN.sub(lambda m: f"[{len(m.group())} opaque characters elided]", text)


def _walk(value: Any) -> Any:
    if isinstance(value, str):
        return elide_runs(value) if len(value) > MAX_RUN else value
    if isinstance(value, dict):
        return {k: _walk(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v) for v in value]
    return value


def safe_redact(value: Any) -> Any:
    """:func:`redact` with opaque runs elided first (JSON-like data)."""
    return redact(_walk(value))
