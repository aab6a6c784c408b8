"""The sandbox's order store: PostgreSQL (psycopg async pool) or SQLite (a small pool of
aiosqlite connections), with the hooks the chaos faults use.

Fault hooks (set by :mod:`tools.sandbox.chaos`): ``delay_s`` (latency on every call),
``unreachable`` (every call first opens a connection to a closed loopback port, so the
driver's own connection-refused error surfaces), :meth:`hold` / :meth:`release_held`
(take pool connections away, so callers time out waiting for one).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite
import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from tools.harness import free_port

__all__ = ["Order", "OrderStore", "PoolTimeoutError", "PostgresStore", "SQLiteStore"]


class PoolTimeoutError(Exception):
    """No pool connection became free in time (the SQLite pool's PoolTimeout)."""


@dataclass
class Order:
    id: int
    item: str
    quantity: int
    price_cents: int
    status: str
    created_at: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "item": self.item,
            "quantity": self.quantity,
            "price_cents": self.price_cents,
            "status": self.status,
            "created_at": self.created_at,
        }


def _order(row: Any) -> Order:
    created = row["created_at"]
    if isinstance(created, datetime):
        created = created.astimezone(UTC).isoformat()
    return Order(
        id=int(row["id"]),
        item=str(row["item"]),
        quantity=int(row["quantity"]),
        price_cents=int(row["price_cents"]),
        status=str(row["status"]),
        created_at=str(created),
    )


