"""Pydantic models of the health area (checks, targets, reports, the deep report)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from guilde_core.stack import NodeKind, Reason

Status = Literal["healthy", "degraded", "unhealthy"]
CheckKind = Literal[
    "http", "redis", "postgres", "tcp", "disk", "memory", "cpu", "external_api", "metrics"
]
Scope = Literal["live", "ready", "deep"]
#: where a target is declared: built into dev3000 (disk, memory, cpu, external APIs), implied
#: by a setting (DEV3000_BACKEND_URL …), the targets file, the runtime registry
#: (``/api/v1/targets``) or the compose file (DEV3000_COMPOSE_FILE)
TargetSource = Literal["builtin", "settings", "file", "registry", "compose"]

_RANK: dict[str, int] = {"healthy": 0, "degraded": 1, "unhealthy": 2}


def worst(statuses: list[Status]) -> Status:
    """The worst of ``statuses`` (healthy when empty)."""
    out: Status = "healthy"
    for s in statuses:
        if _RANK[s] > _RANK[out]:
            out = s
    return out


class Target(BaseModel):
    """Something to check — THE notion of target, whichever source declares it (settings,
    the targets file, the runtime registry, the compose file). ``url`` for
    http/metrics/redis/postgres, ``host``+``port`` for tcp, ``path`` for disk (none: the log
    and data directories dev3000 serves; see :mod:`servers.health.disk`) and the HTTP path
    for http/metrics. ``depends_on`` names what it needs (other targets, or a component its
    own health report shows: ``database``); ``critical`` makes its failure the stack's."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][\w.\-]*$")
    kind: CheckKind
    url: str | None = None
    host: str | None = None
    port: int | None = Field(None, ge=1, le=65535)
    path: str | None = None
    expected_status: int = Field(200, ge=100, le=599)
    critical: bool = False
    timeout: float | None = Field(None, gt=0, le=300, description="Seconds (default: setting).")
    warn_ms: float | None = Field(None, gt=0, description="Latency warning threshold override.")
    depends_on: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list,
        max_length=50,
        description="What it depends on: target names, or components its report shows.",
    )
    source: TargetSource = Field(
        "settings", description="builtin | settings | file | registry | compose"
    )


class CheckResult(BaseModel):
    name: str
    kind: CheckKind
    critical: bool
    status: Status
    latency_ms: float
    observed_at: datetime
    details: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    error_code: str | None = Field(
        None,
        description="What kind of failure: timeout, connection_failed, unexpected_status (an "
        "answer it did not expect) or another error code of the project.",
    )


class HealthReport(BaseModel):
    """Result of one scope (live / ready / deep) or of a selection of targets."""

    status: Status
    scope: Scope
    observed_at: datetime
    checks: list[CheckResult]
    cached: bool = Field(False, description="Served from the HEALTH_CHECK_CACHE_TTL cache.")
    elapsed_ms: float


class TargetList(BaseModel):
    targets: list[Target]
    targets_file: str | None = None
    errors: list[str] = Field(default_factory=list, description="Problems loading targets.")


class TargetHistory(BaseModel):
    name: str
    results: list[CheckResult] = Field(description="Newest last (bounded ring).")
    capacity: int


# --- the deep report -----------------------------------------------------------------------
class PoolInfo(BaseModel):
    size: int | None = None
    available: int | None = None
    in_use: int | None = None


class DatabaseCheck(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: Status
    latency_ms: float | None = None
    type: str = "postgresql"
    pool: PoolInfo | None = None
    error: str | None = None
    reasons: list[Reason] | None = None


class RedisCheck(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: Status
    latency_ms: float | None = None
    memory_used_mb: float | None = None
    connected_clients: int | None = None
    error: str | None = None
    reasons: list[Reason] | None = None


class ExternalApiCheck(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: Status
    circuit_state: Literal["closed", "open", "half-open"]
    last_success: datetime | None = None
    last_failure: datetime | None = None
    failure_count: int = 0
    reasons: list[Reason] | None = None


class LogfireStatus(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: Status
    spans_exported: int = 0
    export_errors: int = 0


class SentryStatus(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: Status
    events_sent: int = 0
    rate_limited: bool = False


class ObservabilityChecks(BaseModel):
    logfire: LogfireStatus
    sentry: SentryStatus


class NodeCheck(BaseModel):
    """One component of the stack model as the deep report shows it: a target with what its
    own report showed (``children``), a check of one, a breaker behind one. Fields without a
    value are left out."""

    status: Status
    kind: NodeKind
    component: str
    critical: bool = False
    absent: bool = Field(False, description="Never answered and not critical: not an incident.")
    ever_up: bool = False
    latency_ms: float | None = None
    error: str | None = None
    reasons: list[Reason] = Field(default_factory=list, description="Why it is not healthy.")
    url: str | None = None
    source: str | None = None
    children: dict[str, NodeCheck] = Field(default_factory=dict)

    @model_serializer(mode="wrap")
    def _compact(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("reasons"):
            data["reasons"] = [_dense(r) for r in data["reasons"]]
        return _dense(data)


def _dense(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` without the entries that carry nothing (None, empty, false)."""
    return {k: v for k, v in data.items() if v not in (None, [], {}) and v is not False}


class DeepChecks(BaseModel):
    database: DatabaseCheck | None = None
    redis: RedisCheck | None = None
    external_apis: dict[str, ExternalApiCheck] = Field(default_factory=dict)
    observability: ObservabilityChecks
    targets: dict[str, NodeCheck] = Field(
        default_factory=dict,
        description="Every target: status, latency, error, reasons and what its own report "
        "showed (children).",
    )


class RequestMetrics(BaseModel):
    requests_total: int = 0
    requests_per_second: float = 0.0
    error_rate_percent: float = 0.0
    p50_latency_ms: float | None = None
    p99_latency_ms: float | None = None


class Diagnostics(BaseModel):
    memory_mb: float
    cpu_percent: float
    open_connections: int
    active_tasks: int


class DeepHealthReport(BaseModel):
    """The deep report: overall status, every check, metrics and diagnostics."""

    status: Status
    timestamp: datetime
    service: str
    version: str
    environment: str
    uptime_seconds: float
    checks: DeepChecks
    metrics: RequestMetrics
    diagnostics: Diagnostics
