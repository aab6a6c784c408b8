"""How many expensive log searches one caller may run at once.

A search (regex or literal), a trace and an error grouping each read whole files in a worker
thread; a caller that starts many at once would pin every CPU. :class:`SearchGate` counts
the searches running per caller key (an API key id, a client address, ``local`` for stdio)
and refuses one more beyond the limit with :class:`~guilde_core.errors.RateLimitExceededError`
(HTTP 429, an MCP tool error). A slot is released when the worker thread really ends, not
when the caller stops waiting, so a search answered at its time budget still counts until
its thread has stopped.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from guilde_core.errors import RateLimitExceededError

__all__ = ["SEARCHES", "SearchGate"]


class SearchGate:
    """Per-key counters of running searches (thread-safe: threads release their slots)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, int] = {}

    def running(self, key: str) -> int:
        with self._lock:
            return self._running.get(key, 0)

    def acquire(self, key: str, limit: int, *, retry_after: float = 1.0) -> Callable[[], None]:
        """Take a slot for ``key`` (at most ``limit`` at once); returns its release function
        (safe to call more than once). Raises :class:`RateLimitExceededError` when full."""
        with self._lock:
            count = self._running.get(key, 0)
            if count >= limit:
                raise RateLimitExceededError(
                    f"{count} log searches of this caller are still running (at most {limit} "
                    "at once); wait for one to finish",
                    retry_after=retry_after,
                )
            self._running[key] = count + 1
        released = False

        def release() -> None:
            nonlocal released
            with self._lock:
                if released:
                    return
                released = True
                left = self._running.get(key, 0) - 1
                if left > 0:
                    self._running[key] = left
                else:
                    self._running.pop(key, None)

        return release


#: the process's gate (dev3000's REST API and every MCP server share it)
SEARCHES = SearchGate()
