"""A bounded load generator for the sandbox, loopback only.

``run_load(url, rps=10, duration=10)`` sends an orders-shaped mix (list, get, create,
checkout) at a steady rate for ``duration`` seconds and returns a :class:`LoadSummary`
(count, status codes, transport errors, p50/p99 latency). Caps: ``rps`` ≤ 200,
``duration`` ≤ 300 s, at most 32 requests in flight; a non-loopback URL is refused.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

import httpx

from guilde_core.errors import InvalidInputError
from tools.chaos.client import ensure_loopback

__all__ = ["MAX_DURATION_S", "MAX_RPS", "LoadSummary", "run_load"]

MAX_RPS = 200
MAX_DURATION_S = 300.0
MAX_IN_FLIGHT = 32


@dataclass
class LoadSummary:
    count: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    transport_errors: int = 0
    skipped: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    duration_s: float = 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

    def as_dict(self) -> dict[str, object]:
        return {
            "count": self.count,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "transport_errors": self.transport_errors,
            "skipped": self.skipped,
            "p50_ms": self.percentile(0.5),
            "p99_ms": self.percentile(0.99),
            "duration_s": round(self.duration_s, 2),
            "achieved_rps": round(self.count / self.duration_s, 1) if self.duration_s else 0.0,
        }

    def render(self) -> str:
        d = self.as_dict()
        codes = ", ".join(f"{k}: {v}" for k, v in self.statuses.items()) or "none"
        return (
            f"requests {d['count']} in {d['duration_s']} s ({d['achieved_rps']}/s); "
            f"status codes {codes}; transport errors {d['transport_errors']}; "
            f"p50 {d['p50_ms']} ms, p99 {d['p99_ms']} ms"
        )


async def _one(client: httpx.AsyncClient, rng: random.Random, known: list[int]) -> int:
    roll = rng.random()
    if roll < 0.15 or not known:
        body = {"item": rng.choice(["widget", "gadget", "gizmo"]), "quantity": rng.randint(1, 12)}
        response = await client.post("/api/v1/orders", json=body)
        if response.status_code == 201:
            known.append(int(response.json()["id"]))
            del known[:-200]
        return response.status_code
    if roll < 0.55:
        response = await client.get("/api/v1/orders", params={"limit": 20})
    elif roll < 0.95:
        response = await client.get(f"/api/v1/orders/{rng.choice(known)}")
    else:
        response = await client.post("/api/v1/checkout", json={"order_id": rng.choice(known)})
    return response.status_code


async def run_load(
    url: str,
    *,
    rps: float = 10,
    duration: float = 10,
    request_timeout: float = 10.0,
    seed: int | None = None,
) -> LoadSummary:
    """Send the mix at ``rps`` for ``duration`` seconds (bounded; loopback only)."""
    ensure_loopback(url)
    if not 0 < rps <= MAX_RPS:
        raise InvalidInputError(f"rps must be in (0, {MAX_RPS}], got {rps}")
    if not 0 < duration <= MAX_DURATION_S:
        raise InvalidInputError(f"duration must be in (0, {MAX_DURATION_S:g}] s, got {duration}")
    summary = LoadSummary()
    rng = random.Random(seed)
    known: list[int] = []
    limit = asyncio.Semaphore(MAX_IN_FLIGHT)
    total = max(1, int(rps * duration))
    interval = 1.0 / rps
    async with httpx.AsyncClient(base_url=url.rstrip("/"), timeout=request_timeout) as client:

        async def fire() -> None:
            async with limit:
                start = time.perf_counter()
                try:
                    status = await _one(client, rng, known)
                except httpx.HTTPError:
                    summary.transport_errors += 1
                    summary.count += 1
                    return
                summary.latencies_ms.append((time.perf_counter() - start) * 1000)
                summary.statuses[status] = summary.statuses.get(status, 0) + 1
                summary.count += 1

        began = time.perf_counter()
        tasks: list[asyncio.Task[None]] = []
        for index in range(total):
            delay = began + index * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if limit.locked():
                summary.skipped += 1  # saturated: skip this slot, keep the schedule
                continue
            tasks.append(asyncio.create_task(fire()))
        await asyncio.gather(*tasks)
        summary.duration_s = time.perf_counter() - began
    return summary
