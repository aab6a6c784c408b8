"""Dead letters: operations that failed for good, kept so they can be inspected and replayed.

An entry is written when a ``resilient_call`` given a ``payload`` fails permanently —
retries exhausted, a non-retryable error, the deadline, or a retry refused by the budget
(tenacity's own error callback would see only the first of these, which is why this is done
by ``resilient_call`` itself). The payload is redacted before it is stored, so a replay
runs with the redacted payload: handlers re-read secrets from configuration.

Stores: a Redis stream (``{prefix}deadletters``) when a Redis URL is configured
(``CIRCUIT_BREAKER_REDIS_URL``, else ``REDIS_URL``), otherwise a JSON-lines file
``<DEV3000_DATA_DIR>/deadletters.jsonl``.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from guilde_core.config import Settings, get_settings
from guilde_core.errors import GuildeError, NotFoundError, classify
from guilde_core.redaction import redact, redact_text

__all__ = [
    "DeadLetter",
    "DeadLetterStore",
    "FileDeadLetterStore",
    "RedisDeadLetterStore",
    "get_dead_letter_store",
    "list_dead_letters",
    "make_dead_letter",
    "register_replay_handler",
    "replay_dead_letter",
    "replayable",
    "reset_dead_letter_store",
]

Reason = Literal["non_retryable", "retries_exhausted", "budget_exhausted", "deadline"]
ReplayHandler = Callable[[Any], Awaitable[Any]]


class DeadLetter(BaseModel):
    """One permanently failed operation."""

    id: str = ""
    service: str
    service_type: str
    operation: str | None = Field(
        None, description="Replay handler: a registered name or 'module:function'."
    )
    payload: Any = None
    reason: Reason
    error_type: str
    error_code: str
    error: str
    attempts: int
    correlation_id: str | None = None
    at: datetime


def make_dead_letter(
    *,
    service: str,
    service_type: str,
    operation: str | None,
    payload: Any,
    reason: Reason,
    error: BaseException,
    attempts: int,
    correlation_id: str | None,
) -> DeadLetter:
    """A redacted dead letter for ``error``."""
    err = classify(error, service=service)
    return DeadLetter(
        service=service,
        service_type=service_type,
        operation=operation,
        payload=redact(payload),
        reason=reason,
        error_type=type(error).__name__,
        error_code=err.code,
        error=redact_text(str(error))[:1000],
        attempts=attempts,
        correlation_id=correlation_id,
        at=datetime.now(UTC),
    )


class DeadLetterStore(Protocol):
    async def add(self, letter: DeadLetter) -> str: ...
    async def list(self, limit: int = 100, service: str | None = None) -> list[DeadLetter]: ...
    async def get(self, letter_id: str) -> DeadLetter | None: ...
    async def remove(self, letter_id: str) -> bool: ...


class FileDeadLetterStore:
    """JSON lines in one file; fine for the volumes of a single dev3000."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = asyncio.Lock()

    def _read(self) -> list[DeadLetter]:
        if not self.path.is_file():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                try:
                    out.append(DeadLetter.model_validate_json(line))
                except ValueError:
                    continue
        return out

    async def add(self, letter: DeadLetter) -> str:
        if not letter.id:
            letter = letter.model_copy(update={"id": f"{time.time_ns():x}-{uuid.uuid4().hex[:6]}"})
        line = letter.model_dump_json() + "\n"
        async with self._lock:
            await asyncio.to_thread(self._append, line)
        return letter.id

    def _append(self, line: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(line)

    async def list(self, limit: int = 100, service: str | None = None) -> list[DeadLetter]:
        letters = await asyncio.to_thread(self._read)
        if service is not None:
            letters = [x for x in letters if x.service == service]
        return list(reversed(letters))[:limit]

    async def get(self, letter_id: str) -> DeadLetter | None:
        for letter in await asyncio.to_thread(self._read):
            if letter.id == letter_id:
                return letter
        return None

    async def remove(self, letter_id: str) -> bool:
        async with self._lock:
            return await asyncio.to_thread(self._remove, letter_id)

    def _remove(self, letter_id: str) -> bool:
        letters = self._read()
        keep = [x for x in letters if x.id != letter_id]
        if len(keep) == len(letters):
            return False
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("".join(x.model_dump_json() + "\n" for x in keep), encoding="utf-8")
        os.replace(tmp, self.path)
        return True


class RedisDeadLetterStore:
    """A capped Redis stream; entry ids are the stream ids. Redis down: the calls fail with
    :class:`~guilde_core.errors.ConnectionFailedError` (the outage logged once)."""

    def __init__(self, url: str, *, prefix: str | None = None, maxlen: int = 10_000) -> None:
        from guilde_core.shared_redis import SharedRedis  # redis only when configured

        if prefix is None:  # this deployment's namespace
            prefix = get_settings().redis_namespace
        self.url = url
        self.stream = f"{prefix}deadletters"
        self.maxlen = maxlen
        self._client = SharedRedis(
            url, use="dead-letter store", policy="closed", logger=logging.getLogger(__name__)
        )

    async def add(self, letter: DeadLetter) -> str:
        data = letter.model_dump_json(exclude={"id"})
        raw = await self._client.run(
            lambda r: r.xadd(self.stream, {"data": data}, maxlen=self.maxlen, approximate=True)
        )
        return raw.decode() if isinstance(raw, bytes) else str(raw)

    @staticmethod
    def _decode(entry_id: Any, fields: Any) -> DeadLetter:
        eid = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
        letter = DeadLetter.model_validate_json(fields[b"data"])
        return letter.model_copy(update={"id": eid})

    async def list(self, limit: int = 100, service: str | None = None) -> list[DeadLetter]:
        count = limit if service is None else max(limit * 10, 1000)
        rows: Any = await self._client.run(lambda r: r.xrevrange(self.stream, count=count))
        letters = [self._decode(i, f) for i, f in rows]
        if service is not None:
            letters = [x for x in letters if x.service == service]
        return letters[:limit]

    async def get(self, letter_id: str) -> DeadLetter | None:
        try:
            rows: Any = await self._client.client().xrange(
                self.stream, min=letter_id, max=letter_id
            )
        except Exception as exc:  # malformed id, or Redis down
            from guilde_core.shared_redis import REDIS_DOWN

            if isinstance(exc, REDIS_DOWN):
                raise self._client.outage.refusal(exc) from None
            return None
        return self._decode(*rows[0]) if rows else None

    async def remove(self, letter_id: str) -> bool:
        try:
            return bool(await self._client.client().xdel(self.stream, letter_id))
        except Exception:
            return False

    async def aclose(self) -> None:
        await self._client.aclose()


_store: DeadLetterStore | None = None
_handlers: dict[str, ReplayHandler] = {}


def get_dead_letter_store(settings: Settings | None = None) -> DeadLetterStore:
    """The process-wide store (Redis stream when configured, else the JSON-lines file)."""
    global _store
    if _store is None:
        settings = settings or get_settings()
        url = settings.circuit_breaker_redis_url or settings.redis_url
        if url:
            _store = RedisDeadLetterStore(url, prefix=settings.redis_namespace)
        else:
            _store = FileDeadLetterStore(settings.data_dir / "deadletters.jsonl")
    return _store


def reset_dead_letter_store(store: DeadLetterStore | None = None) -> None:
    """Forget the process-wide store, or install ``store`` as it (tests)."""
    global _store
    _store = store


_REPLAYABLE = "__guilde_replayable__"


def replayable[F: Callable[..., Any]](fn: F) -> F:
    """Mark ``fn`` as a replay handler a dead letter may name as ``"module:function"``.

    A letter's ``operation`` is data (it sits in Redis or a file); without this mark a letter
    naming ``os:system`` or any other importable callable would be run with its payload."""
    setattr(fn, _REPLAYABLE, True)
    return fn


def register_replay_handler(operation: str, handler: ReplayHandler) -> None:
    """Make ``replay_dead_letter`` run ``handler(payload)`` for letters of ``operation``."""
    _handlers[operation] = handler


def _resolve(operation: str | None) -> ReplayHandler:
    if operation is None:
        raise GuildeError("this dead letter names no operation: give a handler to replay it")
    if operation in _handlers:
        return _handlers[operation]
    module_name, sep, attr = operation.partition(":")
    if not sep:
        raise GuildeError(f"no replay handler registered for {operation!r}")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise GuildeError(f"cannot load replay handler {operation!r}: {exc}") from None
    if not callable(target) or getattr(target, _REPLAYABLE, False) is not True:
        raise GuildeError(
            f"replay handler {operation!r} is not marked @replayable: a dead letter may only name "
            "a function its code marked as a replay handler"
        )
    return target  # type: ignore[no-any-return]


async def list_dead_letters(
    limit: int = 100, service: str | None = None, *, store: DeadLetterStore | None = None
) -> list[DeadLetter]:
    """Newest first."""
    return await (store or get_dead_letter_store()).list(limit, service)


async def replay_dead_letter(
    letter_id: str,
    handler: ReplayHandler | None = None,
    *,
    store: DeadLetterStore | None = None,
) -> Any:
    """Run the operation again with the stored (redacted) payload; on success the letter
    is removed and the result returned, on failure it stays and the error propagates."""
    store = store or get_dead_letter_store()
    letter = await store.get(letter_id)
    if letter is None:
        raise NotFoundError(f"no dead letter {letter_id!r}")
    fn = handler or _resolve(letter.operation)
    result = fn(letter.payload)
    if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
        result = await result
    await store.remove(letter_id)
    return result
