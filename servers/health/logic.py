"""Health diagnostics as plain async functions returning Pydantic models.

Targets come from the settings (``DEV3000_BACKEND_URL``/``_AGENT_URL``/``_FRONTEND_URL`` —
an empty agent or frontend URL means not deployed —, ``REDIS_URL``, ``DATABASE_URL``,
built-in disk (the log and data directories)/memory/cpu/external_apis), the optional
``DEV3000_TARGETS_FILE`` (YAML or JSON: a list of targets, or ``{"targets": [...]}``) and any
*targets provider* — an ``async () -> list[Target]`` callable passed to
:class:`HealthService` (dev3000 passes its runtime targets registry's).

Public functions (each takes ``settings=None`` → the process settings):
:func:`check_health` (scope live/ready/deep, include/exclude), :func:`check_target`,
:func:`list_targets`, :func:`target_history`, :func:`deep_health` (the deep report).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import psutil
import yaml
from prometheus_client import REGISTRY, generate_latest
from pydantic import ValidationError

from guilde_core.config import Settings, get_settings
from guilde_core.errors import InvalidInputError, NotFoundError
from guilde_core.observability import observability_status
from guilde_core.redaction import redact
from servers.circuits import logic as circuits
from servers.circuits.models import Breaker
from servers.health.checks import run_check
from servers.health.metrics import MetricsSample, summarise
from servers.health.models import (
    CheckResult,
    DatabaseCheck,
    DeepChecks,
    DeepHealthReport,
    Diagnostics,
    ExternalApiCheck,
    HealthReport,
    LogfireStatus,
    ObservabilityChecks,
    PoolInfo,
    RedisCheck,
    RequestMetrics,
    Scope,
    SentryStatus,
    Status,
    Target,
    TargetHistory,
    TargetList,
    worst,
)

__all__ = [
    "HISTORY_SIZE",
    "HealthService",
    "TargetsProvider",
    "aggregate",
    "builtin_targets",
    "check_health",
    "check_target",
    "deep_health",
    "get_service",
    "list_targets",
    "load_targets_file",
    "target_history",
]

HISTORY_SIZE = 100
STARTED = time.time()

#: ``async () -> list[Target]``: more targets at check time (e.g. dev3000's runtime registry)
TargetsProvider = Callable[[], Awaitable[list[Target]]]


def builtin_targets(settings: Settings) -> list[Target]:
    """Targets implied by the settings."""
    out = [
        Target(name="backend", kind="http", url=settings.dev3000_backend_url, path="/api/v1/health",
               critical=True, source="settings"),
    ]  # fmt: skip
    # an empty URL says the service is not deployed: no target, nothing to be absent
    if settings.dev3000_agent_url.strip():
        out.append(
            Target(name="agent", kind="http", url=settings.dev3000_agent_url, path="/health",
                   source="settings")
        )  # fmt: skip
    if settings.dev3000_frontend_url.strip():
        out.append(
            Target(name="frontend", kind="http", url=settings.dev3000_frontend_url, path="/",
                   source="settings")
        )  # fmt: skip
    if settings.redis_url:
        out.append(
            Target(name="redis", kind="redis", url=settings.redis_url, critical=True,
                   source="settings")
        )  # fmt: skip
    if settings.database_url is not None:
        out.append(
            Target(name="database", kind="postgres", url=settings.database_url.get_secret_value(),
                   critical=True, source="settings")
        )  # fmt: skip
    out += [
        # no path: the filesystems and sizes of the log and data directories dev3000 serves
        Target(name="disk", kind="disk", source="builtin"),
        Target(name="memory", kind="memory", source="builtin"),
        Target(name="cpu", kind="cpu", source="builtin"),
    ]
    if settings.health_check_external_services:
        out.append(Target(name="external_apis", kind="external_api", source="builtin"))
    return out


def load_targets_file(path: str) -> tuple[list[Target], list[str]]:
    """Targets of a YAML/JSON file, and one message per entry that is invalid."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        return [], [f"{path}: cannot read ({type(exc).__name__})"]
    try:
        data: Any = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        return [], [f"{path}: not valid YAML/JSON ({str(exc).splitlines()[0][:120]})"]
    if isinstance(data, dict):
        data = data.get("targets", [])
    if not isinstance(data, list):
        return [], [f"{path}: expected a list of targets or {{targets: [...]}}"]
    targets: list[Target] = []
    errors: list[str] = []
    for i, raw in enumerate(data):
        try:
            targets.append(Target.model_validate({**raw, "source": "file"}))
        except (ValidationError, TypeError) as exc:
            first = exc.errors()[0] if isinstance(exc, ValidationError) else {"msg": str(exc)}
            where = ".".join(str(x) for x in first.get("loc", ()))
            errors.append(f"{path}: target #{i + 1}: {where} {first['msg']}".strip())
    return targets, errors


def aggregate(results: list[CheckResult]) -> Status:
    """Worst of the critical checks; a failing non-critical check only degrades."""
    status = worst([r.status for r in results if r.critical])
    if status == "healthy" and any(r.status != "healthy" for r in results if not r.critical):
        status = "degraded"
    return status


