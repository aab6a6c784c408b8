"""The runtime targets registry: services added through ``/api/v1/targets``.

Persisted across restarts: SQLite at ``<DEV3000_DATA_DIR>/targets.sqlite3`` by default, or
Redis (one hash ``guilde:<DEV3000_DEPLOYMENT>:dev3000:targets``) when ``REDIS_URL`` (else
``CIRCUIT_BREAKER_REDIS_URL``) is set, so the dev3000 instances of one deployment share one
registry. While that Redis is down the registry refuses with a 503 (outage policy ``closed``:
there is no local copy to serve or change safely), the outage logged once. Both stores keep whole
:class:`Target` records as JSON; listing filters and paginates in memory (registries hold
tens to hundreds of targets, not millions).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dev3000.redis_keys import dev3000_prefix
from guilde_core.errors import (
    InvalidInputError,
    NotFoundError,
    PermanentError,
)

__all__ = [
    "ConflictError",
    "RedisTargetsStore",
    "SqliteTargetsStore",
    "Target",
    "TargetCreate",
    "TargetPatch",
    "TargetsStore",
    "open_targets_store",
]

TargetKind = Literal["http", "tcp", "redis", "postgres"]
_NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,62}$"
#: what OpenAPI states of a target URL (the validator below gives the reason for a refusal)
URL_PATTERN = r"^(https?|tcp|rediss?|postgres|postgresql)://[^\s]+$"
URL_RULES = (
    "scheme://host[:port][/…] with scheme http, https, tcp, redis, rediss, postgres or "
    "postgresql; no spaces; at most 2048 characters. Credentials in it (user:password@) are "
    "used for the check and never shown: every response masks them."
)
#: an HTTP path probed on the target
PATH_PATTERN = r"^/[^\s]*$"


class TargetCreate(BaseModel):
    """A service to health-check, as sent by clients."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "orders-api",
                    "kind": "http",
                    "url": "http://127.0.0.1:8000",
                    "path": "/api/v1/health",
                    "critical": True,
                    "tags": ["backend"],
                }
            ]
        },
    )

    name: str = Field(pattern=_NAME_PATTERN, description="Unique id: lower-case, digits, _ . -")
    kind: TargetKind = Field("http", description="http | tcp | redis | postgres")
    url: str = Field(min_length=1, max_length=2048, pattern=URL_PATTERN, description=URL_RULES)
    path: str = Field(
        "/health",
        max_length=1024,
        pattern=PATH_PATTERN,
        description="HTTP path probed (http kind): starts with /, no spaces.",
    )
    expected_status: int = Field(200, ge=100, le=599, description="HTTP status meaning healthy.")
    critical: bool = Field(False, description="A failure makes the aggregate unhealthy.")
    timeout: float | None = Field(
        None, gt=0, le=300, description="Per-check timeout (default HEALTH_CHECK_TIMEOUT)."
    )
    tags: list[str] = Field(default_factory=list, max_length=32)
    depends_on: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list,
        max_length=50,
        description="What it depends on: other target names, or components its own health "
        "report shows (database, redis, openai …) — edges of the stack model.",
    )

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str) -> str:
        value = value.strip()
        if "://" not in value:
            raise ValueError(
                "url needs a scheme (http://, https://, tcp://, redis://, postgresql://)"
            )
        scheme = value.split("://", 1)[0].lower()
        if scheme not in ("http", "https", "tcp", "redis", "rediss", "postgres", "postgresql"):
            raise ValueError(f"unsupported scheme {scheme!r}")
        try:  # what every check parses: a host, and a port that is a port
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises on a port that is not 0-65535
        except ValueError as exc:
            raise ValueError(f"url cannot be parsed: {exc}") from None
        if not parts.hostname:
            raise ValueError("url needs a host")
        return value

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("path must start with /")
        return value


