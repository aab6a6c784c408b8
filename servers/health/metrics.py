"""Summarise a Prometheus text exposition: requests, rate, error rate, p50/p99."""

from __future__ import annotations

import math
import time

from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel, Field

__all__ = ["MetricsSample", "quantile", "summarise"]


class MetricsSample(BaseModel):
    requests_total: int = 0
    errors_total: int = 0
    error_rate_percent: float = 0.0
    requests_per_second: float | None = Field(None, description="Since the previous scrape.")
    p50_latency_ms: float | None = None
    p99_latency_ms: float | None = None
    families: int = 0
    at: float = Field(default_factory=time.monotonic)


def quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """Linear interpolation inside cumulative histogram buckets ``[(le, count), …]``."""
    if not buckets:
        return None
    total = buckets[-1][1]
    if total <= 0:
        return None
    rank = q * total
    prev_le, prev_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if math.isinf(le):
                return prev_le
            span = count - prev_count
            frac = (rank - prev_count) / span if span > 0 else 1.0
            return prev_le + (le - prev_le) * frac
        prev_le, prev_count = le, count
    return prev_le


def _is_error(labels: dict[str, str]) -> bool:
    for key in ("status", "code", "status_code", "http_status"):
        value = labels.get(key)
        if value is not None:
            return value.startswith("5")
    return labels.get("outcome", "").lower() in ("error", "failure")


def summarise(text: str, previous: MetricsSample | None = None) -> MetricsSample:
    """Requests and errors from counters whose name mentions ``request``; latency from the
    first histogram whose name mentions ``duration``/``latency`` (seconds → ms)."""
    total = errors = 0.0
    buckets: dict[float, float] = {}
    hist_name: str | None = None
    families = 0
    for family in text_string_to_metric_families(text):
        families += 1
        name = family.name.lower()
        if family.type in ("counter", "unknown") and "request" in name:
            for sample in family.samples:
                if sample.name.endswith("_total") or (
                    family.type == "counter" and sample.name == family.name
                ):
                    total += sample.value
                    if _is_error(sample.labels):
                        errors += sample.value
        elif family.type == "histogram" and ("duration" in name or "latency" in name):
            if hist_name not in (None, family.name):
                continue
            hist_name = family.name
            for sample in family.samples:
                if sample.name.endswith("_bucket"):
                    le = float(sample.labels["le"])
                    buckets[le] = buckets.get(le, 0.0) + sample.value
    ordered = sorted(buckets.items())
    scale = 1000.0 if hist_name and "second" in hist_name else 1.0
    p50, p99 = quantile(ordered, 0.5), quantile(ordered, 0.99)
    result = MetricsSample(
        requests_total=int(total),
        errors_total=int(errors),
        error_rate_percent=round(100 * errors / total, 4) if total else 0.0,
        p50_latency_ms=None if p50 is None else round(p50 * scale, 3),
        p99_latency_ms=None if p99 is None else round(p99 * scale, 3),
        families=families,
    )
    if previous is not None:
        elapsed = result.at - previous.at
        if elapsed > 0:
            result.requests_per_second = round(
                max(result.requests_total - previous.requests_total, 0) / elapsed, 3
            )
    return result
