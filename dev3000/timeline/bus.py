"""The timeline event bus: a bounded buffer, live subscriptions, sinks.

* :meth:`EventBus.publish` takes a :class:`~guilde_core.events.TimelineEvent` from any
  thread; duplicates (same id, e.g. one that came back through Redis) are ignored.
* The last ``buffer_size`` events are kept in arrival order; :meth:`EventBus.query` and
  :meth:`EventBus.recent` read them; :meth:`EventBus.subscribe` can replay from an event
  id (resume) and reports a :class:`Gap` when the id is older than the buffer.
* Every subscription has its own bounded queue: a slow reader never slows the others.
  On overflow it either drops its oldest events and is told how many with a
  :class:`Gap` (``drop_oldest``), or is closed with a reason (``disconnect``).
* Sinks (the JSON-lines files, the Redis fan-out) receive events that originated in this
  process; events received from other instances only reach local subscribers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import uuid
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from pydantic import BaseModel, Field

from guilde_core.events import TimelineEvent

from .filters import EventFilter

__all__ = [
    "EventBus",
    "EventSink",
    "Gap",
    "Overflow",
    "SlowConsumerError",
    "Subscription",
    "SubscriptionClosedError",
    "TimelinePage",
    "current_bus",
    "set_current_bus",
]

log = logging.getLogger(__name__)

Overflow = Literal["drop_oldest", "disconnect"]


class Gap(BaseModel):
    """Events a subscriber did not get: it was too slow, or resumed too late."""

    type: Literal["gap"] = "gap"
    reason: Literal["slow_consumer", "resume_point_not_buffered"]
    missed: int | None = Field(description="How many events were missed (None: unknown).")
    first_missed_id: str | None = None
    last_missed_id: str | None = None
    resume_from: str | None = Field(
        None, description="The id the client asked to resume from (resume gaps)."
    )
    oldest_buffered_id: str | None = None
    detail: str = ""


class TimelinePage(BaseModel):
    """One page of :meth:`EventBus.query`, newest first."""

    items: list[TimelineEvent]
    next_cursor: str | None = Field(
        None, description="Pass as `before` to get the next (older) page; None at the end."
    )
    buffered: int = Field(description="Events currently held in the buffer.")
    buffer_size: int


class SlowConsumerError(Exception):
    """The subscription overflowed under the ``disconnect`` policy."""


class SubscriptionClosedError(Exception):
    """The subscription (or the whole bus) was closed."""

    def __init__(self, code: int = 1001, reason: str = "server shutting down") -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class EventSink(Protocol):
    """Receives every event that originated in this process."""

    def emit(self, event: TimelineEvent) -> None: ...


StreamItem = TimelineEvent | Gap


class Subscription:
    """A live view of the bus for one client.

    It is a cursor into the bus's ring buffer, so a client costs the same memory however
    far behind it is; its *queue* is the stretch between its cursor and the newest event,
    bounded by ``queue_size`` (and the buffer). Past that bound the oldest are skipped with
    a :class:`Gap` (``drop_oldest``) or :class:`SlowConsumerError` is raised
    (``disconnect``). A replay (resume) may exceed ``queue_size``; live events after it may
    not.
    """

    def __init__(
        self,
        bus: EventBus,
        event_filter: EventFilter,
        *,
        queue_size: int,
        overflow: Overflow,
        cursor: int,
        notices: list[Gap],
    ) -> None:
        self.id = uuid.uuid4().hex[:12]
        self.bus = bus
        self.filter = event_filter
        self._match_all = event_filter == EventFilter()
        self.queue_size = max(1, queue_size)
        self.overflow = overflow
        self._notices: deque[Gap] = deque(notices)
        self.cursor = cursor
        self._replay_until = bus._seq  # events up to here were replayed, not live
        self._closed: SubscriptionClosedError | None = None
        self.delivered = 0
        self.last_event_id: str | None = None
        #: given back as ``resume_from``, an id that starts where this subscription started
        #: (set by :meth:`EventBus.subscribe`; SSE sends it first, as the priming event's id)
        self.start_id = bus.origin_id

    def _close(self, code: int, reason: str) -> None:
        if self._closed is None:
            self._closed = SubscriptionClosedError(code, reason)
        self.bus._notify()

    # --- consumer side -------------------------------------------------------------
    @property
    def pending(self) -> int:
        """Events (before filtering) and notices waiting for this subscriber."""
        return len(self._notices) + max(0, self.bus._seq - self.cursor)

    @property
    def closed(self) -> bool:
        return self._closed is not None

    def _allowed_backlog(self) -> int:
        allowed = self.queue_size
        if self.cursor < self._replay_until:
            allowed += self._replay_until - self.cursor
        return min(allowed, self.bus.buffer_size)

    def _overflow(self) -> Gap | None:
        """Skip ahead when too far behind (or raise under ``disconnect``)."""
        bus = self.bus
        head = bus._seq
        if head - self.cursor <= self._allowed_backlog():
            return None
        if self.overflow == "disconnect":
            raise SlowConsumerError(
                f"slow consumer: more than {self.queue_size} events waiting; disconnected"
            )
        new_cursor = head - min(self.queue_size, bus.buffer_size)
        oldest = bus._oldest_seq()
        first = max(self.cursor + 1, oldest)
        lost = max(0, oldest - (self.cursor + 1))  # already overwritten in the ring
        skipped = [
            e
            for e in (bus._at(seq) for seq in range(first, new_cursor + 1))
            if e is not None and (self._match_all or self.filter.matches(e))
        ]
        missed: int | None = len(skipped) + lost if self._match_all or not lost else None
        self.cursor = new_cursor
        self._replay_until = min(self._replay_until, new_cursor)
        return Gap(
            reason="slow_consumer",
            missed=missed,
            first_missed_id=skipped[0].id if skipped else None,
            last_missed_id=skipped[-1].id if skipped else None,
            detail=f"the client fell more than {self.queue_size} events behind; "
            "the oldest were dropped",
        )

    def get_nowait(self) -> StreamItem | None:
        """The next item, or None when nothing is waiting.

        Raises :class:`SlowConsumerError` after an overflow under ``disconnect`` and
        :class:`SubscriptionClosedError` once closed.
        """
        if self._closed is not None:
            raise self._closed
        if self._notices:
            return self._notices.popleft()
        gap = self._overflow()
        if gap is not None:
            return gap
        bus = self.bus
        while self.cursor < bus._seq:
            self.cursor += 1
            event = bus._at(self.cursor)
            if event is not None and (self._match_all or self.filter.matches(event)):
                self.delivered += 1
                self.last_event_id = event.id
                return event
        return None

    def take_events(self, limit: int) -> list[TimelineEvent]:
        """Up to ``limit`` events waiting right now, never past a gap notice (for senders
        that batch several events into one frame)."""
        out: list[TimelineEvent] = []
        bus = self.bus
        if self._closed is not None or self._notices:
            return out
        if bus._seq - self.cursor > self._allowed_backlog():
            return out  # the next get_nowait() reports the overflow
        while len(out) < limit and self.cursor < bus._seq:
            self.cursor += 1
            event = bus._at(self.cursor)
            if event is not None and (self._match_all or self.filter.matches(event)):
                out.append(event)
        if out:
            self.delivered += len(out)
            self.last_event_id = out[-1].id
        return out

    async def get(self, max_wait: float | None = None) -> StreamItem | None:
        """Wait for the next item; None when ``max_wait`` seconds pass first."""
        loop = asyncio.get_running_loop()
        deadline = None if max_wait is None else loop.time() + max_wait
        while True:
            item = self.get_nowait()
            if item is not None:
                return item
            signal = self.bus._signal
            if deadline is None:
                await signal.wait()
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            try:
                await asyncio.wait_for(signal.wait(), remaining)
            except TimeoutError:
                return None

    def update_filter(self, event_filter: EventFilter) -> None:
        """Change what this subscription receives from now on."""
        self.filter = event_filter
        self._match_all = event_filter == EventFilter()

    def close(self) -> None:
        self.bus.unsubscribe(self)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> StreamItem:
        try:
            item = await self.get()
        except SubscriptionClosedError:
            raise StopAsyncIteration from None
        assert item is not None
        return item


@dataclass
class _Entry:
    seq: int
    event: TimelineEvent


class EventBus:
    """In-process timeline: bounded buffer + subscriptions + sinks (see module doc)."""

    def __init__(
        self,
        buffer_size: int = 1000,
        *,
        instance_id: str | None = None,
        dedupe_size: int | None = None,
    ) -> None:
        self.buffer_size = max(1, buffer_size)
        self.instance_id = instance_id or uuid.uuid4().hex[:12]
        self._ring: list[TimelineEvent | None] = [None] * self.buffer_size
        self._index: dict[str, int] = {}
        self._signal = asyncio.Event()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._dedupe_size = dedupe_size or max(10_000, 2 * self.buffer_size)
        self._seq = 0
        self._subs: dict[str, Subscription] = {}
        self._sinks: list[EventSink] = []
        self._listeners: list[Callable[[TimelineEvent], None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._lock = threading.RLock()
        self._closing = False
        self._shutdown_hooks: list[Callable[[], Awaitable[None]]] = []
        self.published = 0
        self.duplicates = 0

    # --- wiring ------------------------------------------------------------------------
    @property
    def origin_id(self) -> str:
        """The resume point "before this bus's first event": resuming from it replays every
        buffered event (after a gap counting those that have left the buffer). It sorts
        before every real id, so another instance treats it as older than its buffer."""
        return f"{0:013d}-{self.instance_id}-{0:06d}"

    def bind_loop(self) -> None:
        """Tie the bus to the running event loop (subscribing does it too); events
        published from other threads are then handed over to that loop."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._signal = asyncio.Event()  # never one bound to an earlier loop
        set_current_bus(self)

    def _ensure_loop(self) -> None:
        if self._loop is None or self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop = asyncio.get_running_loop()
                self._loop_thread = threading.get_ident()
                self._signal = asyncio.Event()

    def _foreign_thread(self) -> bool:
        """True when called outside the running loop the bus is bound to."""
        loop = self._loop
        return (
            loop is not None
            and not loop.is_closed()
            and loop.is_running()
            and self._loop_thread is not None
            and threading.get_ident() != self._loop_thread
        )

    def add_sink(self, sink: EventSink) -> None:
        """Send every locally originated event to ``sink`` (files, Redis fan-out)."""
        self._sinks.append(sink)

    def remove_sink(self, sink: EventSink) -> None:
        """Stop sending events to ``sink`` (its owner is shutting down)."""
        if sink in self._sinks:
            self._sinks.remove(sink)

    def add_listener(self, callback: Callable[[TimelineEvent], None]) -> Callable[[], None]:
        """Call ``callback`` for every event (local and remote); returns an unsubscribe."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback) if callback in self._listeners else None

    def on_shutdown(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run ``hook`` during :meth:`shutdown` (sources and sinks register here)."""
        self._shutdown_hooks.append(hook)

    # --- publishing ------------------------------------------------------------------
    def publish(self, event: TimelineEvent, *, remote: bool = False) -> bool:
        """Add ``event`` (from any thread). False when it was a duplicate or dropped.

        ``remote=True`` marks an event received from another instance: it reaches local
        subscribers and the buffer but not the sinks (it was written and fanned out where
        it originated).
        """
        if self._closing:
            return False
        if self._foreign_thread():
            loop = self._loop
            assert loop is not None
            with self._lock:
                if event.id in self._seen:
                    self.duplicates += 1
                    return False
            loop.call_soon_threadsafe(self._publish_here, event, remote)
            return True
        return self._publish_here(event, remote)

    def publish_many(self, events: list[TimelineEvent], *, remote: bool = False) -> None:
        """Publish a batch in one step on the bus's loop (from any thread)."""
        if self._foreign_thread():
            assert self._loop is not None
            self._loop.call_soon_threadsafe(self._publish_batch, list(events), remote)
        else:
            self._publish_batch(list(events), remote)

    def _publish_batch(self, events: list[TimelineEvent], remote: bool) -> None:
        if self._closing:
            return
        for event in events:
            self._publish_here(event, remote, notify=False)
        self._notify()

    def _notify(self) -> None:
        """Wake every waiting subscriber (one event object swap, however many wait)."""
        signal, self._signal = self._signal, asyncio.Event()
        signal.set()

    def _oldest_seq(self) -> int:
        return max(1, self._seq - self.buffer_size + 1)

    def _at(self, seq: int) -> TimelineEvent | None:
        """The event with sequence number ``seq`` while it is in the ring."""
        if seq < self._oldest_seq() or seq > self._seq:
            return None
        return self._ring[seq % self.buffer_size]

    def _entries(self) -> list[_Entry]:
        out = []
        for seq in range(self._oldest_seq(), self._seq + 1):
            event = self._ring[seq % self.buffer_size]
            if event is not None:
                out.append(_Entry(seq, event))
        return out

    def _publish_here(self, event: TimelineEvent, remote: bool, notify: bool = True) -> bool:
        with self._lock:
            if event.id in self._index or event.id in self._seen:
                self.duplicates += 1
                return False
            self._seen[event.id] = None
            while len(self._seen) > self._dedupe_size:
                self._seen.popitem(last=False)
            self._seq += 1
            slot = self._seq % self.buffer_size
            old = self._ring[slot]
            if old is not None:
                self._index.pop(old.id, None)
            self._ring[slot] = event
            self._index[event.id] = self._seq
            self.published += 1
        if notify:
            self._notify()
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a listener never breaks publishing
                log.exception("timeline listener failed")
        if not remote:
            for sink in self._sinks:
                try:
                    sink.emit(event)
                except Exception:
                    log.exception("timeline sink %r failed", sink)
        return True

    def seen(self, event_id: str) -> bool:
        with self._lock:
            return event_id in self._seen or event_id in self._index

    # --- reading ---------------------------------------------------------------------
    def __len__(self) -> int:
        return min(self._seq, self.buffer_size)

    def __bool__(self) -> bool:  # an empty bus is still a bus (``bus or EventBus()``)
        return True

    def events(self) -> list[TimelineEvent]:
        """The buffer, oldest first."""
        with self._lock:
            return [e.event for e in self._entries()]

    def recent(
        self, limit: int = 50, event_filter: EventFilter | None = None
    ) -> list[TimelineEvent]:
        """The newest ``limit`` matching events, oldest first."""
        flt = event_filter or EventFilter()
        out: list[TimelineEvent] = []
        with self._lock:
            for entry in reversed(self._entries()):
                if flt.matches(entry.event):
                    out.append(entry.event)
                    if len(out) >= limit:
                        break
        out.reverse()
        return out

    def query(
        self,
        event_filter: EventFilter | None = None,
        *,
        limit: int = 50,
        before: str | None = None,
        after: str | None = None,
    ) -> TimelinePage:
        """Matching buffered events, newest first, ``limit`` per page.

        ``before``: only events older than that id (the previous page's ``next_cursor``);
        ``after``: only events newer than that id. Ids not in the buffer compare by their
        time-ordered text.
        """
        flt = event_filter or EventFilter()
        limit = max(1, min(limit, 1000))
        with self._lock:
            entries = self._entries()
            before_seq = self._position(before)
            after_seq = self._position(after)
        items: list[TimelineEvent] = []
        more = False
        for entry in reversed(entries):
            if before is not None and not _older(entry, before, before_seq):
                continue
            if after is not None and _older(entry, after, after_seq):
                break
            if after is not None and entry.event.id == after:
                break
            if not flt.matches(entry.event):
                continue
            if len(items) >= limit:
                more = True
                break
            items.append(entry.event)
        return TimelinePage(
            items=items,
            next_cursor=items[-1].id if more and items else None,
            buffered=len(entries),
            buffer_size=self.buffer_size,
        )

    def _position(self, event_id: str | None) -> int | None:
        return None if event_id is None else self._index.get(event_id)

    # --- subscribing -----------------------------------------------------------------
    def subscribe(
        self,
        event_filter: EventFilter | None = None,
        *,
        resume_from: str | None = None,
        replay: int = 0,
        queue_size: int = 256,
        overflow: Overflow = "drop_oldest",
    ) -> Subscription:
        """A new subscription (call on the bus's event loop).

        ``resume_from``: replay every buffered matching event after that id — with a
        leading :class:`Gap` when the id has already left the buffer. ``replay``: without
        ``resume_from``, start with the last ``replay`` matching events.
        """
        self._ensure_loop()
        flt = event_filter or EventFilter()
        with self._lock:
            cursor, notices = self._start_position(flt, resume_from, replay)
            sub = Subscription(
                self, flt, queue_size=queue_size, overflow=overflow, cursor=cursor, notices=notices
            )
            at_cursor = self._at(cursor) if cursor > 0 else None
            if at_cursor is not None:  # the newest event before the subscription's first
                sub.start_id = at_cursor.id
            elif resume_from is not None:  # resumed from an id no longer buffered
                sub.start_id = resume_from
            if self._closing:
                sub._close(1001, "server shutting down")
            self._subs[sub.id] = sub
        return sub

    def _start_position(
        self, flt: EventFilter, resume_from: str | None, replay: int
    ) -> tuple[int, list[Gap]]:
        """Where a new subscription's cursor starts, and the notices it gets first."""
        head = self._seq
        entries = self._entries()
        if resume_from == self.origin_id:
            if not entries or entries[0].seq == 1:
                return 0, []
            lost = entries[0].seq - 1
            return entries[0].seq - 1, [
                Gap(
                    reason="resume_point_not_buffered",
                    missed=lost,
                    resume_from=resume_from,
                    oldest_buffered_id=entries[0].event.id,
                    detail=f"the first {lost} event(s) of this instance have left the "
                    f"{self.buffer_size}-event buffer",
                )
            ]
        if resume_from is None:
            if replay <= 0:
                return head, []
            matching = [e.seq for e in entries if flt.matches(e.event)]
            if not matching:
                return head, []
            # fewer matching events buffered than asked for: replay all of them
            return matching[-min(replay, len(matching))] - 1, []
        seq = self._index.get(resume_from)
        if seq is not None:
            return seq, []
        # Not in the buffer: everything newer (by time-ordered id) that we still hold,
        # after a gap notice when the id is older than the buffer.
        notices: list[Gap] = []
        oldest = entries[0].event.id if entries else None
        if oldest is None or resume_from < oldest:
            notices.append(
                Gap(
                    reason="resume_point_not_buffered",
                    missed=None,
                    resume_from=resume_from,
                    oldest_buffered_id=oldest,
                    detail=f"event {resume_from} is older than the {self.buffer_size}-event "
                    "buffer; events between it and the oldest buffered one are lost",
                )
            )
        newer = [e.seq for e in entries if e.event.id > resume_from]
        return (newer[0] - 1 if newer else head), notices

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subs.pop(sub.id, None)
        sub._close(1000, "unsubscribed")

    @property
    def subscriptions(self) -> list[Subscription]:
        with self._lock:
            return list(self._subs.values())

    # --- shutdown --------------------------------------------------------------------
    @property
    def closing(self) -> bool:
        return self._closing

    def close_subscriptions(self, code: int = 1001, reason: str = "server shutting down") -> None:
        """Tell every subscriber to close with ``code`` (streams send close frames)."""
        for sub in self.subscriptions:
            sub._close(code, reason)

    async def shutdown(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109 - per-hook bound
        """Stop accepting events, close every subscription (1001), stop sources/sinks."""
        if self._closing:
            return
        self._closing = True
        self.close_subscriptions()
        hooks, self._shutdown_hooks = self._shutdown_hooks, []
        for hook in reversed(hooks):
            try:
                await asyncio.wait_for(hook(), timeout)
            except Exception:
                log.exception("timeline shutdown hook failed")

    def reopen(self) -> None:
        """Accept events again after :meth:`shutdown` (tests, restarts in-process)."""
        self._closing = False


def _older(entry: _Entry, ref_id: str, ref_seq: int | None) -> bool:
    if ref_seq is not None:
        return entry.seq < ref_seq
    return entry.event.id < ref_id


_current: EventBus | None = None


def set_current_bus(bus: EventBus | None) -> None:
    """Make ``bus`` the process's timeline (done by :meth:`EventBus.bind_loop`)."""
    global _current
    _current = bus


def current_bus() -> EventBus | None:
    """The bus of the running dev3000 (the one last bound to an event loop), if any."""
    return _current
