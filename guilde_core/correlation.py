"""Correlation ids: one per request or tool call, carried by retries and log lines."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["correlation_scope", "get_correlation_id", "new_correlation_id", "set_correlation_id"]

_current: ContextVar[str | None] = ContextVar("guilde_correlation_id", default=None)


def new_correlation_id() -> str:
    return uuid.uuid4().hex


def get_correlation_id() -> str | None:
    """The correlation id of the current task, if any."""
    return _current.get()


def set_correlation_id(value: str | None) -> None:
    _current.set(value)


@contextmanager
def correlation_scope(value: str | None = None) -> Iterator[str]:
    """Run a block under ``value`` (or a fresh id), restoring the previous one after."""
    cid = value or new_correlation_id()
    token = _current.set(cid)
    try:
        yield cid
    finally:
        _current.reset(token)
