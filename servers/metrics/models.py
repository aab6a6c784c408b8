"""Pydantic models of the metrics area: bounded PromQL answers."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

__all__ = [
    "InstantResult",
    "InstantSample",
    "MetricsStatus",
    "RangeResult",
    "RangeSeries",
    "ScrapeTarget",
    "TargetList",
]


class InstantSample(BaseModel):
    """One series of an instant vector (or the one value of a scalar/string)."""

    labels: dict[str, str] = Field(default_factory=dict, description="The series' labels.")
    value: float | None = Field(description="Its value at the query time (None: NaN/±Inf).")


class InstantResult(BaseModel):
    """The answer to an instant query, cut to ``PROMETHEUS_MAX_SERIES`` series."""

    query: str
    time: datetime
    result_type: Literal["vector", "scalar", "string", "matrix"]
    samples: list[InstantSample]
    series_total: int = Field(description="Series Prometheus answered before the cap.")
    truncated: bool = Field(description="Series were dropped by the cap.")
    warnings: list[str] = Field(default_factory=list)


class RangeSeries(BaseModel):
    """One series of a range query: ``points`` are ``[unix seconds, value]`` (None: NaN)."""

    labels: dict[str, str] = Field(default_factory=dict)
    points: list[tuple[float, float | None]]
    last: float | None = Field(None, description="The newest value.")
    max: float | None = Field(None, description="The largest value in the range.")


class RangeResult(BaseModel):
    """The answer to a range query, within ``PROMETHEUS_MAX_SERIES`` series and
    ``PROMETHEUS_MAX_POINTS`` points (the oldest points of each series are dropped first)."""

    query: str
    start: datetime
    end: datetime
    step_seconds: float = Field(description="The step used (widened to fit the point cap).")
    series: list[RangeSeries]
    series_total: int
    points_total: int = Field(description="Points returned, all series together.")
    truncated: bool
    warnings: list[str] = Field(default_factory=list)


class ScrapeTarget(BaseModel):
    job: str
    instance: str
    health: Literal["up", "down", "unknown"]
    last_error: str | None = None
    last_scrape: datetime | None = None


class TargetList(BaseModel):
    """What Prometheus scrapes and whether each scrape works."""

    prometheus: str = Field(description="The Prometheus queried (credentials masked).")
    targets: list[ScrapeTarget]
    total: int


class MetricsStatus(BaseModel):
    """Whether a metrics source is configured and answers, and the bounds of every answer."""

    configured: bool = Field(description="PROMETHEUS_URL is set.")
    prometheus: str | None = Field(None, description="The Prometheus (credentials masked).")
    reachable: bool | None = Field(None, description="Its API answered (None: not configured).")
    version: str | None = None
    error: str | None = None
    timeout_seconds: float
    max_series: int
    max_points: int
