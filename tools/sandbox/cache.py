"""The sandbox's cache: Redis when configured, process memory otherwise.

Fault hooks: ``delay_s`` (latency on every call) and ``unreachable`` (calls go to a Redis
client pointed at a closed loopback port, so redis-py's own connection-refused error
surfaces — also when the cache is in memory).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis.asyncio as aioredis

from guilde_core.shared_redis import SharedRedis
from tools.harness import free_port

__all__ = ["Cache"]


class Cache:
    """``get``/``set``/``delete_prefix``/``ping`` over Redis or a dict with expiry."""

    def __init__(self, redis_url: str | None, prefix: str) -> None:
        self.redis_url = redis_url
        self.prefix = prefix
        self.kind = "redis" if redis_url else "memory"
        self.delay_s = 0.0
        self.unreachable = False
        self._memory: dict[str, tuple[float, str]] = {}
        self._shared: SharedRedis | None = (
            SharedRedis(
                redis_url,
                use="sandbox cache",
                connect_timeout=2,
                socket_timeout=2,
                decode_responses=True,
            )
            if redis_url
            else None
        )
        self._dead: SharedRedis | None = None

    def _dead_client(self) -> aioredis.Redis:
        if self._dead is None:
            self._dead = SharedRedis(
                f"redis://127.0.0.1:{free_port()}/0",
                use="sandbox cache (unreachable fault)",
                connect_timeout=1,
                decode_responses=True,
            )
        return self._dead.client()

    async def _backend(self) -> aioredis.Redis | None:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.unreachable:
            return self._dead_client()
        return self._shared.client() if self._shared is not None else None

    async def get(self, key: str) -> str | None:
        client = await self._backend()
        if client is not None:
            value = await client.get(self.prefix + key)
            return None if value is None else str(value)
        entry = self._memory.get(key)
        if entry is None or entry[0] < time.monotonic():
            self._memory.pop(key, None)
            return None
        return entry[1]

    async def set(self, key: str, value: str, ttl: float) -> None:
        client = await self._backend()
        if client is not None:
            await client.set(self.prefix + key, value, px=max(1, int(ttl * 1000)))
            return
        self._memory[key] = (time.monotonic() + ttl, value)

    async def delete_prefix(self, prefix: str) -> None:
        client = await self._backend()
        if client is not None:
            keys = [k async for k in client.scan_iter(match=f"{self.prefix}{prefix}*", count=500)]
            if keys:
                await client.delete(*keys)
            return
        for key in [k for k in self._memory if k.startswith(prefix)]:
            self._memory.pop(key, None)

    async def ping(self) -> dict[str, Any]:
        """Latency (ms) and, for Redis, memory and client counts."""
        start = time.perf_counter()
        client = await self._backend()
        details: dict[str, Any] = {"type": self.kind}
        if client is not None:
            await client.ping()
            details["latency_ms"] = round((time.perf_counter() - start) * 1000, 2)
            if not self.unreachable:
                info = await client.info()
                details["memory_used_mb"] = round(int(info.get("used_memory", 0)) / 2**20, 2)
                details["connected_clients"] = int(info.get("connected_clients", 0))
        else:
            details["latency_ms"] = round((time.perf_counter() - start) * 1000, 2)
            details["keys"] = len(self._memory)
        return details

    async def close(self) -> None:
        for shared in (self._shared, self._dead):
            if shared is not None:
                await shared.aclose()
