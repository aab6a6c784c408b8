"""The sandbox's outbound "LLM" call (OpenAI chat completions, or Anthropic messages when the
provider is ``anthropic``, over HTTP), made through the project's resilience layer (:func:`guilde_core.resilience.resilient_call`: breaker, retries,
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


def _error_message(response: httpx.Response) -> str:
    """``: <the provider's error message>`` from an OpenAI or Anthropic error body, if any."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return ""
    message = error.get("message") if isinstance(error, dict) else None
    return f": {str(message)[:200]}" if message else ""


class Upstream:
    """One provider reached at ``base_url`` (``…/v1``): OpenAI-compatible chat completions, or
    the Anthropic messages API when ``provider`` is ``anthropic``. ``api_key`` is read on every
    call (the ``upstream-bad-credential`` fault replaces it with a revoked one)."""

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
        self.api_key = api_key
        self.registry = registry
        self.storm = Storm()
        self.timeout_s = 5.0
        self.stats: dict[str, int] = {}
        self.last_success: float | None = None
        self.client = httpx.AsyncClient(transport=StormTransport(self.storm))

    def _request(self, prompt: str) -> tuple[str, dict[str, str], dict[str, Any]]:
        """URL, headers and body of one completion in the provider's own API."""
        assert self.base_url is not None
        messages = [{"role": "user", "content": prompt}]
        if self.provider == "anthropic":
            headers = {"x-api-key": self.api_key, "anthropic-version": "2023-06-01"}
            body = {"model": self.model, "max_tokens": 256, "messages": messages}
            return f"{self.base_url}/messages", headers, body
        headers = {"authorization": f"Bearer {self.api_key}"}
        return (
            f"{self.base_url}/chat/completions",
            headers,
            {"model": self.model, "messages": messages},
        )

    def _text(self, data: dict[str, Any]) -> str:
        if self.provider == "anthropic":
            return "".join(
                str(block.get("text") or "")
                for block in data.get("content") or []
                if isinstance(block, dict)
            )
        return str(data["choices"][0]["message"]["content"] or "")

    async def _attempt(self, budget: float | None, prompt: str) -> str:
        assert self.base_url is not None
        limit = min(budget, self.timeout_s) if budget else self.timeout_s
        url, headers, body = self._request(prompt)
        try:
            response = await self.client.post(url, json=body, headers=headers, timeout=limit)
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
                f"{self.provider} answered {response.status_code}{_error_message(response)}",
                headers=response.headers,
                service=self.provider,
            )
        return self._text(response.json())

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
