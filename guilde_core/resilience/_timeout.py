"""A cheap per-attempt timeout.

``asyncio.timeout()`` schedules (and cancels) one timer handle per call — about 5-7 µs
here, more than the whole overhead budget of ``resilient_call``. Attempts of the same
policy all get the same timeout, so deadlines arrive in nearly increasing order: we keep
them in a dict and one timer per event loop that fires at the *earliest* pending deadline
(recomputed when it fires). Registering an attempt is a dict insert; a new timer is only
scheduled when an attempt's deadline is earlier than the one already set. Expiry has the
semantics of ``asyncio.timeout``: the task is cancelled, and the cancellation is turned
into :class:`OperationTimeoutError` (an outside cancellation still propagates).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from time import monotonic
from typing import Any

from guilde_core.errors import OperationTimeoutError

__all__ = ["call_with_timeout"]


# an entry is a list [when, task, expired, cancelling] (cheaper to make than an object)
_Entry = list[Any]
WHEN, TASK, EXPIRED, CANCELLING = 0, 1, 2, 3


class _Deadlines:
    """Pending attempt deadlines of one loop, with one timer at the earliest."""

    __slots__ = ("at", "entries", "handle", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.entries: dict[int, _Entry] = {}
        self.handle: asyncio.TimerHandle | None = None
        self.at = math.inf

    def _schedule(self, when: float) -> None:
        if self.handle is not None:
            self.handle.cancel()
        self.at = when
        self.handle = self.loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self.handle = None
        self.at = math.inf
        now = self.loop.time()
        earliest = math.inf
        for key, entry in list(self.entries.items()):
            if entry[WHEN] <= now:
                del self.entries[key]
                entry[EXPIRED] = True
                entry[CANCELLING] = entry[TASK].cancelling()
                entry[TASK].cancel("attempt timed out")
            elif entry[WHEN] < earliest:
                earliest = entry[WHEN]
        if earliest < math.inf:
            self._schedule(earliest)


_last: tuple[asyncio.AbstractEventLoop, _Deadlines] | None = None


def _deadlines(loop: asyncio.AbstractEventLoop) -> _Deadlines:
    global _last
    if _last is not None and _last[0] is loop:
        return _last[1]
    d = _Deadlines(loop)
    _last = (loop, d)
    return d


async def call_with_timeout[T](
    fn: Callable[[float | None], Awaitable[T]],
    timeout: float,  # noqa: ASYNC109 - fn(timeout) is the resilience contract
    service: str | None = None,
) -> T:
    """``await fn(timeout)``, cancelled and turned into OperationTimeoutError after
    ``timeout`` seconds."""
    task = asyncio.current_task()
    if task is None:  # pragma: no cover - always inside a task under asyncio
        return await fn(timeout)
    loop = task.get_loop()
    d = _last[1] if _last is not None and _last[0] is loop else _deadlines(loop)
    when = monotonic() + timeout  # the clock of asyncio's loops (loop.time())
    entry: _Entry = [when, task, False, 0]
    key = id(entry)
    d.entries[key] = entry
    if when < d.at:
        d._schedule(when)
    try:
        return await fn(timeout)
    except asyncio.CancelledError:
        if entry[EXPIRED] and task.uncancel() <= entry[CANCELLING]:
            raise OperationTimeoutError(
                f"timeout after {timeout:.3g}s", timeout=timeout, service=service
            ) from None
        raise
    finally:
        d.entries.pop(key, None)
