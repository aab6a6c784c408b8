"""The one way the project talks to Redis: key names, clients, and what an outage does.

**Key names.** Every key and channel a process of the stack shares through Redis starts with
``Settings.redis_namespace`` — ``guilde:<DEV3000_DEPLOYMENT>:`` — then the user's own part
(``cbr::<breaker>``, ``dev3000:timeline``, ``dev3000:targets``, ``dev3000:ratelimit:…``,
``deadletters`` …). Two stacks with different deployment names can share one Redis and never
read each other's breakers, rate limits, timeline or targets; every process of one stack
(dev3000 instances, the agent, the services using the resilience layer) uses the same name.

**Clients.** :class:`SharedRedis` holds one ``redis.asyncio`` client per event loop (they
cannot cross loops) on a *bounded* :class:`~redis.asyncio.BlockingConnectionPool`
(``REDIS_MAX_CONNECTIONS``): a burst of concurrent callers queues for a few connections
instead of opening one each, and a caller that cannot get one within ``pool_timeout``
fails like an unreachable Redis. Short timeouts, no retries of its own: the caller's outage
policy decides what a failure means. :func:`probe` is the short-lived one-connection client
of checks (doctor, a health target that is a Redis).

**Outage policy.** Each use declares what happens while Redis is down:

* ``open`` — keep working without it (breakers on in-process state, the rate limiter in
  memory, the timeline locally) and resynchronise when it is back;
* ``closed`` — refuse with :class:`~guilde_core.errors.ConnectionFailedError` (HTTP 503), for
  state that has no safe local stand-in (the runtime targets registry).

Either way the loss is logged once, at error level, and the recovery once, at warning level,
with the URL's credentials masked; :meth:`RedisOutage.status` reports it to readiness and the
status endpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

import redis
import redis.asyncio as aioredis
import redis.exceptions as rex
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.retry import Retry as SyncRetry

from guilde_core.config import Settings, get_settings
from guilde_core.errors import ConnectionFailedError
from guilde_core.redaction import redact_text

__all__ = [
    "REDIS_DOWN",
    "OutagePolicy",
    "RedisOutage",
    "SharedRedis",
    "probe",
    "probe_sync",
]

log = logging.getLogger("guilde.redis")

T = TypeVar("T")

#: what "Redis is unreachable" looks like (a pool that has no connection to give within its
#: timeout raises ``ConnectionError`` too)
REDIS_DOWN: tuple[type[BaseException], ...] = (
    rex.ConnectionError,
    rex.TimeoutError,
    OSError,
    asyncio.TimeoutError,
)

OutagePolicy = Literal["open", "closed"]

_CONSEQUENCE = {
    "open": "continuing without it meanwhile",
    "closed": "refusing what needs it meanwhile",
}


def _default_pool_size() -> int:
    """``REDIS_MAX_CONNECTIONS`` (its built-in default when the configuration cannot be
    read: a client is still bounded)."""
    try:
        return get_settings().redis_max_connections
    except Exception:
        default: int = Settings.model_fields["redis_max_connections"].default
        return default


class RedisOutage:
    """Whether one use's Redis is reachable; logs the loss and the recovery once each."""

    def __init__(
        self,
        use: str,
        url: str,
        policy: OutagePolicy,
        *,
        consequence: str | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.use = use
        self.url = redact_text(url)
        self.policy: OutagePolicy = policy
        self.consequence = consequence or _CONSEQUENCE[policy]
        self.log = logger or log
        self.down = False
        self.since: datetime | None = None
        self.error: str | None = None
        self.errors = 0

    def failed(self, exc: BaseException) -> None:
        """Redis failed this use: count it; the first failure of an outage is logged."""
        self.errors += 1
        text = str(exc)
        self.error = redact_text(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)
        self.error = self.error[:300]
        if not self.down:
            self.down = True
            self.since = datetime.now(UTC)
            self.log.error(
                "%s: Redis at %s unreachable (%s); %s",
                self.use,
                self.url,
                self.error,
                self.consequence,
            )

    def ok(self) -> None:
        """Redis answered this use: an outage, if any, is over (logged once)."""
        if self.down:
            self.down = False
            self.since = datetime.now(UTC)
            self.log.warning("%s: Redis at %s is back", self.use, self.url)

    def refusal(self, exc: BaseException) -> ConnectionFailedError:
        """Record ``exc`` and give the typed error a ``closed`` use raises (HTTP 503)."""
        self.failed(exc)
        return ConnectionFailedError(
            f"{self.use}: Redis unavailable ({type(exc).__name__})", service="redis"
        )

    def status(self) -> dict[str, Any]:
        return {
            "use": self.use,
            "url": self.url,
            "policy": self.policy,
            "connected": not self.down,
            "since": self.since.isoformat() if self.since else None,
            "errors": self.errors,
            "last_error": self.error,
        }


class SharedRedis:
    """A bounded-pool ``redis.asyncio`` client per event loop for one use (see module doc).

    ``use`` names it in logs and status ("circuit breakers", "timeline fan-out" …);
    ``policy`` is its outage policy; ``max_connections`` defaults to
    ``REDIS_MAX_CONNECTIONS``; ``pool_timeout`` (default ``socket_timeout``, at least 1 s) is
    how long a caller waits for a free connection.
    """

    def __init__(
        self,
        url: str,
        *,
        use: str,
        policy: OutagePolicy = "open",
        consequence: str | None = None,
        max_connections: int | None = None,
        socket_timeout: float | None = 2.0,
        connect_timeout: float = 1.0,
        pool_timeout: float | None = None,
        decode_responses: bool = False,
        health_check_interval: int = 0,
        client_name: str | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.url = url
        self.use = use
        self.max_connections = max_connections or _default_pool_size()
        self.pool_timeout = (
            pool_timeout if pool_timeout is not None else max(1.0, socket_timeout or 2.0)
        )
        self.outage = RedisOutage(use, url, policy, consequence=consequence, logger=logger)
        self._options: dict[str, Any] = {
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": connect_timeout,
            "decode_responses": decode_responses,
            "health_check_interval": health_check_interval,
            "retry": Retry(NoBackoff(), 0),
        }
        if client_name:
            self._options["client_name"] = client_name
        self._clients: dict[int, tuple[asyncio.AbstractEventLoop, aioredis.Redis]] = {}

    @property
    def policy(self) -> OutagePolicy:
        return self.outage.policy

    def client(self) -> aioredis.Redis:
        """The client of the running loop (made on first use)."""
        loop = asyncio.get_running_loop()
        entry = self._clients.get(id(loop))
        if entry is None or entry[0] is not loop:
            for key, (old, _) in list(self._clients.items()):
                if old.is_closed():  # clients of loops that are gone
                    del self._clients[key]
            pool = aioredis.BlockingConnectionPool.from_url(
                self.url,
                max_connections=self.max_connections,
                timeout=self.pool_timeout,
                **self._options,
            )
            entry = self._clients[id(loop)] = (loop, aioredis.Redis.from_pool(pool))
        return entry[1]

    def connections(self) -> int:
        """Connections the pools hold now (in use or idle), every loop together."""
        total = 0
        for _, client in self._clients.values():
            pool: Any = client.connection_pool
            total += len(pool._available_connections) + len(pool._in_use_connections)
        return total

    async def run(self, operation: Callable[[aioredis.Redis], Awaitable[T]]) -> T:
        """``await operation(client)`` under this use's outage policy: an outage raises
        :class:`ConnectionFailedError` (``closed``) or is re-raised for the caller's own
        fallback (``open``); either way it is recorded and logged once."""
        try:
            result = await operation(self.client())
        except REDIS_DOWN as exc:
            if self.policy == "closed":
                raise self.outage.refusal(exc) from None
            self.outage.failed(exc)
            raise
        except rex.RedisError as exc:  # an answer, but an error one: not an outage
            if self.policy == "closed":
                raise ConnectionFailedError(
                    f"{self.use}: Redis error ({type(exc).__name__})", service="redis"
                ) from None
            raise
        self.outage.ok()
        return result

    def status(self) -> dict[str, Any]:
        return {**self.outage.status(), "max_connections": self.max_connections}

    async def aclose(self) -> None:
        """Close the client of the running loop; forget those of other loops."""
        try:
            current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        clients, self._clients = list(self._clients.values()), {}
        for loop, client in clients:
            if loop is current:
                with contextlib.suppress(Exception):
                    await client.aclose()


def _probe_pool(timeout: float) -> dict[str, Any]:
    """One connection, every wait bounded by ``timeout`` (both probes' pools)."""
    return {
        "max_connections": 1,
        "timeout": timeout,
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
    }


@contextlib.asynccontextmanager
async def probe(url: str, timeout: float) -> AsyncIterator[aioredis.Redis]:  # noqa: ASYNC109
    """A one-connection client for a check (doctor, a Redis health target), closed after."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url, retry=Retry(NoBackoff(), 0), **_probe_pool(timeout)
    )
    client = aioredis.Redis.from_pool(pool)
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):
            await client.aclose()


@contextlib.contextmanager
def probe_sync(url: str, timeout: float) -> Iterator[redis.Redis]:
    """:func:`probe` for synchronous code (test harnesses, command-line checks)."""
    pool = redis.BlockingConnectionPool.from_url(
        url, retry=SyncRetry(NoBackoff(), 0), **_probe_pool(timeout)
    )
    client = redis.Redis.from_pool(pool)
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):
            client.close()
