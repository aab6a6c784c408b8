"""Where sessions live: a LangGraph checkpointer chosen by configuration.

``AGENT_CHECKPOINTER``: ``memory`` (one-shot questions), ``sqlite`` (the default for
sessions; a file under ``DEV3000_DATA_DIR`` unless ``AGENT_CHECKPOINT_URL`` names one),
``postgres`` (the production choice; ``AGENT_CHECKPOINT_URL`` is a DSN — add
``options=-c search_path=<schema>`` to keep the tables in a schema of their own) or
``redis`` (needs Redis 8 / Redis Stack with RedisJSON and RediSearch and the optional
``langgraph-checkpoint-redis`` package).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from guilde_core.config import Settings
from guilde_core.errors import ConfigurationError

if TYPE_CHECKING:
    from langgraph.checkpoint.base import BaseCheckpointSaver

__all__ = ["CHECKPOINTERS", "default_sqlite_path", "open_checkpointer"]

CHECKPOINTERS = ("memory", "sqlite", "postgres", "redis")


def default_sqlite_path(settings: Settings) -> Path:
    return settings.data_dir / "agent-sessions.sqlite"


def _url(settings: Settings) -> str | None:
    secret = settings.agent_checkpoint_url
    value = secret.get_secret_value() if secret is not None else ""
    return value or None


@contextlib.asynccontextmanager
async def open_checkpointer(
    settings: Settings, kind: str | None = None, url: str | None = None
) -> AsyncIterator[BaseCheckpointSaver[str]]:
    """Yield a ready checkpointer (tables created) and close it afterwards."""
    kind = (kind or settings.agent_checkpointer).lower()
    url = url or _url(settings)
    if kind == "memory":
        from langgraph.checkpoint.memory import InMemorySaver

        yield InMemorySaver()
    elif kind == "sqlite":
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        path = Path(url) if url else default_sqlite_path(settings)
        path.parent.mkdir(parents=True, exist_ok=True)
        async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
            await saver.setup()
            yield saver
    elif kind == "postgres":
        if not url:
            raise ConfigurationError(
                "AGENT_CHECKPOINTER=postgres needs AGENT_CHECKPOINT_URL (a PostgreSQL DSN)"
            )
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        async with AsyncPostgresSaver.from_conn_string(url) as saver:
            await saver.setup()
            yield saver
    elif kind == "redis":
        try:
            from langgraph.checkpoint.redis.aio import (
                AsyncRedisSaver,
            )
        except ImportError as exc:
            raise ConfigurationError(
                "AGENT_CHECKPOINTER=redis needs the optional package langgraph-checkpoint-redis "
                "and a Redis 8 / Redis Stack server (RedisJSON + RediSearch)"
            ) from exc
        if not url:
            raise ConfigurationError("AGENT_CHECKPOINTER=redis needs AGENT_CHECKPOINT_URL")
        async with contextlib.AsyncExitStack() as stack:
            try:
                redis_saver = await stack.enter_async_context(AsyncRedisSaver.from_conn_string(url))
                await redis_saver.asetup()
            except Exception as exc:
                text = str(exc)
                if "unknown command" in text.lower() or "FT." in text:
                    raise ConfigurationError(
                        "AGENT_CHECKPOINTER=redis: the Redis server lacks the RediSearch and "
                        "RedisJSON modules (use Redis 8 or Redis Stack, or another checkpointer)"
                    ) from exc
                raise
            yield redis_saver
    else:
        raise ConfigurationError(
            f"AGENT_CHECKPOINTER: unknown checkpointer {kind!r} "
            f"(expected one of {', '.join(CHECKPOINTERS)})"
        )
