"""The chaos fault catalogue: stable ids, bounded parameters, documented symptoms.

Every fault is reversible (``clear``) and bounded: its parameters have caps and it expires by
itself after ``ttl_s`` seconds (default 300, at most 3600). The sandbox
(:mod:`tools.sandbox`) implements them; ``dev3000 chaos`` reaches them through the sandbox's
``/_chaos`` control endpoint. ``symptoms`` says what the sandbox's own health, the circuits
view, its logs and its metrics show while the fault is active.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from guilde_core.errors import InvalidInputError

__all__ = ["FAULTS", "FaultDef", "FaultParams", "fault_def", "validate_params"]

DEFAULT_TTL_S = 300.0
MAX_TTL_S = 3600.0


class FaultParams(BaseModel):
    """Parameters every fault takes."""

    model_config = ConfigDict(extra="forbid")

    ttl_s: float = Field(DEFAULT_TTL_S, gt=0, le=MAX_TTL_S, description="Auto-expiry (s).")


class NoParams(FaultParams):
    pass


class LatencyParams(FaultParams):
    delay_ms: int = Field(800, ge=1, le=10_000, description="Added to every call (ms).")


StormKind = Literal["429", "500", "503", "timeout"]
_STORM_DEFAULT: tuple[StormKind, ...] = ("429", "503", "timeout")
_STORM_ALIASES = {
    "rate_limit": "429",
    "server_error": "500",
    "unavailable": "503",
    "hang": "timeout",
}


class StormParams(FaultParams):
    rate: float = Field(1.0, gt=0, le=1, description="Share of upstream calls that fail.")
    kinds: list[StormKind] = Field(default_factory=lambda: list(_STORM_DEFAULT), min_length=1)
    retry_after_s: int = Field(1, ge=0, le=60, description="Retry-After of injected 429s.")

    @field_validator("kinds", mode="before")
    @classmethod
    def _aliases(cls, value: Any) -> Any:
        """Also accept the fake LLM's fault names (rate_limit, server_error, unavailable)."""
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            return [_STORM_ALIASES.get(str(v), str(v)) for v in value]
        return value


class PoolParams(FaultParams):
    hold: int | None = Field(None, ge=1, le=100, description="Connections held (default all).")


class FloodParams(FaultParams):
    lines_per_second: int = Field(200, ge=1, le=2_000)
    max_lines: int = Field(20_000, ge=1, le=200_000, description="Stops after this many lines.")


class SpikeParams(FaultParams):
    rate: float = Field(0.5, gt=0, le=1, description="Share of order requests that fail.")
    exception: Literal["KeyError", "ValueError", "RuntimeError", "ZeroDivisionError"] = "KeyError"
    message: str = Field("customer_tier", max_length=200)


class SlowParams(FaultParams):
    route: str = Field("/api/v1/orders", pattern=r"^/", max_length=200)
    delay_ms: int = Field(1500, ge=1, le=30_000)


class DiskParams(FaultParams):
    cap_mb: int = Field(64, ge=1, le=1024, description="Stop writing at this size.")
    rate_mb_s: int = Field(32, ge=1, le=256)


class MemoryParams(FaultParams):
    cap_mb: int = Field(96, ge=1, le=512, description="Stop allocating at this size.")
    rate_mb_s: int = Field(64, ge=1, le=512)


class BadConfigParams(FaultParams):
    key: str = Field("upstream_timeout_s", max_length=100)
    value: Any = -5


class BrokenViewParams(FaultParams):
    view: Literal["orders", "checkout", "new"] = Field(
        "orders", description="The frontend view that throws (orders: the landing page)."
    )


class FailingFetchParams(FaultParams):
    status: int = Field(500, ge=400, le=599, description="What /api/v1/promotions answers.")


class SlowAssetParams(FaultParams):
    asset: Literal["style.css", "app.js"] = Field("style.css", description="The asset served late.")
    # over the browser capture's 3 s slow-load threshold (DEV3000_BROWSER_SLOW_LOAD_MS)
    delay_ms: int = Field(4000, ge=1, le=30_000)


