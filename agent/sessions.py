"""The session index of agent-web: ids, titles, status and the last answer of each session.

The conversation itself lives in the LangGraph checkpointer (thread id = session id);
this index holds what a list view needs (pagination and filters) in SQLite — a file under
``DEV3000_DATA_DIR`` by default, ``:memory:`` for tests and one-shot use.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Literal, TypedDict, Unpack

import aiosqlite
from pydantic import BaseModel, Field

from agent.models import RootCause
from agent.state import ApprovalRequest

__all__ = ["SessionFields", "SessionIndex", "SessionRecord", "SessionStatus"]

SessionStatus = Literal["idle", "running", "awaiting_approval", "failed"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS agent_sessions (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    status TEXT NOT NULL,
    provider TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    turns INTEGER NOT NULL DEFAULT 0,
    last_root_cause TEXT,
    last_error TEXT,
    pending TEXT
)
"""


class SessionRecord(BaseModel):
    """One session as listed by agent-web."""

    id: str
    title: str
    status: SessionStatus
    provider: str | None = None
    #: ISO 8601 in UTC like every time of the API (stored as epoch seconds)
    created_at: datetime
    updated_at: datetime
    turns: int = 0
    last_root_cause: RootCause | None = None
    last_error: str | None = None
    pending: list[ApprovalRequest] = Field(default_factory=list)


class SessionFields(TypedDict, total=False):
    """What :meth:`SessionIndex.update` may change."""

    status: SessionStatus
    turns: int
    last_root_cause: RootCause | None
    last_error: str | None
    pending: list[ApprovalRequest]


def _row(row: aiosqlite.Row) -> SessionRecord:
    data = dict(row)
    data["last_root_cause"] = json.loads(data["last_root_cause"] or "null")
    data["pending"] = json.loads(data["pending"] or "[]")
    return SessionRecord.model_validate(data)


class SessionIndex:
    """Async SQLite-backed index; ``await SessionIndex.open(path)``."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    @classmethod
    async def open(cls, path: str | Path) -> SessionIndex:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(str(path))
        conn.row_factory = aiosqlite.Row
        await conn.execute(_SCHEMA)
        await conn.commit()
        return cls(conn)

    async def close(self) -> None:
        await self._conn.close()

    async def create(self, session_id: str, title: str, provider: str | None) -> SessionRecord:
        now = time.time()
        await self._conn.execute(
            "INSERT INTO agent_sessions (id, title, status, provider, created_at, updated_at)"
            " VALUES (?, ?, 'idle', ?, ?, ?)",
            (session_id, title, provider, now, now),
        )
        await self._conn.commit()
        record = await self.get(session_id)
        assert record is not None
        return record

    async def get(self, session_id: str) -> SessionRecord | None:
        async with self._conn.execute(
            "SELECT * FROM agent_sessions WHERE id = ?", (session_id,)
        ) as cur:
            row = await cur.fetchone()
        return _row(row) if row else None

    async def update(self, session_id: str, **fields: Unpack[SessionFields]) -> None:
        if not fields:
            return
        values: dict[str, object] = dict(fields)
        if "last_root_cause" in fields:
            root = fields["last_root_cause"]
            values["last_root_cause"] = json.dumps(root.model_dump() if root else None)
        if "pending" in fields:
            values["pending"] = json.dumps(fields["pending"])
        values["updated_at"] = time.time()
        assignments = ", ".join(f"{k} = ?" for k in values)
        await self._conn.execute(
            f"UPDATE agent_sessions SET {assignments} WHERE id = ?",  # noqa: S608 - fixed column names
            (*values.values(), session_id),
        )
        await self._conn.commit()

    async def list_page(
        self,
        *,
        limit: int = 20,
        offset: int = 0,
        status: str | None = None,
        q: str | None = None,
    ) -> tuple[list[SessionRecord], int]:
        where: list[str] = []
        params: list[str] = []
        if status:
            where.append("status = ?")
            params.append(status)
        if q:
            where.append("title LIKE ?")
            params.append(f"%{q}%")
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        async with self._conn.execute(
            f"SELECT COUNT(*) FROM agent_sessions{clause}",  # noqa: S608 - fixed clause
            params,
        ) as cur:
            total_row = await cur.fetchone()
        total = int(total_row[0]) if total_row else 0
        async with self._conn.execute(
            f"SELECT * FROM agent_sessions{clause} ORDER BY updated_at DESC, id"  # noqa: S608
            " LIMIT ? OFFSET ?",
            (*params, limit, offset),
        ) as cur:
            rows = await cur.fetchall()
        return [_row(r) for r in rows], total

    async def delete(self, session_ids: list[str]) -> list[str]:
        """Delete the given sessions; return the ids that existed."""
        existing: list[str] = []
        for sid in session_ids:
            if await self.get(sid) is not None:
                existing.append(sid)
        if existing:
            marks = ",".join("?" for _ in existing)
            await self._conn.execute(
                f"DELETE FROM agent_sessions WHERE id IN ({marks})",  # noqa: S608
                existing,
            )
            await self._conn.commit()
        return existing
