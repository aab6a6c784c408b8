"""Health diagnostics as plain async functions returning Pydantic models.

One list of targets (:class:`~servers.health.models.Target`), merged from its sources — a
later source overrides an earlier one with the same name: the settings
(``DEV3000_BACKEND_URL``/``_AGENT_URL``/``_FRONTEND_URL`` — an empty agent or frontend URL
means not deployed —, ``REDIS_URL``, ``DATABASE_URL``, built-in disk (the log and data
directories)/memory/cpu/external_apis), the optional ``DEV3000_TARGETS_FILE`` (YAML or JSON: a
list of targets, or ``{"targets": [...]}``) and any *targets provider* — an
``async () -> list[Target]`` callable passed to :class:`HealthService` (dev3000 passes its
runtime registry's).

The deep view (:meth:`HealthService.snapshot`) checks every target once per
``HEALTH_CHECK_CACHE_TTL`` — concurrent callers share one computation (single flight), the
cache is stamped when it completes — under one overall deadline
(``HEALTH_DEEP_CHECK_DEADLINE``): a check still running then is reported as timed out. From
it come the stack model (:meth:`HealthService.topology`, built by
:mod:`servers.health.topology`) and the deep report (:meth:`HealthService.deep_report`).

Public functions (each takes ``settings=None`` → the process settings):
:func:`check_health` (scope live/ready/deep, include/exclude), :func:`check_target`,
:func:`list_targets`, :func:`target_history`, :func:`deep_health` (the deep report),
:func:`topology` (the stack model).
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml
from prometheus_client import REGISTRY, generate_latest
from pydantic import BaseModel, ValidationError

from guilde_core.config import Settings, get_settings
from guilde_core.errors import InvalidInputError, NotFoundError
from guilde_core.observability import observability_status
from guilde_core.redaction import redact
from guilde_core.stack import Node, StackModel
from servers.circuits import logic as circuits
from servers.circuits.models import Breaker
from servers.health.checks import run_check, timeout_message
from servers.health.compose import ComposeService, load_compose
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
    NodeCheck,
    ObservabilityChecks,
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
from servers.health.topology import Observation, build_topology, self_node

__all__ = [
    "HISTORY_SIZE",
    "HealthService",
    "SelfChecks",
    "Snapshot",
    "TargetsProvider",
    "aggregate",
    "builtin_targets",
    "check_health",
    "check_target",
    "deep_checks",
    "deep_health",
    "get_service",
    "list_targets",
    "load_targets_file",
    "node_checks",
    "target_history",
    "topology",
]

HISTORY_SIZE = 100
STARTED = time.time()

#: ``async () -> list[Target]``: more targets at check time (e.g. dev3000's runtime registry)
TargetsProvider = Callable[[], Awaitable[list[Target]]]
#: ``() -> {name: check}``: the host's own checks (dev3000's shared stores), no I/O
SelfChecks = Callable[[], Mapping[str, Mapping[str, Any]]]


@dataclass(frozen=True)
class Snapshot:
    """One deep round: every target checked once, the breakers read, the model built."""

    targets: list[Target]
    results: dict[str, CheckResult]
    breakers: list[Breaker]
    model: StackModel
    report: DeepHealthReport
    elapsed_ms: float
    #: ``time.monotonic()`` when it completed (what the cache's age is measured from)
    completed: float = field(default_factory=time.monotonic)


def builtin_targets(settings: Settings) -> list[Target]:
    """Targets implied by the settings."""
    out: list[Target] = []
    # an empty URL says the service is not deployed: no target, nothing to be absent (the
    # watched service may be declared otherwise: the targets file, the registry)
    if settings.dev3000_backend_url.strip():
        out.append(
            Target(name="backend", kind="http", url=settings.dev3000_backend_url,
                   path="/api/v1/health", critical=True, source="settings")
        )  # fmt: skip
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
    """Targets, concurrent checks with a cache, per-target history, and the deep view: one
    single-flight snapshot per ``HEALTH_CHECK_CACHE_TTL`` from which the stack model and the
    deep report are read.

    ``extra_targets`` adds the host's targets (dev3000's registry), ``self_checks`` its own
    checks (the stores it runs on), ``ever_up`` the node ids seen up so far (a host that
    rebuilds its service on a configuration reload passes the old one's on)."""

    def __init__(
        self,
        settings: Settings,
        extra_targets: TargetsProvider | None = None,
        *,
        self_checks: SelfChecks | None = None,
        ever_up: set[str] | None = None,
    ) -> None:
        self.settings = settings
        self.extra_targets = extra_targets
        self.self_checks = self_checks
        self.history: dict[str, deque[CheckResult]] = {}
        #: ids of stack nodes seen up since this process started
        self.ever_up: set[str] = ever_up if ever_up is not None else set()
        self._cache: dict[tuple[Any, ...], tuple[float, HealthReport]] = {}
        self._ctx: dict[str, dict[str, Any]] = {}
        self._metrics_prev: MetricsSample | None = None
        self._snapshot: Snapshot | None = None
        self._inflight: asyncio.Task[Snapshot] | None = None
        self._http: tuple[asyncio.AbstractEventLoop, httpx.AsyncClient] | None = None
        self._ssl: ssl.SSLContext | None = None

    # --- the shared HTTP client ----------------------------------------------------------
    def http_client(self) -> httpx.AsyncClient:
        """The HTTP client every check of this service uses (one pool, one TLS context),
        made for the running event loop."""
        loop = asyncio.get_running_loop()
        if self._http is None or self._http[0] is not loop or self._http[1].is_closed:
            if self._ssl is None:
                self._ssl = httpx.create_ssl_context()
            client = httpx.AsyncClient(
                verify=self._ssl,
                follow_redirects=False,
                limits=httpx.Limits(max_connections=64, keepalive_expiry=5.0),
            )
            self._http = (loop, client)
        return self._http[1]

    async def aclose(self) -> None:
        """Close the HTTP client (when it belongs to the running loop)."""
        held, self._http = self._http, None
        if held is not None and held[0] is asyncio.get_running_loop():
            await held[1].aclose()

    # --- targets -------------------------------------------------------------------------
    async def targets(self) -> TargetList:
        """Every target, merged: built-in and settings, then the targets file, then the
        targets provider (the registry); a later one replaces an earlier of the same name."""
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

    async def run(
        self, targets: list[Target], *, deadline: float | None = None
    ) -> list[CheckResult]:
        """Every target concurrently, each under its own timeout — capped by what is left of
        ``deadline`` (a ``time.monotonic()`` instant): a check still running then is
        reported as timed out."""
        client = self.http_client()

        async def one(t: Target) -> CheckResult:
            ctx = self._ctx.setdefault(t.name, {})
            cap = None if deadline is None else deadline - time.monotonic()
            result = await run_check(t, self.settings, ctx, client=client, cap=cap)
            if "sample" in ctx:
                ctx["previous"] = ctx.pop("sample")
            self._record(result)
            return result

        if deadline is None:
            return list(await asyncio.gather(*(one(t) for t in targets)))
        tasks = [asyncio.ensure_future(one(t)) for t in targets]
        if not tasks:
            return []
        done, pending = await asyncio.wait(
            tasks, timeout=max(deadline - time.monotonic(), 0.0) + _DEADLINE_GRACE
        )
        for task in pending:
            task.cancel()
        results: list[CheckResult] = []
        for t, task in zip(targets, tasks, strict=True):
            if task in done and not task.cancelled() and task.exception() is None:
                results.append(task.result())
            else:
                late = _timed_out(t, self.settings.health_deep_check_deadline)
                self._record(late)
                results.append(late)
        return results

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
                raise NotFoundError(f"unknown target(s): {', '.join(unknown)}; see health_targets")
            selected = [
                t
                for t in every
                if (scope == "deep" or t.critical or include)
                and (not include or t.name in include)
                and t.name not in (exclude or ())
            ]
        deadline = None
        if scope == "deep":
            deadline = time.monotonic() + self.settings.health_deep_check_deadline
        results = await self.run(selected, deadline=deadline)
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
            raise NotFoundError(f"no target named {name!r}; see health_targets")
        (result,) = await self.run([every[name]])
        return CheckResult.model_validate(redact(self._shown(result).model_dump(mode="json")))

    def recent(self, name: str, limit: int = 20) -> TargetHistory:
        if not 1 <= limit <= HISTORY_SIZE:
            raise InvalidInputError(f"limit must be between 1 and {HISTORY_SIZE}")
        ring = self.history.get(name)
        if ring is None:
            raise NotFoundError(f"no history for {name!r}: check it first (health_check)")
        items = [self._shown(r) for r in list(ring)[-limit:]]
        return TargetHistory.model_validate(
            redact(TargetHistory(name=name, results=items, capacity=HISTORY_SIZE).model_dump())
        )

    # --- the deep view -------------------------------------------------------------------
    async def snapshot(self, *, fresh: bool = False) -> Snapshot:
        """The latest deep round: from the cache while younger than
        ``HEALTH_CHECK_CACHE_TTL`` (unless ``fresh``), else the round under way (every
        concurrent caller waits for the same one), else a new round."""
        cached = self._snapshot
        ttl = self.settings.health_check_cache_ttl
        if not fresh and cached is not None and time.monotonic() - cached.completed < ttl:
            return cached
        loop = asyncio.get_running_loop()
        task = self._inflight
        if task is None or task.done() or task.get_loop() is not loop:
            task = loop.create_task(self._round())
            self._inflight = task
        # a caller that gives up (a closed connection) does not cancel the others' round
        return await asyncio.shield(task)

    def forget(self) -> None:
        """Drop the cached round (the next caller starts a new one)."""
        self._snapshot = None
        self._inflight = None

    async def _round(self) -> Snapshot:
        started = time.monotonic()
        deadline = started + self.settings.health_deep_check_deadline
        notes: list[str] = []
        try:
            listed = await asyncio.wait_for(self.targets(), _left(deadline))
            targets, notes = listed.targets, list(listed.errors)
        except TimeoutError:
            targets = builtin_targets(self.settings)
            notes.append("listing the targets timed out: the built-in targets only")
        results, breakers, compose = await asyncio.gather(
            self.run(targets, deadline=deadline),
            _within(_safe_breakers(self.settings), deadline, [], notes, "reading the breakers"),
            _within(self._compose(notes), deadline, [], notes, "reading the compose file"),
        )
        by_name = {r.name: r for r in results}
        model = build_topology(
            Observation(
                settings=self.settings,
                observed_at=datetime.now(UTC),
                targets=targets,
                results=by_name,
                breakers=breakers,
                self_checks=self._self_checks(notes),
                compose=compose,
                ever_up=self.ever_up,
                notes=notes,
            )
        )
        report = DeepHealthReport(
            status=model.status,
            timestamp=datetime.now(UTC),
            service=self.settings.mcp_server_name,
            version=_version(),
            environment=self.settings.dev3000_mode,
            uptime_seconds=round(time.time() - STARTED, 3),
            checks=deep_checks(model, by_name, breakers, self.settings),
            metrics=self._local_metrics(),
            diagnostics=_diagnostics(),
        )
        report = DeepHealthReport.model_validate(redact(report.model_dump(mode="json")))
        snap = Snapshot(
            targets=targets,
            results=by_name,
            breakers=breakers,
            model=model,
            report=report,
            elapsed_ms=round((time.monotonic() - started) * 1000, 3),
        )
        self._snapshot = snap  # stamped now, at completion
        return snap

    async def _compose(self, notes: list[str]) -> list[ComposeService]:
        path = self.settings.dev3000_compose_file
        if not path:
            return []
        services, problems = await asyncio.to_thread(load_compose, path)
        notes.extend(problems)
        return services

    def _self_checks(self, notes: list[str]) -> Mapping[str, Mapping[str, Any]]:
        if self.self_checks is None:
            return {}
        try:
            return self.self_checks()
        except Exception as exc:
            notes.append(f"the host's own checks failed: {type(exc).__name__}")
            return {}

    async def topology(self, *, fresh: bool = False) -> StackModel:
        """The stack model of the latest deep round."""
        return (await self.snapshot(fresh=fresh)).model

    async def deep_report(self, *, fresh: bool = False) -> DeepHealthReport:
        """The deep report of the latest deep round: status from the stack model, the watched
        backend's database/redis/external APIs, every target with its reasons and children,
        observability, metrics."""
        return (await self.snapshot(fresh=fresh)).report

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


#: how long past the deadline the round waits for checks that are finishing anyway
_DEADLINE_GRACE = 0.05


def _left(deadline: float) -> float:
    return max(deadline - time.monotonic(), 0.001)


async def _within[T](
    work: Awaitable[T], deadline: float, default: T, notes: list[str], what: str
) -> T:
    try:
        return await asyncio.wait_for(work, _left(deadline))
    except TimeoutError:
        notes.append(f"{what} timed out")
        return default


def _timed_out(target: Target, seconds: float) -> CheckResult:
    return CheckResult(
        name=target.name,
        kind=target.kind,
        critical=target.critical,
        status="unhealthy",
        latency_ms=round(seconds * 1000, 3),
        observed_at=datetime.now(UTC),
        error=timeout_message(seconds, deadline=True),
        error_code="timeout",
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


def node_checks(model: StackModel, node: Node) -> NodeCheck:
    """``node`` and what it showed (its children, recursively) as the deep report's entry."""
    return NodeCheck(
        status=node.status,
        kind=node.kind,
        component=node.component,
        critical=node.critical,
        absent=node.absent,
        ever_up=node.ever_up,
        latency_ms=node.latency_ms,
        error=node.error,
        reasons=node.reasons,
        url=node.url,
        source=node.source if node.parent is None else None,
        children={kid.name: node_checks(model, kid) for kid in model.children(node.id)},
    )


def _targets(model: StackModel) -> list[Node]:
    """The target nodes: top level, declared by settings, file or registry (not dev3000
    itself, not what only the compose file names)."""
    own = self_node(model)
    return [
        n
        for n in model.nodes
        if n.parent is None and n.source in ("builtin", "settings", "file", "registry")
        and n is not own
    ]  # fmt: skip


def _watched_backend(model: StackModel, targets: list[Node]) -> Node | None:
    """The backend whose own report fills ``checks.database``/``redis``/``external_apis``:
    the target ``backend`` when it reported, else the first critical service that did."""
    reporting = [n for n in targets if n.kind == "service" and model.children(n.id)]
    named = [n for n in reporting if n.name == "backend"]
    critical = [n for n in reporting if n.critical]
    pick = named or critical or reporting
    return pick[0] if pick else None


def _raw_report(results: Mapping[str, CheckResult], backend: Node | None) -> dict[str, Any]:
    if backend is None or backend.name not in results:
        return {}
    report = results[backend.name].details.get("report")
    checks = report.get("checks") if isinstance(report, Mapping) else None
    return dict(checks) if isinstance(checks, Mapping) else {}


_BRIEF = ("status", "latency_ms", "type", "error", "reasons", "circuit_state", "failure_count")


def _entry[M: BaseModel](shape: type[M], raw: Mapping[str, Any], node: Node, details: bool) -> M:
    """A reported check in its seed shape, with the model's status and reasons (a raw field
    that does not fit the shape is left out rather than failing the report)."""
    data: dict[str, Any] = {k: v for k, v in raw.items() if details or k in _BRIEF}
    data.update(status=node.status, reasons=node.reasons or None)
    if shape is ExternalApiCheck:
        state = str(data.get("circuit_state") or "closed").replace("_", "-")
        data["circuit_state"] = state if state in ("closed", "open", "half-open") else "open"
    try:
        return shape.model_validate(data)
    except ValidationError:
        keep = {k: data[k] for k in ("status", "reasons", "circuit_state") if k in data}
        return shape.model_validate(keep)


def deep_checks(
    model: StackModel,
    results: Mapping[str, CheckResult],
    breakers: list[Breaker],
    settings: Settings,
) -> DeepChecks:
    """The deep report's ``checks`` from the stack model: the watched backend's database,
    redis and external APIs (in the seed's shapes, with the model's status and reasons),
    dev3000's own breakers among the external APIs, and every target (``targets``)."""
    details = settings.health_check_include_details
    targets = _targets(model)
    backend = _watched_backend(model, targets)
    raw = _raw_report(results, backend)
    kids = model.children(backend.id) if backend is not None else []

    def reported(component: str) -> tuple[Mapping[str, Any], Node] | None:
        for kid in kids:
            body = raw.get(kid.name)
            if kid.component == component and isinstance(body, Mapping):
                return body, kid
        return None

    def own(component: str) -> tuple[Mapping[str, Any], Node] | None:
        for node in targets:
            if node.component == component and node.kind == "datastore":
                r = results.get(node.name)
                if r is not None:
                    return _own_shape(r, component), node
        return None

    database = reported("database") or own("database")
    redis = reported("redis") or own("redis")
    external: dict[str, ExternalApiCheck] = {}
    group = raw.get("external_apis")
    for kid in kids:
        if kid.kind == "provider" and isinstance(group, Mapping):
            body = group.get(kid.name)
            if isinstance(body, Mapping):
                external[kid.name] = _entry(ExternalApiCheck, body, kid, details)
    by_name = {b.name: b for b in breakers}
    own_id = self_node(model).id
    for node in model.children(own_id):
        b = by_name.get(node.name)
        if node.source != "breaker" or b is None:
            continue
        key = node.name if node.name not in external else node.id
        external[key] = _entry(ExternalApiCheck, _breaker_shape(b, details), node, details)
    return DeepChecks(
        database=_entry(DatabaseCheck, *database, details) if database else None,
        redis=_entry(RedisCheck, *redis, details) if redis else None,
        external_apis=external,
        observability=_observability(),
        targets={n.name: node_checks(model, n) for n in targets},
    )


def _own_shape(r: CheckResult, component: str) -> dict[str, Any]:
    """dev3000's own check of a datastore in the seed's shape."""
    d = r.details
    out: dict[str, Any] = {"latency_ms": d.get("latency_ms", r.latency_ms), "error": r.error}
    if component == "database":
        out["type"] = "postgresql"
        if d.get("connections_max") is not None:
            out["pool"] = {
                "size": d.get("connections_max"),
                "available": d.get("connections_available"),
                "in_use": d.get("connections_in_use"),
            }
    else:
        out["memory_used_mb"] = d.get("memory_used_mb")
        out["connected_clients"] = d.get("connected_clients")
    return out


def _breaker_shape(b: Breaker, details: bool) -> dict[str, Any]:
    return {
        "circuit_state": b.state.value,
        "failure_count": b.failure_count,
        "last_success": b.last_success_at if details else None,
        "last_failure": b.last_failure_at if details else None,
        "last_error": b.last_error if details else None,
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


async def topology(settings: Settings | None = None) -> StackModel:
    """The stack model — what ``GET /api/v1/diag/topology`` serves."""
    return await get_service(settings).topology()
