"""Several dev3000 instances sharing Redis act as one timeline.

Every event that originates in this process is published on the Redis channel
``<prefix>timeline`` as ``{"origin": <instance id>, "event": {…}}``; every instance
subscribes to it and hands other instances' events to its bus as *remote* events (they
reach its stream clients and buffer, not its files nor Redis again). The bus ignores an
event id it has already seen, so nothing is delivered twice, and an instance skips its
own messages. When Redis is unreachable the local timeline keeps working; the fan-out
reconnects with back-off and reports its state in :meth:`RedisFanout.status`.
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

from ._tasks import cancel_tasks
from .bus import EventBus

__all__ = ["RedisFanout"]

log = logging.getLogger(__name__)


class RedisFanout:
    """An event sink + subscriber that joins this bus to the other instances' buses."""

    def __init__(
        self,
        bus: EventBus,
        redis_url: str,
        *,
        prefix: str = "dev3000:",
        queue_size: int = 10_000,
        max_backoff: float = 5.0,
    ) -> None:
        self.bus = bus
        self.redis_url = redis_url
        self.channel = f"{prefix}timeline"
        self.max_backoff = max_backoff
        self._outbox: asyncio.Queue[str] = asyncio.Queue(queue_size)
        self._tasks: list[asyncio.Task[None]] = []
        self._client: aioredis.Redis | None = None
        self.connected = False
        self.subscribed = asyncio.Event()
        self.sent = 0
        self.received = 0
        self.dropped = 0
        self.last_error: str | None = None

    # --- sink --------------------------------------------------------------------------
    def emit(self, event: TimelineEvent) -> None:
        message = '{"origin":"%s","event":%s}' % (self.bus.instance_id, event.model_dump_json())  # noqa: UP031
        try:
            self._outbox.put_nowait(message)
        except asyncio.QueueFull:
            self.dropped += 1

    # --- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        self._client = aioredis.Redis.from_url(
            self.redis_url, socket_connect_timeout=2, socket_timeout=None, health_check_interval=15
        )
        self.bus.add_sink(self)
        self._tasks = [
            asyncio.create_task(self._publish_loop(), name="timeline-fanout-publish"),
            asyncio.create_task(self._subscribe_loop(), name="timeline-fanout-subscribe"),
        ]

    async def stop(self) -> None:
        await cancel_tasks(self._tasks)
        self._tasks = []
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.aclose()
            self._client = None

    def status(self) -> dict[str, Any]:
        return {
            "backend": "redis",
            "channel": self.channel,
            "connected": self.connected,
            "sent": self.sent,
            "received": self.received,
            "dropped": self.dropped,
            "last_error": self.last_error,
        }

    def _failed(self, exc: BaseException) -> None:
        self.connected = False
        text = redact_text(f"{type(exc).__name__}: {exc}")[:200]
        if text != self.last_error:
            log.warning("timeline fan-out: %s", text)
        self.last_error = text

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
                        pipe.publish(self.channel, message)
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
        backoff = 0.1
        while True:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self.connected = True
                self.last_error = None
                self.subscribed.set()
                backoff = 0.1
                while True:
                    message = await pubsub.get_message(timeout=5.0)
                    if message is not None and message.get("type") == "message":
                        self._deliver(message["data"])
            except (RedisError, OSError) as exc:
                self.subscribed.clear()
                self._failed(exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

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
