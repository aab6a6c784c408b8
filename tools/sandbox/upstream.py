"""The sandbox's outbound "LLM" call (OpenAI chat completions over HTTP), made through the
project's resilience layer (:func:`guilde_core.resilience.resilient_call`: breaker, retries,
timeouts — the shared breakers the circuits server reports).

:class:`StormTransport` is where the ``upstream-error-storm`` fault acts: it wraps the real
HTTP transport and, at the configured rate, answers 429 (with ``Retry-After``), 500 or 503
itself, or holds the request until the client's read timeout and raises
``httpx.ReadTimeout`` — so the resilience layer sees genuine responses and timeouts.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from guilde_core.config import ServiceType
from guilde_core.errors import ConnectionFailedError, OperationTimeoutError, error_from_status

__all__ = ["Storm", "StormTransport", "Upstream"]


@dataclass
class Storm:
    """The error storm's settings (``rate`` 0 = off)."""

    rate: float = 0.0
    kinds: list[str] = field(default_factory=lambda: ["429", "503", "timeout"])
    retry_after_s: int = 1
    injected: int = 0


class StormTransport(httpx.AsyncBaseTransport):
    """Fails requests at ``storm.rate``; passes the others to the real transport."""

    def __init__(self, storm: Storm, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.storm = storm
        self.inner = inner or httpx.AsyncHTTPTransport()
        self._random = random.Random()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        storm = self.storm
        if storm.rate > 0 and self._random.random() < storm.rate:
            storm.injected += 1
            kind = self._random.choice(storm.kinds)
            if kind == "timeout":
                timeouts: dict[str, Any] = request.extensions.get("timeout", {})
                wait = timeouts.get("read") or 5.0
                await asyncio.sleep(min(float(wait), 30.0))
                raise httpx.ReadTimeout("injected upstream timeout", request=request)
            status = int(kind)
            headers = {"retry-after": str(storm.retry_after_s)} if status == 429 else {}
            body = {"error": {"message": f"injected upstream {status}", "type": "chaos"}}
            return httpx.Response(status, json=body, headers=headers, request=request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class Upstream:
    """One OpenAI-compatible provider reached at ``base_url`` (``…/v1``)."""

    def __init__(
        self,
        base_url: str | None,
        provider: str,
        api_key: str,
        model: str,
        registry: Any,
    ) -> None:
        self.base_url = base_url.rstrip("/") if base_url else None
        self.provider = provider
        self.model = model
        self.registry = registry
        self.storm = Storm()
        self.timeout_s = 5.0
        self.stats: dict[str, int] = {}
        self.last_success: float | None = None
        self.client = httpx.AsyncClient(
            transport=StormTransport(self.storm),
            headers={"authorization": f"Bearer {api_key}"},
        )

    async def _attempt(self, budget: float | None, prompt: str) -> str:
        assert self.base_url is not None
        limit = min(budget, self.timeout_s) if budget else self.timeout_s
        try:
            response = await self.client.post(
                f"{self.base_url}/chat/completions",
                json={"model": self.model, "messages": [{"role": "user", "content": prompt}]},
                timeout=limit,
            )
        except httpx.TimeoutException as exc:
            raise OperationTimeoutError(
                f"{self.provider} did not answer within {limit}s",
                timeout=limit,
                service=self.provider,
                cause=exc,
            ) from exc
        except httpx.TransportError as exc:
            raise ConnectionFailedError(
                f"cannot reach {self.provider}: {exc}", service=self.provider, cause=exc
            ) from exc
        if response.status_code >= 400:
            raise error_from_status(
                response.status_code,
                f"{self.provider} answered {response.status_code}",
                headers=response.headers,
                service=self.provider,
            )
        data = response.json()
        return str(data["choices"][0]["message"]["content"] or "")

    async def complete(self, prompt: str) -> str:
        """One completion through breaker + retries + timeouts; typed errors on failure."""
        from guilde_core.resilience import resilient_call

        async def attempt(budget: float | None) -> str:
            return await self._attempt(budget, prompt)

        try:
            text = await resilient_call(
                self.provider, attempt, service_type=ServiceType.LLM, registry=self.registry
            )
        except Exception as exc:
            key = type(exc).__name__
            self.stats[key] = self.stats.get(key, 0) + 1
            raise
        self.stats["ok"] = self.stats.get("ok", 0) + 1
        self.last_success = time.time()
        return text

    async def close(self) -> None:
        await self.client.aclose()
