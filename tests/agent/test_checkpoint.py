"""Checkpointer selection: clear errors for every misconfiguration."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest
import redis

from agent.checkpoint import open_checkpointer
from guilde_core.config import get_settings
from guilde_core.errors import ConfigurationError


def _open(kind: str, url: str | None = None) -> None:
    async def go() -> None:
        async with open_checkpointer(get_settings(), kind, url):
            pass

    asyncio.run(go())


def test_unknown_checkpointer() -> None:
    with pytest.raises(ConfigurationError, match="unknown checkpointer"):
        _open("etcd")


def test_postgres_needs_a_dsn() -> None:
    with pytest.raises(ConfigurationError, match="AGENT_CHECKPOINT_URL"):
        _open("postgres")


def test_redis_checkpointer_is_optional_and_explains_what_it_needs(redis_url: str) -> None:
    """Redis 7 (these machines) lacks RediSearch/RedisJSON: a clear error, not a traceback."""
    if importlib.util.find_spec("langgraph.checkpoint.redis") is None:
        with pytest.raises(ConfigurationError, match="langgraph-checkpoint-redis"):
            _open("redis", redis_url)
        return
    client = redis.Redis.from_url(redis_url)
    try:
        modules = {m[b"name"].decode().lower() for m in client.module_list()}
    finally:
        client.close()
    if {"search", "ft", "searchlight"} & modules:
        _open("redis", redis_url)  # Redis 8 / Stack: it just works
        return
    with pytest.raises(ConfigurationError, match="RediSearch"):
        _open("redis", redis_url)