class OrderStore:
    """Shared behaviour: fault hooks, timing, pool statistics."""

    kind = "unknown"

    def __init__(self, pool_size: int) -> None:
        self.pool_size = pool_size
        self.pool_timeout_s = 1.0
        self.delay_s = 0.0
        self.unreachable = False
        self._dead_port = free_port()  # nothing listens here: connections are refused
        self._held: list[Any] = []
        self._hold_lock = asyncio.Lock()

    async def _before(self) -> None:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.unreachable:
            await self._connect_refused()

    async def _connect_refused(self) -> None:
        raise NotImplementedError

    async def open(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    def pool_stats(self) -> dict[str, int]:
        raise NotImplementedError

    async def _acquire(self) -> Any:
        raise NotImplementedError

    async def _release(self, conn: Any) -> None:
        raise NotImplementedError

    async def hold(self, count: int | None) -> int:
        """Take ``count`` (default: all) pool connections away; return how many are held."""
        async with self._hold_lock:
            wanted = min(count or self.pool_size, self.pool_size)
            while len(self._held) < wanted:
                try:
                    self._held.append(await self._acquire())
                except Exception:
                    break
            return len(self._held)

    async def release_held(self) -> None:
        async with self._hold_lock:
            held, self._held = self._held, []
            for conn in held:
                with contextlib.suppress(Exception):
                    await self._release(conn)

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        conn = await self._acquire()
        try:
            yield conn
        finally:
            await self._release(conn)

    async def run[T](self, op: Callable[[Any], Awaitable[T]]) -> T:
        """Run ``op(conn)`` on a pool connection, after the fault hooks."""
        await self._before()
        async with self.connection() as conn:
            return await op(conn)

    async def ping(self) -> float:
        """Round trip in ms (fault hooks included)."""
        start = time.perf_counter()
        await self.run(self._select_one)
        return (time.perf_counter() - start) * 1000

    async def _select_one(self, conn: Any) -> None:
        raise NotImplementedError

    async def create_order(self, item: str, quantity: int, price_cents: int) -> Order:
        raise NotImplementedError

    async def list_orders(self, limit: int) -> list[Order]:
        raise NotImplementedError

    async def get_order(self, order_id: int) -> Order | None:
        raise NotImplementedError


class PostgresStore(OrderStore):
    kind = "postgresql"

    def __init__(self, dsn: str, pool_size: int, schema: str | None = None) -> None:
        super().__init__(pool_size)
        self.dsn = dsn
        self.schema = schema
        kwargs: dict[str, Any] = {"autocommit": True, "row_factory": dict_row}
        if schema:
            kwargs["options"] = f"-c search_path={schema}"
        self.pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            dsn, min_size=pool_size, max_size=pool_size, kwargs=kwargs, open=False, timeout=5
        )

    async def open(self) -> None:
        await self.pool.open(wait=True, timeout=10)
        async with self.pool.connection() as conn:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS sandbox_orders ("
                " id BIGSERIAL PRIMARY KEY, item TEXT NOT NULL, quantity INTEGER NOT NULL,"
                " price_cents INTEGER NOT NULL, status TEXT NOT NULL,"
                " created_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )

    async def close(self) -> None:
        await self.release_held()
        await self.pool.close(timeout=2)

    async def _connect_refused(self) -> None:
        conn = await psycopg.AsyncConnection.connect(
            host="127.0.0.1", port=self._dead_port, dbname="sandbox", connect_timeout=2
        )
        await conn.close()  # pragma: no cover - nothing listens there

    def pool_stats(self) -> dict[str, int]:
        stats = self.pool.get_stats()
        size = int(stats.get("pool_size", self.pool_size))
        available = int(stats.get("pool_available", 0))
        return {"size": self.pool_size, "available": available, "in_use": size - available}

    async def _acquire(self) -> Any:
        try:
            return await self.pool.getconn(timeout=self.pool_timeout_s)
        except Exception as exc:
            if type(exc).__name__ == "PoolTimeout":
                raise PoolTimeoutError(
                    f"PoolTimeout: no connection free within {self.pool_timeout_s}s "
                    f"(pool size {self.pool_size})"
                ) from exc
            raise

    async def _release(self, conn: Any) -> None:
        await self.pool.putconn(conn)

    async def _select_one(self, conn: Any) -> None:
        await conn.execute("SELECT 1")

    async def create_order(self, item: str, quantity: int, price_cents: int) -> Order:
        async def op(conn: Any) -> Order:
            cur = await conn.execute(
                "INSERT INTO sandbox_orders (item, quantity, price_cents, status)"
                " VALUES (%s, %s, %s, 'created') RETURNING *",
                (item, quantity, price_cents),
            )
            return _order(await cur.fetchone())

        return await self.run(op)

    async def list_orders(self, limit: int) -> list[Order]:
        async def op(conn: Any) -> list[Order]:
            cur = await conn.execute(
                "SELECT * FROM sandbox_orders ORDER BY id DESC LIMIT %s", (limit,)
            )
            return [_order(row) for row in await cur.fetchall()]

        return await self.run(op)

    async def get_order(self, order_id: int) -> Order | None:
        async def op(conn: Any) -> Order | None:
            cur = await conn.execute("SELECT * FROM sandbox_orders WHERE id = %s", (order_id,))
            row = await cur.fetchone()
            return _order(row) if row else None

        return await self.run(op)


class SQLiteStore(OrderStore):
    kind = "sqlite"

    def __init__(self, path: Path, pool_size: int) -> None:
        super().__init__(pool_size)
        self.path = path
        self._free: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._all: list[aiosqlite.Connection] = []

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for index in range(self.pool_size):
            conn = await aiosqlite.connect(self.path, timeout=5)
            conn.row_factory = sqlite3.Row
            if index == 0:
                async with conn.execute("PRAGMA journal_mode=WAL") as cur:
                    await cur.fetchall()
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS sandbox_orders ("
                    " id INTEGER PRIMARY KEY AUTOINCREMENT, item TEXT NOT NULL,"
                    " quantity INTEGER NOT NULL, price_cents INTEGER NOT NULL,"
                    " status TEXT NOT NULL,"
                    " created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))"
                )
                await conn.commit()
            self._all.append(conn)
            self._free.put_nowait(conn)

    async def close(self) -> None:
        await self.release_held()
        for conn in self._all:
            with contextlib.suppress(Exception):
                await conn.close()
        self._all.clear()

    async def _connect_refused(self) -> None:
        missing = self.path.parent / f"unreachable-{self._dead_port}" / "sandbox.db"
        conn = await aiosqlite.connect(f"file:{missing}?mode=rw", uri=True, timeout=1)
        await conn.close()  # pragma: no cover - the file cannot be opened

    def pool_stats(self) -> dict[str, int]:
        available = self._free.qsize()
        return {
            "size": self.pool_size,
            "available": available,
            "in_use": self.pool_size - available,
        }

    async def _acquire(self) -> aiosqlite.Connection:
        try:
            return await asyncio.wait_for(self._free.get(), self.pool_timeout_s)
        except TimeoutError:
            raise PoolTimeoutError(
                f"PoolTimeout: no connection free within {self.pool_timeout_s}s "
                f"(pool size {self.pool_size})"
            ) from None

    async def _release(self, conn: Any) -> None:
        self._free.put_nowait(conn)

    async def _select_one(self, conn: Any) -> None:
        async with conn.execute("SELECT 1") as cur:
            await cur.fetchall()

    async def create_order(self, item: str, quantity: int, price_cents: int) -> Order:
        async def op(conn: Any) -> Order:
            async with conn.execute(
                "INSERT INTO sandbox_orders (item, quantity, price_cents, status)"
                " VALUES (?, ?, ?, 'created') RETURNING *",
                (item, quantity, price_cents),
            ) as cur:
                row = await cur.fetchone()
            await conn.commit()
            return _order(row)

        return await self.run(op)

    async def list_orders(self, limit: int) -> list[Order]:
        async def op(conn: Any) -> list[Order]:
            async with conn.execute(
                "SELECT * FROM sandbox_orders ORDER BY id DESC LIMIT ?", (limit,)
            ) as cur:
                return [_order(row) for row in await cur.fetchall()]

        return await self.run(op)

    async def get_order(self, order_id: int) -> Order | None:
        async def op(conn: Any) -> Order | None:
            async with conn.execute(
                "SELECT * FROM sandbox_orders WHERE id = ?", (order_id,)
            ) as cur:
                row = await cur.fetchone()
            return _order(row) if row else None

        return await self.run(op)
