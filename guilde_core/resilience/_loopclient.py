"""A Redis client per event loop: redis-py's asyncio clients cannot cross loops."""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["LoopClient"]


class LoopClient:
    """Lazily makes a ``redis.asyncio`` client for the running loop (redis is only imported
    when one is needed); a new loop gets a new client."""

    def __init__(self, url: str, **options: Any) -> None:
        self.url = url
        self.options = options
        self._entry: tuple[asyncio.AbstractEventLoop, Any] | None = None

    def get(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._entry is None or self._entry[0] is not loop:
            import redis.asyncio as aioredis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            options = {"retry": Retry(NoBackoff(), 0), **self.options}
            self._entry = (loop, aioredis.Redis.from_url(self.url, **options))
        return self._entry[1]

    async def aclose(self) -> None:
        if self._entry is not None:
            loop, client = self._entry
            self._entry = None
            if loop is asyncio.get_running_loop():
                await client.aclose()
