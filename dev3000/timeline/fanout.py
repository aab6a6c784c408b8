"""Several dev3000 instances sharing Redis act as one timeline.

Every event that originates in this process is appended to the Redis stream
``<prefix>timeline`` (``guilde:<DEV3000_DEPLOYMENT>:dev3000:timeline``: one stream per
deployment) (``XADD … MAXLEN ~ <retain>``, field ``m`` =
``{"origin": <instance id>, "event": {…}}``); every instance reads that stream from the last
entry it has seen (``XREAD BLOCK``) and hands other instances' events to its bus as *remote*
events (they reach its stream clients and buffer, not its files nor Redis again). The bus
ignores an event id it has already seen, so nothing is delivered twice, and an instance skips
its own entries. An event several instances each observe (a breaker transition every one of
them learns of through the breakers' channel) carries one shared id
(:func:`guilde_core.events.shared_event_id`), so it too is kept once.

A reader that loses Redis — or only its own connection — resumes from its last entry id when
it is back, so events appended meanwhile (including the ones other instances held while Redis
was away) still arrive. When they cannot — the entries were trimmed past the last one read, or
the stream was lost with a Redis restart — the instance says so on its own timeline with a
``notice`` (``subject: timeline-fanout``) instead of missing them silently. The local timeline
keeps working throughout (outage policy ``open``, :mod:`guilde_core.shared_redis`: the loss
logged once, the recovery once); the fan-out reconnects with back-off and reports its state in
:meth:`RedisFanout.status`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import redis.asyncio as aioredis
from pydantic import ValidationError
from redis.exceptions import RedisError

from guilde_core.events import TimelineEvent
from guilde_core.redaction import redact_text
from guilde_core.shared_redis import SharedRedis

from ._tasks import cancel_tasks
from .bus import EventBus

__all__ = ["RedisFanout", "append_event", "fanout_message"]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _field(info: Any, name: str) -> Any:
    if not isinstance(info, dict):
        return None
    return info.get(name, info.get(name.encode()))


# one emitter per shared transition: the first instance to report ``subject`` turning
# ``state`` records it; the others find it recorded and stay silent
_CLAIM = r"""
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


log = logging.getLogger(__name__)


def fanout_message(origin: str, event: TimelineEvent) -> str:
    """The shared stream's entry for ``event`` from ``origin`` (an instance id)."""
    return '{"origin":"%s","event":%s}' % (origin, event.model_dump_json())  # noqa: UP031


async def append_event(
    redis_url: str,
    event: TimelineEvent,
    *,
    origin: str,
    prefix: str,
    retain: int = 10_000,
) -> None:
    """Append one event to the shared timeline stream (``<prefix>timeline``) from outside a
    running dev3000 (the command line): every instance of that deployment shows it."""
    shared = SharedRedis(
        redis_url, use="timeline append", policy="closed", max_connections=1, socket_timeout=2
    )
    try:
        await shared.run(
            lambda r: r.xadd(
                f"{prefix}timeline",
                {"m": fanout_message(origin, event)},
                maxlen=max(100, retain),
                approximate=True,
            )
        )
    finally:
        await shared.aclose()