class FaultDef(BaseModel):
    """One catalogue entry."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    id: str
    title: str
    params: type[FaultParams]
    health: str
    circuits: str
    logs: str
    metrics: str

    def describe(self) -> dict[str, Any]:
        """JSON-able description (parameters with defaults and bounds)."""
        return {
            "id": self.id,
            "title": self.title,
            "params": self.params.model_json_schema()["properties"],
            "symptoms": {
                "health": self.health,
                "circuits": self.circuits,
                "logs": self.logs,
                "metrics": self.metrics,
            },
        }


_F = FaultDef
FAULTS: dict[str, FaultDef] = {
    f.id: f
    for f in [
        _F(
            id="db-unreachable",
            title="Database connections refused",
            params=NoParams,
            health="checks.database unhealthy with the driver's error (PostgreSQL: connection "
            "refused; SQLite: unable to open database file); status unhealthy; /health/ready 503",
            circuits="'database' opens after its failure threshold",
            logs="ERROR 'database call failed' with that driver error, one per failed request "
            "(same request_id as the 503)",
            metrics="sandbox_http_requests_total{route=/api/v1/orders,status=503} rises",
        ),
        _F(
            id="redis-unreachable",
            title="Redis (cache) connections refused",
            params=NoParams,
            health="checks.redis unhealthy (connection refused); status degraded (the cache is "
            "not critical; orders are served from the database)",
            circuits="'redis' opens after its failure threshold",
            logs="WARNING 'cache unavailable' with redis ConnectionError (refused)",
            metrics="sandbox_cache_errors_total rises; orders still 200",
        ),
        _F(
            id="db-latency",
            title="Latency on every database call",
            params=LatencyParams,
            health="checks.database degraded with latency_ms ≥ delay_ms (over "
            "HEALTH_WARN_DB_LATENCY_MS); status degraded",
            circuits="no change (calls succeed, slowly)",
            logs="WARNING 'slow database call' with duration_ms",
            metrics="sandbox_http_request_duration_seconds for /api/v1/orders shifts up",
        ),
        _F(
            id="redis-latency",
            title="Latency on every cache call",
            params=LatencyParams,
            health="checks.redis degraded with latency_ms ≥ delay_ms (over "
            "HEALTH_WARN_REDIS_LATENCY_MS); status degraded",
            circuits="no change",
            logs="WARNING 'slow cache call' with duration_ms",
            metrics="request latency of cached routes shifts up",
        ),
        _F(
            id="upstream-error-storm",
            title="LLM upstream answers 429/500/503 or times out at a rate",
            params=StormParams,
            health="checks.external_apis.<provider> degraded/unhealthy with circuit_state open "
            "once the breaker trips; status degraded",
            circuits="'<provider>' (openai) opens after its failure threshold; half-open after "
            "the recovery timeout",
            logs="ERROR 'upstream call failed' with the typed error (RateLimitedError, "
            "ServiceUnavailableError, OperationTimeoutError); then CircuitOpenError, "
            "'(after <the error its own attempts met>)' when it opened mid-retry",
            metrics="sandbox_upstream_requests_total{outcome!=ok} rises; /api/v1/checkout 503",
        ),
        _F(
            id="upstream-bad-credential",
            title="The LLM upstream rejects the sandbox's credential (401)",
            params=NoParams,
            health="checks.external_apis.<provider> stays healthy (an authentication error is "
            "not retried and does not trip the breaker); /api/v1/checkout 502",
            circuits="no change (a rejected credential is not a failure of the upstream)",
            logs="ERROR 'upstream call failed: AuthenticationError: <provider> answered 401: …' "
            "[authentication] on every checkout",
            metrics="sandbox_upstream_requests_total{outcome=authentication} rises",
        ),
        _F(
            id="pool-exhaustion",
            title="Every database pool connection held",
            params=PoolParams,
            health="checks.database unhealthy 'pool exhausted' with pool.in_use == pool.size and "
            "pool.available 0; status unhealthy",
            circuits="'database' may open (pool timeouts count as failures)",
            logs="ERROR 'database call failed' with PoolTimeout",
            metrics="sandbox_db_pool_in_use == sandbox_db_pool_size; orders 503",
        ),
        _F(
            id="log-flood",
            title="A flood of identical warning lines",
            params=FloodParams,
            health="checks.log_volume degraded (lines/s over the flood threshold); status degraded",
            circuits="no change",
            logs="thousands of WARNING 'cache warmup retry' lines (logger sandbox.flood)",
            metrics="sandbox_log_lines_total{level=warning} jumps",
        ),
        _F(
            id="error-spike",
            title="Order requests fail with one exception signature",
            params=SpikeParams,
            health="checks.errors degraded (error rate over 5% in the last minute); "
            "metrics.error_rate_percent up",
            circuits="no change",
            logs="ERROR 'unhandled error' with the same exception type, message and traceback "
            "(tools/sandbox/pricing.py price_orders) on every failure",
            metrics="sandbox_http_requests_total{status=500} rises",
        ),
        _F(
            id="slow-endpoint",
            title="One route answers slowly",
            params=SlowParams,
            health="checks.latency degraded (p99 of the last minute over 1000 ms); "
            "metrics.p99_latency_ms up",
            circuits="no change",
            logs="WARNING 'slow request' with route and duration_ms",
            metrics="sandbox_http_request_duration_seconds{route} buckets above 1 s fill",
        ),
        _F(
            id="disk-fill",
            title="Files written into the sandbox's scratch directory up to a cap",
            params=DiskParams,
            health="checks.disk degraded when the scratch directory exceeds its budget "
            "(SandboxConfig.disk_budget_mb); status degraded",
            circuits="no change",
            logs="WARNING 'scratch directory over budget' with used_mb",
            metrics="sandbox_scratch_bytes rises to cap_mb",
        ),
        _F(
            id="memory-pressure",
            title="Memory allocated up to a cap",
            params=MemoryParams,
            health="checks.memory degraded when the process grew past its budget "
            "(SandboxConfig.memory_budget_mb); diagnostics.memory_mb up",
            circuits="no change",
            logs="WARNING 'memory over budget' with rss_mb",
            metrics="sandbox_memory_ballast_bytes and sandbox_process_resident_memory_bytes rise",
        ),
        _F(
            id="frontend-js-exception",
            title="One view of the sandbox frontend throws an uncaught TypeError",
            params=BrokenViewParams,
            health="no change (the backend is fine)",
            circuits="no change",
            logs="none in the sandbox; the browser capture records browser_exception "
            "'uncaught TypeError: Cannot read properties of undefined' with the app.js stack, "
            "and a screenshot",
            metrics="no change",
        ),
        _F(
            id="frontend-failing-fetch",
            title="The frontend's call to /api/v1/promotions fails",
            params=FailingFetchParams,
            health="no change",
            circuits="no change",
            logs="ERROR 'promotions lookup failed: pricing rules unavailable' with the "
            "request_id the browser capture gave the fetch; browser_request "
            "GET /api/v1/promotions 500 and a console error with the same id",
            metrics="sandbox_http_requests_total{route=/api/v1/promotions,status=500} rises",
        ),
        _F(
            id="frontend-slow-asset",
            title="A frontend asset (style.css or app.js) is served late",
            params=SlowAssetParams,
            health="checks.latency may degrade (the asset's requests are slow)",
            circuits="no change",
            logs="WARNING 'slow request' for /app/<asset>; the browser capture records "
            "browser_navigation 'slow page load' naming the asset",
            metrics="sandbox_http_request_duration_seconds for the asset shifts up",
        ),
        _F(
            id="bad-config-reload",
            title="A bad value written to the runtime config file, then reloaded",
            params=BadConfigParams,
            health="checks.config degraded, error names the key; the last good config stays "
            "in force; status degraded",
            circuits="no change",
            logs="ERROR 'config reload failed' naming the key and the rule it breaks",
            metrics="sandbox_config_reload_failures_total rises",
        ),
    ]
}


def fault_def(fault_id: str) -> FaultDef:
    """The catalogue entry for ``fault_id`` or :class:`InvalidInputError` listing the ids."""
    try:
        return FAULTS[fault_id]
    except KeyError:
        known = ", ".join(FAULTS)
        raise InvalidInputError(f"unknown fault {fault_id!r}; known: {known}") from None


def validate_params(fault_id: str, params: dict[str, Any] | None) -> FaultParams:
    """Validated parameters (defaults filled in, caps enforced) or :class:`InvalidInputError`."""
    definition = fault_def(fault_id)
    try:
        return definition.params.model_validate(params or {})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'params'}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidInputError(f"invalid parameters for {fault_id}: {problems}") from None
