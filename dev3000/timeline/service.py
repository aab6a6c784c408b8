"""Running the timeline: files, Redis fan-out and sources around one :class:`EventBus`.

In ``dev3000 serve`` the app enters :func:`timeline_lifespan` (it uses the app's bus,
settings and Redis prefix)::

    async with timeline_lifespan(app):
        ...

Elsewhere (``dev3000 mcp all`` over stdio, tests)::

    service = TimelineService(settings, bus=bus)
    await service.start()
    ...
    await service.shutdown()
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dev3000.redis_keys import dev3000_prefix
from guilde_core.config import Settings
from guilde_core.resilience import BreakerRegistry
from servers.browser.capture import LOG_DIRNAME as BROWSER_LOG_DIRNAME

from .bus import EventBus
from .files import TimelineFiles, timeline_dir
from .sources import BreakerWatcher, DeepCheck, HealthPoller, LogFollower, default_deep_check

if TYPE_CHECKING:
    from .fanout import RedisFanout

__all__ = ["TimelineService", "timeline_lifespan"]

log = logging.getLogger(__name__)


class TimelineService:
    """Starts and stops everything that feeds or mirrors the timeline.

    Each part can be switched off (``files=False`` …) or given explicitly (``deep_check``,
    ``breaker_registry``, ``log_paths``); ``redis_url`` defaults to ``REDIS_URL`` then
    ``CIRCUIT_BREAKER_REDIS_URL`` (no Redis: no fan-out).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        bus: EventBus | None = None,
        redis_prefix: str | None = None,
        redis_url: str | None = None,
        files: bool = True,
        files_dir: Path | None = None,
        fanout: bool = True,
        health: bool = True,
        deep_check: DeepCheck | None = None,
        breakers: bool = True,
        breaker_registry: BreakerRegistry | None = None,
        logs: bool = True,
        log_paths: list[str] | None = None,
    ) -> None:
        self.settings = settings
        self.bus = bus if bus is not None else EventBus(settings.diagnostic_stream_buffer_size)
        self.redis_prefix = redis_prefix or dev3000_prefix(settings)
        self.redis_url = redis_url or settings.shared_redis_url
        self._want = {"files": files, "fanout": fanout, "health": health, "breakers": breakers,
                      "logs": logs}  # fmt: skip
        self._files_dir = files_dir
        self._deep_check = deep_check
        self._breaker_registry = breaker_registry
        self._log_paths = log_paths
        self.files: TimelineFiles | None = None
        self.fanout: RedisFanout | None = None
        self.poller: HealthPoller | None = None
        self.breakers: BreakerWatcher | None = None
        self.follower: LogFollower | None = None
        self.started = False

    async def start(self) -> None:
        """Bind the bus to this loop and start every enabled part (failures are logged,
        never fatal: the timeline works with whatever could start)."""
        if self.started:
            return
        self.started = True
        self.bus.bind_loop()
        self.bus.on_shutdown(self._stop_parts)
        if self._want["files"]:
            with _logged("timeline files"):
                self.files = TimelineFiles(self._files_dir or timeline_dir(self.settings))
                self.files.open()
                self.bus.add_sink(self.files)
        if self._want["fanout"] and self.redis_url:
            with _logged("timeline fan-out"):
                # the Redis client is imported only where Redis is configured (a tenth of
                # a second of every start without it: tools/bench/bench_start.py)
                from .fanout import RedisFanout

                self.fanout = RedisFanout(self.bus, self.redis_url, prefix=self.redis_prefix)
                await self.fanout.start()
        if self._want["breakers"]:
            with _logged("breaker watcher"):
                watcher = BreakerWatcher(self.bus, self._breaker_registry)
                watcher.start()
                self.breakers = watcher
        if self._want["logs"]:
            with _logged("log follower"):
                exclude = [self.files.directory] if self.files else []
                # the browser capture's log repeats its own events
                exclude.append(timeline_dir(self.settings).parent / BROWSER_LOG_DIRNAME)
                settings = self.settings
                if self._log_paths is not None:
                    settings = settings.model_copy(update={"dev3000_log_paths": self._log_paths})
                follower = LogFollower(self.bus, settings, exclude=exclude)
                follower.start()
                self.follower = follower
        if self._want["health"] and self.settings.health_deep_check_enabled:
            check = self._deep_check or default_deep_check(self.settings)
            self.poller = HealthPoller(
                self.bus,
                check,
                interval=self.settings.health_deep_check_interval,
                claim=None if self.fanout is None else self._claim,
            )
            self.poller.start()

    async def _claim(self, subject: str, state: str) -> bool:
        """One report per transition every instance observes (the fan-out's claim; the
        shared record outlives a few polls)."""
        if self.fanout is None:
            return True
        ttl = max(600.0, 3 * self.settings.health_deep_check_interval)
        return await self.fanout.claim(subject, state, ttl)

    def status(self) -> dict[str, Any]:
        """What runs (for status pages and doctor)."""
        return {
            "buffered": len(self.bus),
            "buffer_size": self.bus.buffer_size,
            "instance": self.bus.instance_id,
            "files": str(self.files.path) if self.files and self.files.path else None,
            "fanout": self.fanout.status() if self.fanout else None,
            "health_poller": self.poller is not None,
            "breaker_watcher": self.breakers is not None,
            "log_follower": self.follower is not None,
        }

    async def _stop_parts(self) -> None:
        for sink in (self.files, self.fanout):
            if sink is not None:
                self.bus.remove_sink(sink)
        for part in (self.poller, self.follower, self.breakers, self.fanout):
            if part is not None:
                with _logged(f"stopping {type(part).__name__}"):
                    await part.stop()
        if self.files is not None:
            self.files.close()

    async def shutdown(self) -> None:
        """Close every subscription (1001) and stop the parts."""
        await self.bus.shutdown()


@contextlib.contextmanager
def _logged(what: str) -> Any:
    try:
        yield
    except Exception as exc:
        log.warning("%s unavailable: %s: %s", what, type(exc).__name__, exc)


@contextlib.asynccontextmanager
async def timeline_lifespan(app: Any, **options: Any) -> AsyncIterator[TimelineService]:
    """The timeline's part of the dev3000 app's lifespan (uses ``app.state.dev3000``)."""
    state = app.state.dev3000
    service = TimelineService(
        state.settings, bus=state.bus, redis_prefix=state.redis_prefix, **options
    )
    await service.start()
    try:
        yield service
    finally:
        await service._stop_parts()
