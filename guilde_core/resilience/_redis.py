"""Redis store for breakers: shared, atomic, and never the reason a guarded call fails.

* Admission in the closed state is local (no round trip). In open state a call is rejected
  locally until the cached ``opened_at + recovery_timeout`` (converted from Redis time);
  after that, and in half-open, one ACQUIRE script decides atomically for all processes.
* Outcome: one RECORD script per failure; for a success only when the local cache is
  older than ``cache_ttl`` or has failures/half-open trials to settle. So a closed-state call
  costs at most one round trip, usually none.
* Other processes' transitions reach us through the channel (``ensure_watching``) and
  update the cache at once; the reply of every script refreshes it too.
* Any connection error flips the backend to ``degraded``: breakers run on their local
  machines (logged once, reported by ``status()``); a background probe reconnects and
  resyncs (pushes what changed locally or what Redis lost, adopts the rest).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

import redis.asyncio as aioredis
import redis.exceptions as rex

from guilde_core.config import BreakerConfig, Settings
from guilde_core.events import shared_event_id
from guilde_core.resilience import _redis_scripts as scripts
from guilde_core.resilience._machine import (
    ADMIT,
    CLOSED,
    OPEN,
    Admission,
    BreakerState,
    Change,
    Machine,
)
from guilde_core.resilience._models import (
    Backend,
    BreakerSnapshot,
    BreakerTransition,
    StoreStatus,
    utc,
)
from guilde_core.shared_redis import REDIS_DOWN, SharedRedis


class SharedBreaker(Protocol):
    """What the store reads and updates of a breaker (``_breaker.CircuitBreaker``)."""

    name: str
    dirty: bool
    synced: bool
    fresh_until: float

    @property
    def machine(self) -> Machine: ...

    @property
    def config(self) -> BreakerConfig: ...

    def next_token(self) -> str: ...

    def _local_change(self, change: Change, *, manual: bool = False) -> None: ...

    def local_snapshot(self, backend: Backend | None = None) -> BreakerSnapshot: ...


class BreakerHost(Protocol):
    """What the store needs of the registry it serves (``_breaker.BreakerRegistry``)."""

    origin: str

    @property
    def _breakers(self) -> Mapping[str, SharedBreaker]: ...

    def settings(self) -> Settings: ...

    def emit_change(
        self,
        name: str,
        change: Change,
        *,
        manual: bool = False,
        origin: str | None = None,
        at: float | None = None,
        transition_id: str | None = None,
    ) -> BreakerTransition: ...

    def emit(self, transition: BreakerTransition) -> None: ...


__all__ = ["BreakerHost", "RedisBackend", "SharedBreaker"]

log = logging.getLogger("guilde.resilience.redis")

_DOWN = REDIS_DOWN
_FORCED = {"": None, "open": OPEN, "closed": CLOSED}
_STATES = {s.value: s for s in BreakerState}


class RedisBackend:
    """Shared breaker state in Redis (see module doc)."""

    def __init__(
        self,
        registry: BreakerHost,
        url: str,
        *,
        prefix: str = "",
        cache_ttl: float = 1.0,
        key_ttl: int = 7 * 86400,
        trial_lease: float = 60.0,
        probe_interval: float = 0.5,
        max_connections: int | None = None,
    ) -> None:
        self.registry = registry
        self.url = url
        self.prefix = prefix
        self.cache_ttl = cache_ttl
        self.key_ttl = key_ttl
        self.trial_lease = trial_lease
        self.probe_interval = probe_interval
        self.channel = f"{prefix}cbr::__transitions__"
        self.names_key = f"{prefix}cbr::__names__"
        self.degraded = False
        self.error: str | None = None
        self.since: datetime | None = None
        self.offset = 0.0  # redis time - local time
        # a bounded pool: a burst of concurrent calls queues for a few connections instead
        # of opening one each (slow under load, and a reason to time out)
        self.redis = SharedRedis(
            url,
            use="circuit breaker store",
            policy="open",
            consequence="breakers continue on in-process state meanwhile",
            max_connections=max_connections or registry.settings().redis_max_connections,
            socket_timeout=2.0,
            connect_timeout=1.0,
            pool_timeout=2.0,
            logger=log,
        )
        self.max_connections = self.redis.max_connections
        self._scripts: dict[str, str] = {}
        self._probe_task: asyncio.Task[None] | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._watch_wanted = False

    # --- connection ---------------------------------------------------------------------
    def client(self) -> aioredis.Redis:
        """A client bound to the running loop (asyncio clients cannot cross loops)."""
        return self.redis.client()

    def _mark_down(self, exc: BaseException) -> None:
        self.redis.outage.failed(exc)  # logged once per outage, URL redacted
        if not self.degraded:
            self.degraded = True
            self.since = self.redis.outage.since
            self.error = self.redis.outage.error
        self._schedule_probe()

    def _schedule_probe(self) -> None:
        if self._probe_task is None or self._probe_task.done():
            with contextlib.suppress(RuntimeError):
                self._probe_task = asyncio.get_running_loop().create_task(self._probe())

    async def _probe(self) -> None:
        while self.degraded:
            await asyncio.sleep(self.probe_interval)
            try:
                await self.client().ping()
                await self._resync()
            except _DOWN:
                continue
            self.degraded = False
            self.error = None
            self.redis.outage.ok()  # "is back", once
            self.since = self.redis.outage.since

    async def _resync(self) -> None:
        for brk in list(self.registry._breakers.values()):
            m = brk.machine
            cfg = brk.config
            off = self.offset
            args = [
                "overwrite" if brk.dirty else "absent",
                m.state.value,
                m.failure_count,
                m.success_count,
                "" if m.opened_at is None else repr(m.opened_at + off),
                "" if m.forced is None else m.forced.value,
                int(m.disabled),
                "" if m.last_failure_at is None else repr(m.last_failure_at + off),
                "" if m.last_success_at is None else repr(m.last_success_at + off),
                m.last_error or "",
            ]
            reply = await self._run("sync", scripts.SYNC, brk, cfg, args)
            brk.dirty = False
            self._apply(brk, reply)

    def status(self) -> StoreStatus:
        return StoreStatus(
            backend="redis",
            connected=not self.degraded,
            degraded=self.degraded,
            url=self.redis.outage.url,
            error=self.error,
            since=self.since,
        )

    # --- scripts ------------------------------------------------------------------------
    def _keys(self, name: str) -> list[str]:
        base = f"{self.prefix}cbr::{name}"
        return [f"{base}::state", f"{base}::trials", base, f"{base}::failure_count", self.names_key]

    async def _run(
        self, kind: str, source: str, brk: SharedBreaker, cfg: Any, extra: list[Any]
    ) -> list[bytes]:
        client = self.client()
        argv: list[Any] = [
            brk.name,
            cfg.failure_threshold,
            repr(float(cfg.recovery_timeout)),
            cfg.half_open_requests,
            cfg.success_threshold,
            self.channel,
            self.registry.origin,
            self.key_ttl,
            *extra,
        ]
        keys = self._keys(brk.name)
        sha = self._scripts.get(kind)
        if sha is not None:
            try:
                return await client.evalsha(sha, len(keys), *keys, *argv)  # type: ignore[no-any-return]
            except rex.NoScriptError:
                pass
        sha = await client.script_load(source)
        self._scripts[kind] = sha
        return await client.evalsha(sha, len(keys), *keys, *argv)  # type: ignore[no-any-return]

    def _transition_id(
        self, name: str, from_state: str, to_state: str, at: float, origin: str | None
    ) -> str:
        """The id of one transition, the same in every process that learns of it — from
        the script's reply (the process that made it) or from the channel (the others): it
        is made of what the script published, its Redis time included. Timeline instances
        that relay the same transition give it one event id, so it is shown once."""
        key = f"{self.prefix}cbr::{name}|{from_state}>{to_state}|{at!r}|{origin or ''}"
        return shared_event_id(at, key)

    def _apply(self, brk: SharedBreaker, reply: list[bytes]) -> Admission:
        """Refresh the breaker's cache from a script reply; emit its transition."""
        vals = [v.decode() if isinstance(v, bytes) else str(v) for v in reply]
        now_redis = float(vals[6])
        local_now = time.time()
        self.offset = now_redis - local_now
        m = brk.machine
        m.state = _STATES[vals[2]]
        m.failure_count = int(float(vals[3]))
        m.success_count = int(float(vals[4]))
        m.opened_at = float(vals[5]) - self.offset if vals[5] else None
        m.forced = _FORCED.get(vals[7])
        m.disabled = vals[8] == "1"
        brk.fresh_until = time.monotonic() + self.cache_ttl
        brk.synced = True
        if vals[9]:
            self.registry.emit_change(
                brk.name,
                (_STATES[vals[9]], _STATES[vals[10]], vals[11]),
                manual=False,
                origin=self.registry.origin,
                transition_id=self._transition_id(
                    brk.name, vals[9], vals[10], now_redis, self.registry.origin
                ),
            )
        admitted = vals[0] == "1"
        retry_at = None
        if not admitted and m.opened_at is not None and m.state is OPEN and m.forced is None:
            retry_at = m.opened_at + brk.config.recovery_timeout
        elif not admitted and m.state is not OPEN:
            retry_at = local_now
        return Admission(admitted, trial=vals[1] == "1", retry_at=retry_at)

    # --- breaker operations ---------------------------------------------------------------
    async def admit(self, brk: SharedBreaker) -> Admission:
        m = brk.machine
        if (m.state is CLOSED or m.disabled) and brk.synced:
            return ADMIT
        if not self._watch_wanted:
            self.ensure_watching()
        cfg = brk.config
        if m.state is OPEN:
            # rejected locally: no round trip while open (a forced open is re-checked once
            # the cache is stale, in case another process missed by the watch released it)
            if m.forced is OPEN:
                if time.monotonic() < brk.fresh_until:
                    return Admission(False)
            elif m.opened_at is not None:
                retry_at = m.opened_at + cfg.recovery_timeout
                if time.time() < retry_at:
                    return Admission(False, retry_at=retry_at)
        token = brk.next_token()
        try:
            reply = await self._run("acquire", scripts.ACQUIRE, brk, cfg, [token, self.trial_lease])
        except _DOWN as exc:
            self._mark_down(exc)
            adm = m.admit(time.time(), cfg)
            if adm.change is not None:
                brk._local_change(adm.change)
            return adm
        adm = self._apply(brk, reply)
        if adm.trial:
            return Admission(True, trial=True, token=token)
        return adm

    async def record(
        self, brk: SharedBreaker, outcome: str, adm: Admission, error: str | None
    ) -> None:
        m = brk.machine
        if (
            outcome == "s"
            and not adm.trial
            and m.state is CLOSED
            and m.failure_count == 0
            and time.monotonic() < brk.fresh_until
        ):
            m.last_success_at = time.time()
            return
        cfg = brk.config
        try:
            reply = await self._run(
                "record", scripts.RECORD, brk, cfg, [outcome, adm.token or "", error or ""]
            )
        except _DOWN as exc:
            self._mark_down(exc)
            now = time.time()
            if outcome == "s":
                change = m.success(now, cfg, adm.trial)
            elif outcome == "f":
                change = m.failure(now, cfg, adm.trial, error or "")
            else:
                m.ignored(adm.trial)
                change = None
            if change is not None:
                brk._local_change(change)
            return
        self._apply(brk, reply)

    async def control(self, brk: SharedBreaker, action: str, reason: str) -> bool:
        """Manual action; False when Redis is down (the caller applies it locally)."""
        try:
            reply = await self._run("control", scripts.CONTROL, brk, brk.config, [action, reason])
        except _DOWN as exc:
            self._mark_down(exc)
            return False
        vals = [v.decode() if isinstance(v, bytes) else str(v) for v in reply]
        # emit as manual (``_apply`` would emit it as automatic)
        reply[9] = b""
        self._apply(brk, reply)
        self.registry.emit_change(
            brk.name,
            (_STATES[vals[9]], _STATES[vals[10]], vals[11]),
            manual=True,
            origin=self.registry.origin,
            transition_id=self._transition_id(
                brk.name, vals[9], vals[10], float(vals[6]), self.registry.origin
            ),
        )
        return True

    # --- reading ------------------------------------------------------------------------
    async def names(self) -> set[str]:
        try:
            raw = await self.client().smembers(self.names_key)
        except _DOWN as exc:
            self._mark_down(exc)
            return set()
        return {v.decode() if isinstance(v, bytes) else str(v) for v in raw}

    async def _read(self, names: list[str]) -> tuple[float, list[dict[str, str]]] | None:
        try:
            async with self.client().pipeline(transaction=False) as pipe:
                pipe.time()
                for name in names:
                    pipe.hgetall(f"{self.prefix}cbr::{name}::state")
                res = await pipe.execute()
        except _DOWN as exc:
            self._mark_down(exc)
            return None
        secs, micros = res[0]
        now = float(secs) + float(micros) / 1e6
        rows = [{k.decode(): v.decode() for k, v in row.items()} for row in res[1:]]
        return now, rows

    def _snapshot(
        self, name: str, row: dict[str, str], redis_now: float, brk: SharedBreaker | None
    ) -> BreakerSnapshot:
        cfg = brk.config if brk is not None else self.registry.settings().breaker_config(name)
        off = redis_now - time.time()
        state = _STATES.get(row.get("state", "closed"), CLOSED)
        opened = float(row["opened_at"]) if row.get("opened_at") else None
        forced = row.get("forced", "")
        until = None
        if state is OPEN and opened is not None and not forced:
            until = max(0.0, opened + cfg.recovery_timeout - redis_now)

        def ts(key: str) -> datetime | None:
            raw = row.get(key)
            return utc(float(raw) - off) if raw else None

        return BreakerSnapshot(
            name=name,
            state=state,
            config=cfg,
            failure_count=int(float(row.get("failures", "0") or 0)),
            success_count=int(float(row.get("successes", "0") or 0)),
            last_failure_at=ts("last_failure_at"),
            last_success_at=ts("last_success_at"),
            last_error=row.get("last_error") or None,
            opened_at=ts("opened_at"),
            seconds_until_half_open=until,
            forced=bool(forced),
            disabled=row.get("disabled") == "1",
            backend="redis",
        )

    async def snapshot(self, name: str, brk: SharedBreaker | None) -> BreakerSnapshot | None:
        read = await self._read([name])
        if read is None:
            return None
        now, rows = read
        if not rows[0]:
            if brk is None:
                return None
            return brk.local_snapshot(backend="redis")
        return self._snapshot(name, rows[0], now, brk)

    async def snapshots(
        self, names: list[str], breakers: Mapping[str, SharedBreaker]
    ) -> list[BreakerSnapshot] | None:
        read = await self._read(names)
        if read is None:
            return None
        now, rows = read
        out = []
        for name, row in zip(names, rows, strict=True):
            brk = breakers.get(name)
            if row:
                out.append(self._snapshot(name, row, now, brk))
            elif brk is not None:  # registered here, nothing recorded yet: closed
                out.append(brk.local_snapshot(backend="redis"))
        return out

    # --- the transition channel ---------------------------------------------------------
    def ensure_watching(self) -> None:
        """Start the watch task if a loop is running (else on the next async use)."""
        self._watch_wanted = True
        if self._watch_task is not None and not self._watch_task.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._watch_task = loop.create_task(self._watch())

    async def _watch(self) -> None:
        while self._watch_wanted:
            pubsub = None
            try:
                pubsub = self.client().pubsub()
                await pubsub.subscribe(self.channel)
                # transitions may have been missed while not subscribed: reload on next use
                for brk in list(self.registry._breakers.values()):
                    brk.synced = False
                while self._watch_wanted:
                    msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if msg is not None and msg.get("type") == "message":
                        self._on_message(msg["data"])
            except _DOWN as exc:
                self._mark_down(exc)
                await asyncio.sleep(self.probe_interval)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("breaker watch failed; restarting")
                await asyncio.sleep(self.probe_interval)
            finally:
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _on_message(self, data: bytes | str) -> None:
        try:
            body = json.loads(data)
            if body.get("origin") == self.registry.origin:
                return  # ours: already emitted when the script replied
            name = str(body["name"])
            to = _STATES[body["to_state"]]
            transition = BreakerTransition(
                name=name,
                from_state=_STATES[body["from_state"]],
                to_state=to,
                at=datetime.fromtimestamp(float(body["at"]) - self.offset, UTC),
                reason=str(body.get("reason") or ""),
                manual=bool(body.get("manual")),
                origin=body.get("origin"),
                id=self._transition_id(
                    name,
                    str(body["from_state"]),
                    str(body["to_state"]),
                    float(body["at"]),
                    body.get("origin"),
                ),
            )
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed breaker transition message")
            return
        brk = self.registry._breakers.get(name)
        if brk is not None:
            m = brk.machine
            m.state = to
            m.forced = _FORCED.get(str(body.get("forced") or ""))
            m.disabled = str(body.get("disabled")) == "1"
            if to is OPEN:
                m.opened_at = transition.at.timestamp()
            elif to is CLOSED:
                m.failure_count = 0
                m.opened_at = None
            brk.fresh_until = 0.0
        self.registry.emit(transition)

    async def aclose(self) -> None:
        self._watch_wanted = False
        for task in (self._watch_task, self._probe_task):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        await self.redis.aclose()