class RedisFanout:
    """An event sink + subscriber that joins this bus to the other instances' buses."""

    def __init__(
        self,
        bus: EventBus,
        redis_url: str,
        *,
        prefix: str,
        queue_size: int = 10_000,
        max_backoff: float = 5.0,
        retain: int = 10_000,
    ) -> None:
        self.bus = bus
        self.redis_url = redis_url
        self.channel = f"{prefix}timeline"
        self.claims_key = f"{prefix}claims"
        self.max_backoff = max_backoff
        self.retain = max(100, retain)
        self.last_id: str | None = None  # the last stream entry read (None: not started)
        self.gaps = 0
        self._outbox: asyncio.Queue[str] = asyncio.Queue(queue_size)
        self._tasks: list[asyncio.Task[None]] = []
        self._client: aioredis.Redis | None = None
        # three connections: the blocking XREAD, the appends and the claims (socket timeout
        # above XREAD's 5 s block); outage policy open — the local timeline goes on
        self.redis = SharedRedis(
            redis_url,
            use="timeline fan-out",
            policy="open",
            consequence="the local timeline goes on; other instances' events resume when "
            "it is back",
            max_connections=3,
            socket_timeout=15.0,
            connect_timeout=2.0,
            pool_timeout=20.0,
            health_check_interval=15,
            client_name=f"dev3000-timeline-{bus.instance_id}",
            logger=log,
        )
        self.connected = False
        self.subscribed = asyncio.Event()
        self.sent = 0
        self.received = 0
        self.dropped = 0
        self.last_error: str | None = None

    # --- sink --------------------------------------------------------------------------
    def emit(self, event: TimelineEvent) -> None:
        message = fanout_message(self.bus.instance_id, event)
        try:
            self._outbox.put_nowait(message)
        except asyncio.QueueFull:
            self.dropped += 1

    async def claim(self, subject: str, state: str, ttl: float = 600.0) -> bool:
        """True when this instance is the first of its deployment to report ``subject``
        turning ``state`` (the others get False and leave it out); True as well when Redis
        cannot say (reported twice rather than never). ``ttl``: how long the shared record
        of the last state lasts without a change."""
        try:
            res = await self.redis.run(
                lambda r: r.eval(_CLAIM, 1, self.claims_key, subject, state, int(ttl))
            )
        except (RedisError, OSError):
            return True
        return bool(int(res))

    # --- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        self._client = self.redis.client()
        self.bus.remove_sink(self)  # a restart (stop, start) keeps one registration
        self.bus.add_sink(self)
        self._tasks = [
            asyncio.create_task(self._publish_loop(), name="timeline-fanout-publish"),
            asyncio.create_task(self._subscribe_loop(), name="timeline-fanout-subscribe"),
        ]

    async def stop(self) -> None:
        """Stop reading and writing; :attr:`last_id` is kept, so a later :meth:`start`
        resumes where this one stopped (events appended meanwhile are delivered)."""
        self.bus.remove_sink(self)
        await cancel_tasks(self._tasks)
        self._tasks = []
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self.redis.aclose()
            self._client = None

    def status(self) -> dict[str, Any]:
        return {
            "backend": "redis-stream",
            "channel": self.channel,
            "connected": self.connected,
            "sent": self.sent,
            "received": self.received,
            "dropped": self.dropped,
            "gaps": self.gaps,
            "last_id": self.last_id,
            "last_error": self.last_error,
        }

    def _failed(self, exc: BaseException) -> None:
        self.connected = False
        self.redis.outage.failed(exc)  # logged once per outage, URL redacted
        self.last_error = redact_text(f"{type(exc).__name__}: {exc}")[:200]

    # --- loops -----------------------------------------------------------------------
    async def _publish_loop(self) -> None:
        assert self._client is not None
        backoff = 0.1
        pending: list[str] = []
        while True:
            if not pending:
                pending.append(await self._outbox.get())
            while not self._outbox.empty() and len(pending) < 500:
                pending.append(self._outbox.get_nowait())
            try:
                async with self._client.pipeline(transaction=False) as pipe:
                    for message in pending:
                        pipe.xadd(
                            self.channel, {"m": message}, maxlen=self.retain, approximate=True
                        )
                    await pipe.execute()
                self.sent += len(pending)
                pending = []
                backoff = 0.1
            except (RedisError, OSError) as exc:
                self._failed(exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                if len(pending) > 1000:  # keep the newest while Redis is away
                    self.dropped += len(pending) - 1000
                    pending = pending[-1000:]

    async def _subscribe_loop(self) -> None:
        assert self._client is not None
        client = self._client
        backoff = 0.1
        while True:
            try:
                await self._resume(client)
                self.connected = True
                self.redis.outage.ok()
                self.last_error = None
                self.subscribed.set()
                backoff = 0.1
                while True:
                    batches: Any = await client.xread(
                        {self.channel: self.last_id or "0-0"}, count=500, block=5000
                    )
                    for _stream, entries in batches or ():
                        for entry_id, fields in entries:
                            self.last_id = _text(entry_id)
                            raw = fields.get(b"m") or fields.get("m")
                            if raw is not None:
                                self._deliver(raw)
            except (RedisError, OSError) as exc:
                self.subscribed.clear()
                self._failed(exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)

    async def _resume(self, client: aioredis.Redis) -> None:
        """Where to read from: the stream's end on the first start; after a drop, the last
        entry read — with a notice when entries since then can no longer be read."""
        if self.last_id is None:
            newest: Any = await client.xrevrange(self.channel, count=1)
            self.last_id = _text(newest[0][0]) if newest else "0-0"
            return
        if self.last_id == "0-0":
            return  # nothing was read yet: every entry in the stream is new to us
        try:
            info: Any = await client.xinfo_stream(self.channel)
        except RedisError as exc:
            if "no such key" not in str(exc).lower():
                raise
            info = None
        if info is None:
            self._gap("the shared timeline stream is gone (Redis restarted without its data?)")
            self.last_id = "0-0"
            return
        first = _field(info, "first-entry")
        newest = _field(info, "last-generated-id")
        mine = _id_key(self.last_id)
        if first:  # the oldest entry kept is newer than ours: what came between is gone
            if _id_key(_text(first[0])) > mine:
                self._gap("entries after the last one read were trimmed from the shared stream")
        elif newest and _id_key(_text(newest)) > mine:
            self._gap("entries after the last one read were trimmed from the shared stream")

    def _gap(self, why: str) -> None:
        from guilde_core.events import make_event

        self.gaps += 1
        log.warning("timeline fan-out: %s", why)
        self.bus.publish(
            make_event(
                source="dev3000",
                kind="notice",
                severity="warning",
                subject="timeline-fanout",
                summary=f"events of other dev3000 instances may be missing: {why}",
                data={"instance": self.bus.instance_id, "last_id": self.last_id},
            )
        )

    def _deliver(self, raw: bytes | str) -> None:
        try:
            body = json.loads(raw)
            if body.get("origin") == self.bus.instance_id:
                return
            event = TimelineEvent.model_validate(body["event"])
        except (ValueError, KeyError, TypeError, AttributeError, ValidationError):
            log.debug("timeline fan-out: ignored a malformed message")
            return
        if self.bus.publish(event, remote=True):
            self.received += 1