class HealthService:
    """Targets, concurrent checks with a cache, and per-target history."""

    def __init__(self, settings: Settings, extra_targets: TargetsProvider | None = None) -> None:
        self.settings = settings
        self.extra_targets = extra_targets
        self.history: dict[str, deque[CheckResult]] = {}
        self._cache: dict[tuple[Any, ...], tuple[float, HealthReport]] = {}
        self._ctx: dict[str, dict[str, Any]] = {}
        self._metrics_prev: MetricsSample | None = None

    async def targets(self) -> TargetList:
        targets = builtin_targets(self.settings)
        errors: list[str] = []
        if self.settings.dev3000_targets_file:
            more, errors = await asyncio.to_thread(
                load_targets_file, self.settings.dev3000_targets_file
            )
            targets += more
        if self.extra_targets is not None:
            try:
                targets += await asyncio.wait_for(
                    self.extra_targets(), self.settings.health_check_timeout
                )
            except Exception as exc:
                errors.append(f"targets provider failed: {type(exc).__name__}")
        by_name: dict[str, Target] = {}
        for t in targets:  # later sources override earlier ones with the same name
            by_name[t.name] = t
        return TargetList(
            targets=list(by_name.values()),
            targets_file=self.settings.dev3000_targets_file,
            errors=errors,
        )

    async def target_list(self) -> TargetList:
        """:meth:`targets` as shown to clients (redacted)."""
        targets = await self.targets()
        return TargetList.model_validate(redact(targets.model_dump(mode="json")))

    def _record(self, result: CheckResult) -> None:
        ring = self.history.setdefault(result.name, deque(maxlen=HISTORY_SIZE))
        ring.append(result)

    def _shown(self, result: CheckResult) -> CheckResult:
        if self.settings.health_check_include_details:
            return result
        return result.model_copy(update={"details": {}})

    async def run(self, targets: list[Target]) -> list[CheckResult]:
        """Every target concurrently, each under its own timeout."""

        async def one(t: Target) -> CheckResult:
            ctx = self._ctx.setdefault(t.name, {})
            result = await run_check(t, self.settings, ctx)
            if "sample" in ctx:
                ctx["previous"] = ctx.pop("sample")
            self._record(result)
            return result

        return list(await asyncio.gather(*(one(t) for t in targets)))

    async def check(
        self,
        scope: Scope = "ready",
        include: list[str] | None = None,
        exclude: list[str] | None = None,
        *,
        use_cache: bool = True,
    ) -> HealthReport:
        key = (scope, tuple(sorted(include or ())), tuple(sorted(exclude or ())))
        now = time.monotonic()
        hit = self._cache.get(key)
        if use_cache and hit and now - hit[0] < self.settings.health_check_cache_ttl:
            return hit[1].model_copy(update={"cached": True})
        started = time.perf_counter()
        selected: list[Target] = []
        if scope != "live":
            every = (await self.targets()).targets
            known = {t.name for t in every}
            unknown = sorted(set(include or ()) - known) + sorted(set(exclude or ()) - known)
            if unknown:
                raise NotFoundError(f"unknown target(s): {', '.join(unknown)}; see list_targets")
            selected = [
                t
                for t in every
                if (scope == "deep" or t.critical or include)
                and (not include or t.name in include)
                and t.name not in (exclude or ())
            ]
        results = await self.run(selected)
        report = HealthReport(
            status=aggregate(results),
            scope=scope,
            observed_at=datetime.now(UTC),
            checks=[self._shown(r) for r in results],
            elapsed_ms=round((time.perf_counter() - started) * 1000, 3),
        )
        report = HealthReport.model_validate(redact(report.model_dump(mode="json")))
        self._cache[key] = (time.monotonic(), report)
        return report

    async def check_one(self, name: str) -> CheckResult:
        every = {t.name: t for t in (await self.targets()).targets}
        if name not in every:
            raise NotFoundError(f"no target named {name!r}; see list_targets")
        (result,) = await self.run([every[name]])
        return CheckResult.model_validate(redact(self._shown(result).model_dump(mode="json")))

    def recent(self, name: str, limit: int = 20) -> TargetHistory:
        if not 1 <= limit <= HISTORY_SIZE:
            raise InvalidInputError(f"limit must be between 1 and {HISTORY_SIZE}")
        ring = self.history.get(name)
        if ring is None:
            raise NotFoundError(f"no history for {name!r}: check it first (check_target)")
        items = [self._shown(r) for r in list(ring)[-limit:]]
        return TargetHistory.model_validate(
            redact(TargetHistory(name=name, results=items, capacity=HISTORY_SIZE).model_dump())
        )

    async def deep_report(self) -> DeepHealthReport:
        """The deep report: every target, breakers, observability, metrics."""
        every = (await self.targets()).targets
        results, breakers = await asyncio.gather(self.run(every), _safe_breakers(self.settings))
        by_kind: dict[str, CheckResult] = {}
        for r in results:
            by_kind.setdefault(r.kind, r)
        details = self.settings.health_check_include_details
        checks = DeepChecks(
            database=_database(by_kind.get("postgres"), details),
            redis=_redis(by_kind.get("redis"), details),
            external_apis=_breakers(breakers, details),
            observability=_observability(),
        )
        status = aggregate(results)
        breaker_statuses = [c.status for c in checks.external_apis.values()]
        if status == "healthy" and any(s != "healthy" for s in breaker_statuses):
            status = "degraded"
        report = DeepHealthReport(
            status=status,
            timestamp=datetime.now(UTC),
            service=self.settings.mcp_server_name,
            version=_version(),
            environment=self.settings.dev3000_mode,
            uptime_seconds=round(time.time() - STARTED, 3),
            checks=checks,
            metrics=self._local_metrics(),
            diagnostics=_diagnostics(),
        )
        return DeepHealthReport.model_validate(redact(report.model_dump(mode="json")))

    def _local_metrics(self) -> RequestMetrics:
        sample = summarise(generate_latest(REGISTRY).decode(), previous=self._metrics_prev)
        self._metrics_prev = sample
        rps = sample.requests_per_second
        if rps is None:
            rps = sample.requests_total / max(time.time() - STARTED, 1e-3)
        return RequestMetrics(
            requests_total=sample.requests_total,
            requests_per_second=round(rps, 3),
            error_rate_percent=sample.error_rate_percent,
            p50_latency_ms=sample.p50_latency_ms,
            p99_latency_ms=sample.p99_latency_ms,
        )


