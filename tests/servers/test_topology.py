"""The stack model built from one round of checks (servers.health.topology): nodes, edges
and reasons read from structured fields — over hand-written reports in the shapes the seed's
deep report and the sandbox answer, so each rule is pinned down on its own."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from guilde_core.config import Settings
from guilde_core.resilience import BreakerState
from guilde_core.stack import StackModel, compact
from servers.circuits.models import Breaker
from servers.health.compose import load_compose
from servers.health.models import CheckKind, CheckResult, Target
from servers.health.reasons import canonical, error_type, reasons_of
from servers.health.topology import SELF_ID, Observation, build_topology

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
SETTINGS = Settings(
    health_warn_db_latency_ms=100,
    health_warn_redis_latency_ms=50,
    health_warn_api_latency_ms=500,
)
BACKEND = Target(name="backend", kind="http", url="http://127.0.0.1:9", path="/api/v1/health",
                 critical=True)  # fmt: skip
AGENT = Target(name="agent", kind="http", url="http://127.0.0.1:8", path="/health")


def result(
    name: str,
    kind: CheckKind = "http",
    status: str = "healthy",
    *,
    report: dict[str, Any] | None = None,
    error: str | None = None,
    error_code: str | None = None,
    critical: bool = False,
    **details: Any,
) -> CheckResult:
    if report is not None:
        details["report"] = report
    return CheckResult.model_validate(
        {
            "name": name,
            "kind": kind,
            "critical": critical,
            "status": status,
            "latency_ms": 12.0,
            "observed_at": NOW,
            "details": details,
            "error": error,
            "error_code": error_code,
        }
    )


def backend_report(status: str, **checks: dict[str, Any]) -> dict[str, Any]:
    base: dict[str, Any] = {
        "database": {"status": "healthy", "type": "postgresql", "critical": True,
                     "latency_ms": 3.0, "pool": {"size": 5, "available": 4, "in_use": 1}},
        "redis": {"status": "healthy", "critical": False, "latency_ms": 0.8},
        "external_apis": {"openai": {"status": "healthy", "circuit_state": "closed",
                                     "failure_count": 0, "configured": True}},
        "errors": {"status": "healthy", "critical": False, "error_rate_percent": 0.0,
                   "threshold_percent": 5},
    }  # fmt: skip
    for name, body in checks.items():
        if name == "external_apis":
            base["external_apis"] = {**base["external_apis"], **body}
        else:
            base[name] = body
    return {"status": status, "checks": base}


def build(
    results: list[CheckResult],
    targets: list[Target] | None = None,
    *,
    breakers: list[Breaker] | None = None,
    ever_up: set[str] | None = None,
    **extra: Any,
) -> StackModel:
    targets = targets if targets is not None else [BACKEND]
    return build_topology(
        Observation(
            settings=SETTINGS,
            observed_at=NOW,
            targets=targets,
            results={r.name: r for r in results},
            breakers=breakers or [],
            ever_up=ever_up if ever_up is not None else set(),
            **extra,
        )
    )


def breaker(name: str, state: str, *, backend: str = "redis", **kw: Any) -> Breaker:
    status = {"closed": "healthy", "half-open": "degraded"}.get(state, "unhealthy")
    return Breaker.model_validate(
        {
            "name": name,
            "state": BreakerState(state),
            "config": {"failure_threshold": 5, "recovery_timeout": 30, "half_open_requests": 1,
                       "success_threshold": 1},
            "backend": backend,
            "status": kw.pop("status", status),
            **kw,
        }
    )  # fmt: skip


def test_a_slow_database_in_the_backends_report_is_the_end_of_the_chain() -> None:
    slow = {"status": "degraded", "type": "postgresql", "critical": True, "latency_ms": 801.2,
            "pool": {"size": 5, "available": 4, "in_use": 1},
            "warning": "latency 801 ms > 100 ms"}  # fmt: skip
    model = build([result("backend", report=backend_report("degraded", database=slow))])
    db = model.node("backend/database")
    assert (db.kind, db.component, db.parent, db.status) == (
        "datastore", "database", "backend", "degraded"
    )  # fmt: skip
    (reason,) = db.reasons
    assert reason.category == "latency"
    assert (reason.field, reason.value, reason.threshold) == (
        "checks.database.latency_ms", 801.2, 100.0
    )  # fmt: skip
    assert reason.summary == "latency 801 ms > 100 ms"
    backend = model.node("backend")
    assert backend.status == "degraded"
    assert backend.cause is not None
    assert backend.cause.category == "latency"
    assert "database" in backend.cause.summary
    chain = model.deepest_fault("backend")
    assert chain is not None
    assert [n.id for n in chain] == ["backend", "backend/database"]
    assert model.status == "degraded"
    assert {n.id for n in model.children("backend")} == {
        "backend/database", "backend/redis", "backend/openai", "backend/errors"
    }  # fmt: skip
    assert model.node("backend/errors").component == "backend"  # a check of itself


def test_a_429_storm_is_rate_limited_with_the_open_breaker_as_its_consequence() -> None:
    storm = {"openai": {"status": "unhealthy", "circuit_state": "open", "failure_count": 5,
                        "last_error": "RateLimitedError: openai answered 429 (retry after 1s)",
                        "configured": True}}  # fmt: skip
    model = build([result("backend", report=backend_report("degraded", external_apis=storm))])
    openai = model.node("backend/openai")
    assert (openai.kind, openai.component) == ("provider", "openai")
    assert [(r.category, r.consequence) for r in openai.reasons] == [
        ("upstream_rate_limited", False), ("circuit_open", True)
    ]  # fmt: skip
    assert openai.cause is not None
    assert openai.cause.field == "checks.external_apis.openai.last_error"
    backend = model.node("backend")
    assert backend.cause is not None
    assert backend.cause.category == "upstream_rate_limited"


def test_a_forced_open_breaker_is_the_cause_itself() -> None:
    model = build(
        [result("backend", report=backend_report("healthy"))],
        breakers=[breaker("payments", "open", forced=True, backend="memory",
                          last_error="RateLimitedError: old")],
    )  # fmt: skip
    node = model.node(f"{SELF_ID}/payments")
    assert (node.kind, node.source, node.status) == ("provider", "breaker", "unhealthy")
    assert node.cause is not None
    assert node.cause.category == "circuit_open"
    assert "forced open" in node.cause.summary
    assert model.node(SELF_ID).status == "healthy"  # its own checks are fine
    assert [n.id for n in model.dependencies(SELF_ID)] == [f"{SELF_ID}/payments"]
    assert model.status == "degraded"  # a breaker is not critical


def test_an_exhausted_pool_is_resource_exhaustion_not_an_unreachable_database() -> None:
    exhausted = {"status": "unhealthy", "type": "postgresql", "critical": True,
                 "pool": {"size": 5, "available": 0, "in_use": 5},
                 "error": "pool exhausted: PoolTimeout: couldn't get a connection after 1.00 sec"}  # fmt: skip
    model = build(
        [result("backend", "http", "unhealthy", report=backend_report("unhealthy", database=exhausted),
                error="HTTP 503 (expected 200)", error_code="unexpected_status", status_code=503)]
    )  # fmt: skip
    db = model.node("backend/database")
    assert db.cause is not None
    assert db.cause.category == "resource_exhaustion"
    assert (db.cause.value, db.cause.threshold) == (5.0, 5.0)
    backend = model.node("backend")
    assert backend.status == "unhealthy"
    assert [(r.category, r.consequence) for r in backend.reasons] == [
        ("resource_exhaustion", False), ("unreachable", True)  # the 503 follows from it
    ]  # fmt: skip
    assert model.status == "unhealthy"


def test_unreachable_refused_and_timeouts_come_from_codes_and_types_not_text() -> None:
    refused = {"status": "unhealthy", "type": "postgresql", "critical": True,
               "error": "OperationalError: connection refused"}  # fmt: skip
    redis_down = {"status": "unhealthy", "critical": False,
                  "error": "the cache went away (the words 'timeout' and 'rate limit' mean nothing)"}  # fmt: skip
    model = build(
        [result("backend", report=backend_report("unhealthy", database=refused, redis=redis_down))]
    )
    assert model.node("backend/database").reasons[0].category == "unreachable"
    # no type, no code, nothing measured: it could not be reached at all
    assert model.node("backend/redis").reasons[0].category == "unreachable"
    timed = build([result("backend", "http", "unhealthy", error="timeout after 3s",
                          error_code="timeout")])  # fmt: skip
    assert timed.node("backend").reasons[0].category == "latency"
    assert error_type("RateLimitedError: 429") == "RateLimitedError"
    assert error_type("httpx.ReadTimeout: read") == "ReadTimeout"
    assert error_type("pool exhausted: PoolTimeout: …") is None
    assert error_type("the database: postgresql://x") is None


def test_components_come_from_names_and_kinds_never_from_error_text() -> None:
    """A ``postgresql://`` inside an unrelated breaker's error names no database; a log
    file's name in an error names no component."""
    webhooks = breaker(
        "webhooks", "open", backend="memory",
        last_error="ConnectionFailedError: sink postgresql://app:s3cret@db:5432/x refused; see api.log",
    )  # fmt: skip
    model = build([result("backend", report=backend_report("healthy"))], breakers=[webhooks])
    node = model.node(f"{SELF_ID}/webhooks")
    assert node.component == "webhooks"
    assert node.cause is not None
    assert node.cause.category == "unreachable"
    assert not model.by_component("api.log")
    assert [n.id for n in model.by_component("database")] == ["backend/database"]
    assert model.node("backend/database").status == "healthy"
    assert "s3cret" not in json.dumps(compact(model))
    assert canonical("cache", "redis") == "redis"
    assert canonical("orders-db", "postgres") == "database"
    assert canonical("payments") == "payments"


