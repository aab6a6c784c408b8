"""Circuit breakers and their registry.

:class:`CircuitBreaker` runs the pure :class:`~._machine.Machine`. With the memory store the
machine *is* the state; with Redis (:mod:`._redis`) it is a local cache of the shared state,
kept fresh by the replies of the Lua scripts and by the transition channel, and it becomes
the authority while Redis is unreachable (``memory-fallback``) until the registry resyncs.

Cost on the closed fast path: one ``time`` read is not even needed — a closed breaker admits
without looking at the clock or the configuration; the outcome is a couple of integer
updates (memory) or at most one EVALSHA (Redis; none for a success while the cache is
fresh and there is no failure to clear).
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from guilde_core.config import BreakerConfig, Settings, get_settings
from guilde_core.errors import CircuitOpenError, GuildeError, NotFoundError, classify
from guilde_core.redaction import escape_controls, redact_text
from guilde_core.resilience._hooks import safe_call
from guilde_core.resilience._machine import (
    ADMIT,
    CLOSED,
    HALF_OPEN,
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

if TYPE_CHECKING:
    from guilde_core.resilience._redis import RedisBackend

__all__ = ["BreakerRegistry", "CircuitBreaker", "TransitionCallback", "counts_as_failure"]

log = logging.getLogger("guilde.resilience.breaker")

T = TypeVar("T")
TransitionCallback = Callable[[BreakerTransition], Any]
Fallback = Callable[[BaseException], Any]

#: call counter slots (metrics kind names of ``circuit_breaker_calls_total``)
SUCCESSFUL, FAILED, IGNORED, NOT_PERMITTED = 0, 1, 2, 3
CALL_KINDS = ("successful", "failed", "ignored", "not_permitted")


def counts_as_failure(exc: BaseException) -> bool:
    """Whether ``exc`` counts as a breaker failure.

    Cancellation (and any non-``Exception``) never does; errors classified permanent /
    client-side (``counts_as_failure = False``: 4xx, auth, open circuit, local limits) don't.
    """
    if not isinstance(exc, Exception):
        return False
    if isinstance(exc, GuildeError):
        return exc.counts_as_failure
    return classify(exc).counts_as_failure


def _describe(exc: BaseException) -> str:
    """The error text a breaker keeps (``last_error``, transition reasons, logs): redacted
    before it is cut, so a cut never leaves half a secret the patterns no longer see."""
    text = str(exc)
    return redact_text(f"{type(exc).__name__}: {text}")[:300] if text else type(exc).__name__


async def _run_fallback(fallback: Fallback, exc: BaseException) -> Any:
    result = fallback(exc)
    if inspect.isawaitable(result):
        return await result
    return result


class Rejected(CircuitOpenError):
    """The :class:`CircuitOpenError` a rejection raises — a new one each time (purgatory
    re-raises one shared instance whose traceback grows with every rejection).

    Built cheaply: ``CircuitOpenError.__init__`` formats a datetime into its message, which
    would dominate the cost of a rejection, so the message is only made when it is read. No
    Python ``__init__`` runs either: the fields are the exception's ``args`` (set in C), read
    through properties, and no instance dict is made.
    """

    __slots__ = ()
    status_code = None
    __init__ = BaseException.__init__  # Rejected(name, retry_at, state)
    args: tuple[str, float | None, str]

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.args[0]

    @property
    def retry_at(self) -> float | None:  # type: ignore[override]
        return self.args[1]

    @property
    def state(self) -> str:  # type: ignore[override]
        return self.args[2]

    @property
    def service(self) -> str:  # type: ignore[override]
        return self.args[0]

    @property
    def message(self) -> str:  # type: ignore[override]
        return CircuitOpenError(self.name, retry_at=self.retry_at, state=self.state).message

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"CircuitOpenError({self.message!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Rejected, (self.name, self.retry_at, self.state))


# it *is* a CircuitOpenError: logs, problem details and ``type(e).__name__`` say so
Rejected.__name__ = Rejected.__qualname__ = "CircuitOpenError"


class CircuitBreaker:
    """One named breaker. Use :meth:`call`; get instances from :class:`BreakerRegistry`."""

    __slots__ = (
        "_cfg",
        "_cfg_for",
        "_explicit",
        "_m",
        "_reg",
        "_tokens",
        "calls",
        "dirty",
        "fresh_until",
        "name",
        "synced",
    )

    def __init__(
        self, name: str, registry: BreakerRegistry, config: BreakerConfig | None = None
    ) -> None:
        self.name = name
        self._reg = registry
        self._explicit = config
        self._cfg: BreakerConfig | None = config
        self._cfg_for: object = None
        self._m = Machine()
        self._tokens = itertools.count()
        #: successful, failed, ignored, not_permitted (read by the metrics collector)
        self.calls = [0, 0, 0, 0]
        #: monotonic time until which the Redis-backed cache is trusted for successes
        self.fresh_until = 0.0
        #: changed locally while Redis was unreachable (pushed on resync)
        self.dirty = False
        #: the Redis-backed cache has been loaded (and the watch keeps it current)
        self.synced = False

    # --- configuration ------------------------------------------------------------------
    @property
    def config(self) -> BreakerConfig:
        """Effective config: explicit, else ``settings.breaker_config(name)`` — re-read
        whenever the settings object changes (reload), never frozen in a store."""
        if self._explicit is not None:
            return self._explicit
        settings = self._reg.settings()
        if self._cfg is None or self._cfg_for is not settings:
            self._cfg = settings.breaker_config(self.name)
            self._cfg_for = settings
        return self._cfg

    @property
    def machine(self) -> Machine:
        return self._m

    @property
    def state(self) -> BreakerState:
        """The state as this process last saw it (use ``snapshot()`` for the shared one)."""
        return self._m.state

    # --- the call -----------------------------------------------------------------------
    async def call(
        self,
        fn: Callable[..., Awaitable[T]],
        /,
        *args: Any,
        fallback: Fallback | None = None,
        **kwargs: Any,
    ) -> T:
        """Run ``await fn(*args, **kwargs)`` through the breaker.

        Rejections raise a fresh :class:`CircuitOpenError` (or return ``fallback(error)``).
        """
        reg = self._reg
        if not (reg._settings or get_settings()).circuit_breaker_enabled:
            return await fn(*args, **kwargs)
        m = self._m
        remote = reg.remote
        if remote is not None and not remote.degraded:
            adm = await remote.admit(self)
        elif m.state is CLOSED or m.disabled:
            adm = ADMIT
        elif m.state is OPEN and (
            m.forced is OPEN
            or time.time() < (retry_at := m.opened_at + self.config.recovery_timeout)  # type: ignore[operator]
        ):  # the common rejection, without building an Admission
            self.calls[3] += 1  # not_permitted
            if fallback is not None:
                err = Rejected(self.name, None if m.forced is OPEN else retry_at, "open")
                return await _run_fallback(fallback, err)  # type: ignore[no-any-return]
            # raised without a local name: a local would make a reference cycle (error ->
            # traceback -> this frame -> error) that only the cyclic GC could free
            raise Rejected(self.name, None if m.forced is OPEN else retry_at, "open")
        else:
            adm = m.admit(time.time(), self.config)
            if adm.change is not None:
                self._local_change(adm.change)
        if not adm.admitted:
            self.calls[3] += 1  # not_permitted
            if fallback is not None:
                err = Rejected(self.name, adm.retry_at, m.state.value)
                return await _run_fallback(fallback, err)  # type: ignore[no-any-return]
            raise Rejected(self.name, adm.retry_at, m.state.value)  # no local: no cycle
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            if m.disabled:
                self.calls[IGNORED] += 1
            elif counts_as_failure(exc):
                self.calls[FAILED] += 1
                await self._record_failure(adm, exc)
            else:
                self.calls[IGNORED] += 1
                if adm.trial:
                    await self._record_ignored(adm)
            raise
        self.calls[0] += 1  # successful
        if remote is None or remote.degraded:
            m.last_success_at = time.time()
            if m.state is not CLOSED or m.failure_count:
                change = m.success(m.last_success_at, self.config, adm.trial)
                if change is not None:
                    self._local_change(change)
        else:
            await remote.record(self, "s", adm, None)
        return result

    async def _record_failure(self, adm: Admission, exc: BaseException) -> None:
        remote = self._reg.remote
        if remote is not None and not remote.degraded:
            await remote.record(self, "f", adm, _describe(exc))
            return
        change = self._m.failure(time.time(), self.config, adm.trial, _describe(exc))
        if change is not None:
            self._local_change(change)

    async def _record_ignored(self, adm: Admission) -> None:
        remote = self._reg.remote
        if remote is not None and not remote.degraded:
            await remote.record(self, "i", adm, None)
            return
        self._m.ignored(adm.trial)

    def next_token(self) -> str:
        return f"{self._reg.origin}:{next(self._tokens)}"

    def _local_change(self, change: Change, *, manual: bool = False) -> None:
        remote = self._reg.remote
        if remote is not None:
            self.dirty = True
        self._reg.emit_change(self.name, change, manual=manual, origin=self._reg.origin)

    # --- views --------------------------------------------------------------------------
    def local_snapshot(self, backend: Backend | None = None) -> BreakerSnapshot:
        m = self._m
        cfg = self.config
        retry_at = m.retry_at(cfg)
        remote = self._reg.remote
        if backend is None:
            backend = "memory" if remote is None else "memory-fallback"
        return BreakerSnapshot(
            name=self.name,
            state=m.state,
            config=cfg,
            failure_count=m.failure_count,
            success_count=m.success_count,
            last_failure_at=utc(m.last_failure_at),
            last_success_at=utc(m.last_success_at),
            last_error=m.last_error,
            opened_at=utc(m.opened_at),
            seconds_until_half_open=None if retry_at is None else max(0.0, retry_at - time.time()),
            forced=m.forced is not None,
            disabled=m.disabled,
            backend=backend,
        )


class BreakerRegistry:
    """Every breaker of the process; shared state through Redis when configured.

    ``redis_url`` None → memory store. ``prefix`` is put before every Redis key and the
    transition channel: by default this deployment's namespace (``guilde:<DEV3000_DEPLOYMENT>:``,
    so every registry of the stack shares its breakers and no other stack's); tests give
    their ``redis_prefix``.
    """

    def __init__(
        self,
        *,
        redis_url: str | None = None,
        prefix: str | None = None,
        settings: Settings | None = None,
        cache_ttl: float = 1.0,
        history: int = 500,
    ) -> None:
        self._settings = settings
        self._breakers: dict[str, CircuitBreaker] = {}
        self._subscribers: list[TransitionCallback] = []
        self._history: deque[BreakerTransition] = deque(maxlen=history)
        self.origin = f"{os.getpid()}-{os.urandom(3).hex()}"
        if prefix is None:
            prefix = self.settings().redis_namespace if redis_url else ""
        self.prefix = prefix
        #: per-service runtime of ``resilient_call`` (limiter, budget, counters)
        self.services: dict[tuple[str, str], Any] = {}
        self.remote: RedisBackend | None = None
        if redis_url:
            from guilde_core.resilience._redis import RedisBackend

            self.remote = RedisBackend(self, redis_url, prefix=prefix, cache_ttl=cache_ttl)

    # --- settings -----------------------------------------------------------------------
    def settings(self) -> Settings:
        return self._settings if self._settings is not None else get_settings()

    def enabled(self) -> bool:
        """``CIRCUIT_BREAKER_ENABLED``: false makes every breaker a pass-through."""
        return self.settings().circuit_breaker_enabled

    # --- breakers -----------------------------------------------------------------------
    def breaker(self, name: str, config: BreakerConfig | None = None) -> CircuitBreaker:
        """The breaker called ``name`` (created on first use)."""
        brk = self._breakers.get(name)
        if brk is None:
            if not name or len(name) > 200:
                raise ValueError("breaker name must be 1-200 characters")
            brk = self._breakers[name] = CircuitBreaker(name, self, config)
        elif config is not None:
            brk._explicit = config
        return brk

    def names(self) -> list[str]:
        """Breakers known to this process."""
        return sorted(self._breakers)

    async def snapshot(self, name: str) -> BreakerSnapshot:
        """The state of one breaker (shared state when Redis is configured)."""
        if self.remote is not None and not self.remote.degraded:
            snap = await self.remote.snapshot(name, self._breakers.get(name))
            if snap is not None:
                return snap
        brk = self._breakers.get(name)
        if brk is None:
            raise NotFoundError(f"no circuit breaker named {name!r}")
        return brk.local_snapshot()

    async def snapshots(self) -> list[BreakerSnapshot]:
        """Every breaker: this process's and, with Redis, those other processes registered."""
        names = set(self._breakers)
        if self.remote is not None and not self.remote.degraded:
            names |= await self.remote.names()
            snaps = await self.remote.snapshots(sorted(names), self._breakers)
            if snaps is not None:
                return snaps
        return [self._breakers[n].local_snapshot() for n in sorted(self._breakers)]

    # --- manual control -----------------------------------------------------------------
    async def _control(self, name: str, action: str, reason: str) -> BreakerSnapshot:
        brk = self.breaker(name)
        reason = escape_controls(redact_text(reason))  # shown in logs, on the timeline
        why = f"{action.replace('_', ' ')}: {reason}" if reason else action.replace("_", " ")
        remote = self.remote
        if remote is not None and not remote.degraded and await remote.control(brk, action, why):
            return await self.snapshot(name)
        m = brk.machine
        if action == "force_open":
            change = m.force_open(time.time())
        elif action == "force_close":
            change = m.force_close()
        elif action == "reset":
            change = m.reset()
        else:
            change = m.disable()
        brk._local_change((change[0], change[1], why), manual=True)
        return brk.local_snapshot()

    async def force_open(self, name: str, *, reason: str = "") -> BreakerSnapshot:
        """Open ``name`` and keep it open (no half-open) until force_close/reset."""
        return await self._control(name, "force_open", reason)

    async def force_close(self, name: str, *, reason: str = "") -> BreakerSnapshot:
        """Close ``name`` and keep it closed whatever fails, until reset."""
        return await self._control(name, "force_close", reason)

    async def reset(self, name: str, *, reason: str = "") -> BreakerSnapshot:
        """Back to closed with zero counts; clears forced/disabled."""
        return await self._control(name, "reset", reason)

    async def disable(self, name: str, *, reason: str = "") -> BreakerSnapshot:
        """Make ``name`` a pass-through (no accounting) until reset."""
        return await self._control(name, "disable", reason)

    # --- events -------------------------------------------------------------------------
    def subscribe(self, callback: TransitionCallback) -> Callable[[], None]:
        """Call ``callback(BreakerTransition)`` on every transition (this process's, and —
        with Redis — other processes' via the transition channel). Returns unsubscribe."""
        self._subscribers.append(callback)
        if self.remote is not None:
            self.remote.ensure_watching()

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def recent_transitions(self, limit: int = 50) -> list[BreakerTransition]:
        """The last ``limit`` transitions seen by this process, oldest first."""
        items = list(self._history)
        return items[-limit:] if limit > 0 else []

    def emit_change(
        self,
        name: str,
        change: Change,
        *,
        manual: bool = False,
        origin: str | None = None,
        at: float | None = None,
        transition_id: str | None = None,
    ) -> BreakerTransition:
        transition = BreakerTransition(
            name=name,
            from_state=change[0],
            to_state=change[1],
            at=datetime.fromtimestamp(time.time() if at is None else at, UTC),
            reason=change[2],
            manual=manual,
            origin=origin,
            id=transition_id,
        )
        self.emit(transition)
        return transition

    def emit(self, transition: BreakerTransition) -> None:
        """Record and deliver a transition. Subscriber errors are logged, never raised."""
        self._history.append(transition)
        level = logging.WARNING if transition.to_state is not CLOSED else logging.INFO
        log.log(
            level,
            "circuit %s: %s -> %s (%s)%s",
            transition.name,
            transition.from_state.value,
            transition.to_state.value,
            transition.reason,
            " [manual]" if transition.manual else "",
        )
        for callback in tuple(self._subscribers):
            safe_call(_deliver, (callback, transition))

    # --- store --------------------------------------------------------------------------
    def store_status(self) -> StoreStatus:
        """Backend and health of the state store (``degraded`` when Redis is unreachable)."""
        if self.remote is None:
            return StoreStatus(backend="memory", connected=True, degraded=False)
        return self.remote.status()

    async def start_watch(self) -> None:
        """Start relaying other processes' transitions (Redis only; idempotent)."""
        if self.remote is not None:
            self.remote.ensure_watching()

    async def aclose(self) -> None:
        """Stop background tasks and close connections."""
        if self.remote is not None:
            await self.remote.aclose()


def _deliver(item: tuple[TransitionCallback, BreakerTransition]) -> None:
    callback, transition = item
    result = callback(transition)
    if inspect.isawaitable(result):
        task = asyncio.ensure_future(result)
        task.add_done_callback(_log_task_error)


def _log_task_error(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("breaker subscriber failed: %r", task.exception())


# re-exported for the Redis backend
__all__ += ["CALL_KINDS", "CLOSED", "HALF_OPEN", "OPEN"]