def _version() -> str:
    try:
        return version("guilde-diag")
    except PackageNotFoundError:
        return "0.0.0"


async def _safe_breakers(settings: Settings) -> list[Breaker]:
    try:
        return (await circuits.list_breakers(settings)).breakers
    except Exception:
        return []


def _database(r: CheckResult | None, details: bool) -> DatabaseCheck | None:
    if r is None:
        return None
    d = r.details
    pool = None
    if details and d.get("connections_max") is not None:
        pool = PoolInfo(
            size=d.get("connections_max"),
            available=d.get("connections_available"),
            in_use=d.get("connections_in_use"),
        )
    return DatabaseCheck(
        status=r.status, latency_ms=d.get("latency_ms", r.latency_ms), pool=pool, error=r.error
    )


def _redis(r: CheckResult | None, details: bool) -> RedisCheck | None:
    if r is None:
        return None
    d = r.details
    return RedisCheck(
        status=r.status,
        latency_ms=d.get("latency_ms", r.latency_ms),
        memory_used_mb=d.get("memory_used_mb") if details else None,
        connected_clients=d.get("connected_clients") if details else None,
        error=r.error,
    )


def _breakers(breakers: list[Breaker], details: bool) -> dict[str, ExternalApiCheck]:
    return {
        b.name: ExternalApiCheck(
            status=b.status,
            circuit_state=b.state.value,
            last_success=b.last_success_at if details else None,
            last_failure=b.last_failure_at if details else None,
            failure_count=b.failure_count,
        )
        for b in breakers
    }


def _observability() -> ObservabilityChecks:
    try:
        raw: dict[str, Any] = observability_status()
    except Exception:
        raw = {}
    lf = raw.get("logfire") or {}
    se = raw.get("sentry") or {}
    return ObservabilityChecks(
        logfire=LogfireStatus.model_validate({"status": "healthy", **lf}),
        sentry=SentryStatus.model_validate({"status": "healthy", **se}),
    )


def _diagnostics() -> Diagnostics:
    proc = psutil.Process()
    try:
        conns = len(proc.net_connections(kind="inet"))
    except (psutil.Error, OSError):
        conns = 0
    try:
        tasks = len(asyncio.all_tasks())
    except RuntimeError:
        tasks = 0
    return Diagnostics(
        memory_mb=round(proc.memory_info().rss / 1024 / 1024, 3),
        cpu_percent=proc.cpu_percent(interval=None),
        open_connections=conns,
        active_tasks=tasks,
    )


# --- module-level functions (one service per settings object) ------------------------------
_service: HealthService | None = None


def get_service(settings: Settings | None = None) -> HealthService:
    """The shared :class:`HealthService` for ``settings`` (history and cache live there)."""
    global _service
    s = settings or get_settings()
    if _service is None or _service.settings is not s:
        _service = HealthService(s)
    return _service


async def check_health(
    scope: Scope = "ready",
    include: list[str] | None = None,
    exclude: list[str] | None = None,
    settings: Settings | None = None,
) -> HealthReport:
    return await get_service(settings).check(scope, include, exclude)


async def check_target(name: str, settings: Settings | None = None) -> CheckResult:
    return await get_service(settings).check_one(name)


async def list_targets(settings: Settings | None = None) -> TargetList:
    return await get_service(settings).target_list()


async def target_history(
    name: str, limit: int = 20, settings: Settings | None = None
) -> TargetHistory:
    return get_service(settings).recent(name, limit)


async def deep_health(settings: Settings | None = None) -> DeepHealthReport:
    """The deep report — what ``/api/v1/health/deep`` serves."""
    return await get_service(settings).deep_report()