def test_a_shared_breaker_hangs_under_the_component_it_protects() -> None:
    """A breaker shared through Redis (the backend's) merges into the backend's report of
    the same component; one of this process alone is dev3000's own."""
    db_open = breaker("database", "open", failure_count=3,
                      last_error="OperationalError: connection refused")  # fmt: skip
    own_openai = breaker("openai", "open", backend="memory", failure_count=3,
                         last_error="OperationTimeoutError: timeout after 60s")  # fmt: skip
    model = build(
        [result("backend", report=backend_report("healthy"))], breakers=[db_open, own_openai]
    )
    db = model.node("backend/database")
    assert db.status == "unhealthy"
    assert db.cause is not None
    assert db.cause.category == "unreachable"
    assert db.details["breaker"]["circuit_state"] == "open"
    assert model.node("backend").status == "unhealthy"  # follows its child
    assert model.node("backend/openai").status == "healthy"  # the backend's is closed
    mine = model.node(f"{SELF_ID}/openai")
    assert mine.cause is not None
    assert mine.cause.category == "latency"
    assert not model.get(f"{SELF_ID}/database")


def test_a_target_that_never_answered_is_absent_one_that_went_down_is_an_incident() -> None:
    down = result("agent", "http", "unhealthy", error="ConnectError: All connection attempts failed",
                  error_code="connection_failed")  # fmt: skip
    ok_backend = result("backend", report=backend_report("healthy"))
    seen: set[str] = set()
    never = build([ok_backend, down], [BACKEND, AGENT], ever_up=seen)
    agent = never.node("agent")
    assert agent.absent
    assert not agent.ever_up
    assert agent.reasons[0].category == "unreachable"  # shown with its reason, greyed
    assert never.status == "healthy"
    assert never.explaining() == []
    up = result("agent", "http", "healthy")
    build([ok_backend, up], [BACKEND, AGENT], ever_up=seen)
    assert "agent" in seen
    gone = build([ok_backend, down], [BACKEND, AGENT], ever_up=seen)
    assert not gone.node("agent").absent
    assert gone.node("agent").ever_up
    assert gone.status == "degraded"  # not critical: it degrades
    assert [n.id for n in gone.explaining()] == ["agent"]
    critical = AGENT.model_copy(update={"critical": True})
    never_critical = build([ok_backend, down], [BACKEND, critical])
    assert not never_critical.node("agent").absent
    assert never_critical.status == "unhealthy"


