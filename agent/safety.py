"""Redaction of tool data on its way into evidence, prompts and answers.

:func:`redact_data` is :func:`guilde_core.redaction.redact` except that a few field names
that *look* secret but are diagnostic vocabulary (an error group's ``signature``) keep
their value — shape-redacted as free text — so the analyzers can read them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

from guilde_core.redaction import redact, redact_text

__all__ = ["NOT_SECRET_FIELDS", "redact_data"]

NOT_SECRET_FIELDS = frozenset({"signature", "error_signature", "exception_signature"})


def redact_data[T](obj: T) -> T:
    """Redact ``obj`` for output, keeping error-group signatures readable (same shape back:
    a mapping becomes a dict)."""
    return cast(T, _redact(obj, 0))


def _redact(obj: object, depth: int) -> object:
    if depth > 50:
        return obj
    if isinstance(obj, Mapping):
        out: dict[object, object] = {}
        for key, value in obj.items():
            if isinstance(key, str) and key.lower() in NOT_SECRET_FIELDS and isinstance(value, str):
                out[key] = redact_text(value)
            elif isinstance(value, Mapping | list):
                out[key] = _redact(value, depth + 1)
            else:
                out[key] = redact({key: value})[key]
        return out
    if isinstance(obj, list):
        return [_redact(v, depth + 1) for v in obj]
    return redact(obj)