class TargetPatch(BaseModel):
    """Fields to change on an existing target (all optional)."""

    model_config = ConfigDict(extra="forbid")

    kind: TargetKind | None = None
    url: str | None = Field(
        None, min_length=1, max_length=2048, pattern=URL_PATTERN, description=URL_RULES
    )
    path: str | None = Field(
        None,
        max_length=1024,
        pattern=PATH_PATTERN,
        description="HTTP path probed (http kind): starts with /, no spaces.",
    )
    expected_status: int | None = Field(None, ge=100, le=599)
    critical: bool | None = None
    timeout: float | None = Field(None, gt=0, le=300)
    tags: list[str] | None = Field(None, max_length=32)
    depends_on: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        None, max_length=50
    )


class Target(TargetCreate):
    """A stored target."""

    model_config = ConfigDict(extra="ignore")

    created_at: datetime
    updated_at: datetime
    last_check: dict[str, Any] | None = Field(
        None, description="Result of the latest check (status, latency_ms, error, observed_at)."
    )


def _now() -> datetime:
    return datetime.now(UTC)


def apply_patch(target: Target, patch: TargetPatch) -> Target:
    """``target`` with ``patch`` applied and validated as a whole."""
    data = target.model_dump()
    data.update(patch.model_dump(exclude_unset=True, exclude_none=True))
    data["updated_at"] = _now()
    try:
        TargetCreate.model_validate(
            {k: v for k, v in data.items() if k in TargetCreate.model_fields}
        )
    except ValueError as exc:
        raise InvalidInputError(f"invalid target: {exc}") from None
    return Target.model_validate(data)


class TargetsStore(Protocol):
    """Persistence of runtime targets (async)."""

    backend: str
    closed: bool

    async def all(self) -> list[Target]: ...
    async def get(self, name: str) -> Target: ...
    async def create(self, target: TargetCreate) -> Target: ...
    async def create_many(self, targets: Sequence[TargetCreate]) -> list[Target]: ...
    async def update(self, name: str, patch: TargetPatch) -> Target: ...
    async def save(self, target: Target) -> None: ...
    async def delete(self, name: str) -> None: ...
    async def delete_many(self, names: Sequence[str]) -> list[str]: ...
    async def aclose(self) -> None: ...


class ConflictError(PermanentError):
    """The named thing already exists (HTTP 409)."""

    code = "conflict"
    http_status = 409


def _conflict(name: str) -> ConflictError:
    return ConflictError(f"target {name!r} already exists")


class _Base:
    async def create(self, target: TargetCreate) -> Target:
        return (await self.create_many([target]))[0]

    async def create_many(self, targets: Sequence[TargetCreate]) -> list[Target]:
        names = [t.name for t in targets]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise InvalidInputError(f"duplicate names in request: {', '.join(dupes)}")
        now = _now()
        records = [Target(**t.model_dump(), created_at=now, updated_at=now) for t in targets]
        await self._insert_all(records)
        return records

    async def update(self, name: str, patch: TargetPatch) -> Target:
        current = await self.get(name)
        updated = apply_patch(current, patch)
        await self.save(updated)
        return updated

    async def _insert_all(self, records: list[Target]) -> None:
        raise NotImplementedError

    async def get(self, name: str) -> Target:
        raise NotImplementedError

    async def save(self, target: Target) -> None:
        raise NotImplementedError