def test_declared_dependencies_become_edges_and_unknown_names_notes() -> None:
    web = Target(name="web", kind="http", url="http://127.0.0.1:7", depends_on=["backend", "redis", "ledger"])  # fmt: skip
    model = build(
        [result("backend", report=backend_report("healthy")), result("web")], [BACKEND, web]
    )
    assert {n.id for n in model.dependencies("web")} == {"backend", "backend/redis"}
    assert model.notes == ["web depends on 'ledger': no such target or component"]
    frontend = Target(name="frontend", kind="http", url="http://127.0.0.1:6", source="settings")
    model = build([result("backend"), result("frontend")], [BACKEND, frontend])
    assert [n.id for n in model.dependencies("frontend")] == ["backend"]  # built in


def test_host_resources_and_the_logs_directory_filling_up() -> None:
    disk = Target(name="disk", kind="disk", source="builtin")
    memory = Target(name="memory", kind="memory", source="builtin")
    directories = [
        {"role": "logs", "path": "logs", "status": "degraded", "used_mb": 1300.0, "warn_mb": 1024,
         "files": 12, "filesystem_used_percent": 41.0},
        {"role": "data", "path": ".dev3000", "status": "healthy", "used_mb": 2.0, "warn_mb": 1024,
         "filesystem_used_percent": 41.0},
    ]  # fmt: skip
    model = build(
        [
            result("backend"),
            result("disk", "disk", "degraded", path="logs", used_percent=41.0,
                   directories=directories),
            result("memory", "memory", "healthy", used_percent=20.0, warn_percent=80),
        ],
        [BACKEND, disk, memory],
    )  # fmt: skip
    assert {n.id for n in model.dependencies(SELF_ID)} == {"host/disk", "host/memory"}
    logs = model.node("host/disk/logs")
    assert (logs.kind, logs.component, logs.status) == ("resource", "disk", "degraded")
    assert logs.cause is not None
    assert logs.cause.category == "resource_exhaustion"
    assert logs.cause.summary == "logs directory size 1300 MB ≥ 1024 MB"
    chain = model.deepest_fault(SELF_ID)
    assert chain is not None
    assert [n.id for n in chain] == [SELF_ID, "host/disk", "host/disk/logs"]