class SqliteTargetsStore(_Base):
    """Targets in one SQLite file (thread-offloaded; one connection under a lock)."""

    backend = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.closed = False
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS targets (name TEXT PRIMARY KEY, body TEXT NOT NULL)"
        )

    def _run(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            return list(self._conn.execute(sql, params).fetchall())

    async def all(self) -> list[Target]:
        rows = await asyncio.to_thread(self._run, "SELECT body FROM targets ORDER BY name")
        return [Target.model_validate_json(r[0]) for r in rows]

    async def get(self, name: str) -> Target:
        rows = await asyncio.to_thread(self._run, "SELECT body FROM targets WHERE name=?", (name,))
        if not rows:
            raise NotFoundError(f"no target named {name!r}")
        return Target.model_validate_json(rows[0][0])

    def _insert_sync(self, records: list[Target]) -> None:
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                for rec in records:
                    exists = cur.execute(
                        "SELECT 1 FROM targets WHERE name=?", (rec.name,)
                    ).fetchone()
                    if exists:
                        raise _conflict(rec.name)
                    cur.execute(
                        "INSERT INTO targets(name, body) VALUES (?, ?)",
                        (rec.name, rec.model_dump_json()),
                    )
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    async def _insert_all(self, records: list[Target]) -> None:
        await asyncio.to_thread(self._insert_sync, records)

    async def save(self, target: Target) -> None:
        await asyncio.to_thread(
            self._run,
            "INSERT INTO targets(name, body) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET body=excluded.body",
            (target.name, target.model_dump_json()),
        )

    async def delete(self, name: str) -> None:
        deleted = await self.delete_many([name])
        if not deleted:
            raise NotFoundError(f"no target named {name!r}")

    def _delete_sync(self, names: Sequence[str]) -> list[str]:
        with self._lock:
            gone: list[str] = []
            for name in names:
                cur = self._conn.execute("DELETE FROM targets WHERE name=?", (name,))
                if cur.rowcount:
                    gone.append(name)
            return gone

    async def delete_many(self, names: Sequence[str]) -> list[str]:
        return await asyncio.to_thread(self._delete_sync, names)

    async def aclose(self) -> None:
        with self._lock:
            self._conn.close()
            self.closed = True


class RedisTargetsStore(_Base):
    """Targets in one Redis hash, shared by every dev3000 on that Redis."""

    backend = "redis"

    def __init__(self, url: str, *, prefix: str) -> None:
        from guilde_core.shared_redis import SharedRedis

        self.closed = False
        self.key = f"{prefix}targets"
        self.shared = SharedRedis(
            url,
            use="targets registry",
            policy="closed",
            socket_timeout=2.0,
            connect_timeout=2.0,
            decode_responses=True,
        )

    async def _call(self, command: str, *args: Any) -> Any:
        """One command on the registry's hash (``command(key, *args)``); Redis down →
        :class:`~guilde_core.errors.ConnectionFailedError` (503)."""
        return await self.shared.run(lambda r: getattr(r, command)(self.key, *args))

    async def all(self) -> list[Target]:
        data = await self._call("hgetall")
        return sorted((Target.model_validate_json(v) for v in data.values()), key=lambda t: t.name)

    async def get(self, name: str) -> Target:
        raw = await self._call("hget", name)
        if raw is None:
            raise NotFoundError(f"no target named {name!r}")
        return Target.model_validate_json(raw)

    async def _insert_all(self, records: list[Target]) -> None:
        names = [rec.name for rec in records]
        existing = await self._call("hmget", names)
        for rec, raw in zip(records, existing, strict=True):
            if raw is not None:
                raise _conflict(rec.name)
        for rec in records:
            created = await self._call("hsetnx", rec.name, rec.model_dump_json())
            if not created:
                raise _conflict(rec.name)

    async def save(self, target: Target) -> None:
        await self._call("hset", target.name, target.model_dump_json())

    async def delete(self, name: str) -> None:
        if not await self.delete_many([name]):
            raise NotFoundError(f"no target named {name!r}")

    async def delete_many(self, names: Sequence[str]) -> list[str]:
        gone: list[str] = []
        for name in names:
            if await self._call("hdel", name):
                gone.append(name)
        return gone

    async def aclose(self) -> None:
        await self.shared.aclose()
        self.closed = True


def open_targets_store(settings: Any, *, prefix: str | None = None) -> TargetsStore:
    """Redis when ``REDIS_URL``/``CIRCUIT_BREAKER_REDIS_URL`` is set (keys under ``prefix``,
    default this deployment's), else SQLite."""
    url = settings.shared_redis_url
    if url:
        return RedisTargetsStore(url, prefix=prefix or dev3000_prefix(settings))
    return SqliteTargetsStore(Path(settings.dev3000_data_dir) / "targets.sqlite3")