def test_dev3000s_own_stores_hang_under_it() -> None:
    stores = {
        "rate_limit_store": {"status": "healthy", "backend": "redis"},
        "circuit_state_store": {"status": "degraded", "backend": "redis", "connected": False,
                                "degraded": True, "error": "ConnectionError: refused"},
    }  # fmt: skip
    model = build([result("backend")], self_checks=stores)
    store = model.node(f"{SELF_ID}/circuit_state_store")
    assert (store.kind, store.component) == ("datastore", "redis")
    assert store.cause is not None
    assert store.cause.category == "unreachable"
    me = model.node(SELF_ID)
    assert me.status == "degraded"
    assert me.cause is not None
    assert "circuit_state_store" in me.cause.summary


def test_compose_depends_on_links_services_and_reported_components(tmp_path: Path) -> None:
    compose = tmp_path / "compose.yaml"
    compose.write_text(
        "services:\n"
        "  web: {image: 'nginx:1', depends_on: [backend]}\n"
        "  backend:\n"
        "    image: registry.example/app:2\n"
        "    depends_on: {postgres: {condition: service_healthy}, cache: {condition: service_started}}\n"
        "  postgres: {image: 'postgres:16'}\n"
        "  cache: {image: 'docker.io/library/redis:7'}\n"
        "  worker: {image: 'app:2', depends_on: [postgres, queue]}\n"
    )
    services, problems = load_compose(str(compose))
    assert problems == []
    model = build([result("backend", report=backend_report("healthy"))], compose=services)
    # postgres and cache are the backend's own database and redis (already its edges)
    assert {"backend/database", "backend/redis"} <= {n.id for n in model.dependencies("backend")}
    assert not model.get("compose/postgres")
    assert not model.get("compose/cache")
    web = model.node("compose/web")
    assert web.absent
    assert web.details == {"probed": False}
    assert [n.id for n in model.dependencies("compose/web")] == ["backend"]
    assert {n.id for n in model.dependencies("compose/worker")} == {
        "backend/database", "compose/queue"
    }  # fmt: skip
    assert model.status == "healthy"
    broken = tmp_path / "broken.yaml"
    broken.write_text("services: [1, 2]\n")
    assert load_compose(str(broken)) == ([], ["compose file broken.yaml: no services mapping"])
    assert load_compose(str(tmp_path / "nope.yaml"))[1] == [
        "compose file nope.yaml: cannot read (FileNotFoundError)"
    ]


def test_every_status_comes_with_a_reason_even_a_bare_one() -> None:
    bare = {"status": "degraded", "critical": False, "warning": "something is off"}
    model = build([result("backend", report=backend_report("degraded", mystery=bare))])
    node = model.node("backend/mystery")
    assert node.cause is not None
    assert (node.cause.category, node.cause.summary) == (
        "unknown",
        "reports degraded: something is off",
    )
    odd = reasons_of({"status": "down"}, field="x", component="x", settings=SETTINGS)
    assert [r.category for r in odd] == ["unknown"]
    assert reasons_of({"status": "ok"}, field="x", component="x", settings=SETTINGS) == []


def test_the_compact_json_round_trips_and_leaves_defaults_out() -> None:
    model = build(
        [result("backend", report=backend_report("healthy")),
         result("agent", "http", "unhealthy", error="ConnectError: x", error_code="connection_failed")],
        [BACKEND, AGENT],
    )  # fmt: skip
    data = compact(model)
    assert StackModel.model_validate(data) == model
    nodes = {n["id"]: n for n in data["nodes"]}
    assert nodes["backend/redis"]["status"] == "healthy"  # status is always there
    assert "reasons" not in nodes["backend/redis"]
    assert "consequence" not in json.dumps(data)
    assert nodes["agent"]["absent"] is True
