"""Property: over generated rounds of checks — any statuses, measurements, errors, reports,
breakers, own stores, history — the stack model builds (no status without a reason, the
stack's status agrees with its nodes), its compact JSON reads back, and the deep report
made from it never shows a status other than healthy without a check in its body that is
not healthy, counts, and says why."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dev3000.api.health import with_shared_state
from guilde_core.config import Settings
from guilde_core.resilience import BreakerState
from guilde_core.stack import StackModel, compact
from servers.circuits.models import Breaker
from servers.health.logic import deep_checks
from servers.health.models import CheckResult, Target
from servers.health.topology import Observation, build_topology

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
SETTINGS = Settings()

statuses = st.sampled_from(["healthy", "degraded", "unhealthy", "ok", "down", "warn", "?"])
numbers = st.floats(min_value=0, max_value=1e5, allow_nan=False) | st.integers(0, 10_000)
texts = st.sampled_from(
    [
        "RateLimitedError: 429",
        "AuthenticationError: 401 bad key sk-abcdefghijklmnopqrstuvwx",
        "OperationalError: connection refused",
        "PoolTimeout: no connection",
        "timeout after 3s",
        "HTTP 503 (expected 200)",
        "something odd happened",
        "",
    ]
) | st.text(max_size=40)
error_codes = st.sampled_from(
    ["timeout", "connection_failed", "unexpected_status", "rate_limited", "permanent", "weird"]
)


def optional(key: str, values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(st.just({}), values.map(lambda v: {key: v}))


@st.composite
def checks(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {"status": draw(statuses)}
    for key, values in (
        ("latency_ms", numbers),
        ("threshold_ms", numbers),
        ("p99_latency_ms", numbers),
        ("error", texts),
        ("error_code", error_codes),
        ("critical", st.booleans()),
        ("circuit_state", st.sampled_from(["closed", "open", "half-open", "half_open", "x"])),
        ("last_error", texts),
        ("forced", st.booleans()),
        ("disabled", st.booleans()),
        ("failure_count", st.integers(0, 50)),
        ("error_rate_percent", numbers),
        ("threshold_percent", numbers),
        ("used_mb", numbers),
        ("warn_mb", numbers),
        ("filesystem_free_percent", numbers),
        ("warning", texts),
        ("type", st.sampled_from(["postgresql", "redis", "sqlite", "memory"])),
        (
            "pool",
            st.fixed_dictionaries(
                {"size": st.integers(0, 10), "in_use": st.integers(0, 10)},
                optional={"available": st.integers(0, 10)},
            ),
        ),
    ):
        body.update(draw(optional(key, values)))
    return body


names = st.sampled_from(
    ["database", "redis", "cache", "errors", "latency", "disk", "memory", "config", "mystery"]
)


@st.composite
def reports(draw: st.DrawFn) -> dict[str, Any]:
    found: dict[str, Any] = draw(st.dictionaries(names, checks(), max_size=5))
    if draw(st.booleans()):
        found["external_apis"] = draw(
            st.dictionaries(
                st.sampled_from(["openai", "anthropic", "webhooks"]), checks(), max_size=3
            )
        )
    return {"status": draw(statuses), "checks": found}


@st.composite
def rounds(
    draw: st.DrawFn,
) -> tuple[list[Target], list[CheckResult], list[Breaker], dict[str, Any], set[str]]:
    count = draw(st.integers(1, 4))
    targets = [
        Target(
            name=f"svc{i}" if i else "backend",
            kind="http",
            url=f"http://127.0.0.1:{9000 + i}",
            critical=draw(st.booleans()),
            depends_on=draw(
                st.lists(st.sampled_from(["backend", "database", "svc1", "nope"]), max_size=2)
            ),
        )
        for i in range(count)
    ]
    if draw(st.booleans()):
        targets.append(Target(name="disk", kind="disk", source="builtin"))
    results = []
    for t in targets:
        status = draw(st.sampled_from(["healthy", "degraded", "unhealthy"]))
        details: dict[str, Any] = {"latency_ms": draw(numbers)}
        if t.kind == "http" and draw(st.booleans()):
            details["report"] = draw(reports())
        if t.kind == "disk" and draw(st.booleans()):
            details["directories"] = [draw(checks()) for _ in range(draw(st.integers(0, 2)))]
        failed = status == "unhealthy"
        results.append(
            CheckResult(
                name=t.name,
                kind=t.kind,
                critical=t.critical,
                status=status,
                latency_ms=1.0,
                observed_at=NOW,
                details=details,
                error=draw(texts) if failed else None,
                error_code=draw(error_codes) if failed else None,
            )
        )
    breakers = [
        Breaker.model_validate(
            {
                "name": name,
                "state": draw(st.sampled_from(list(BreakerState))),
                "config": {
                    "failure_threshold": 3,
                    "recovery_timeout": 30,
                    "half_open_requests": 1,
                    "success_threshold": 1,
                },
                "status": draw(st.sampled_from(["healthy", "degraded", "unhealthy"])),
                "backend": draw(st.sampled_from(["memory", "redis"])),
                "last_error": draw(st.none() | texts),
                "forced": draw(st.booleans()),
                "failure_count": draw(st.integers(0, 9)),
            }
        )
        for name in draw(
            st.lists(
                st.sampled_from(["openai", "database", "payments", "backend"]),
                max_size=3,
                unique=True,
            )
        )
    ]
    stores = draw(
        st.dictionaries(
            st.sampled_from(["rate_limit_store", "circuit_state_store"]), checks(), max_size=2
        )
    )
    ever_up = set(
        draw(st.lists(st.sampled_from(["backend", "svc1", "svc2", "backend/database"]), max_size=3))
    )
    return targets, results, breakers, stores, ever_up  # fmt: skip


def explained(check: Any) -> bool:
    """Whether ``check`` or a check below it is not healthy, counts and has reasons."""
    if not isinstance(check, dict):
        return False
    if "status" in check:
        here = (
            check["status"] != "healthy" and not check.get("absent") and bool(check.get("reasons"))
        )
        return here or any(explained(c) for c in check.get("children", {}).values())
    return any(explained(v) for v in check.values())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rounds())
def test_the_model_always_builds_and_the_deep_report_always_says_why(
    drawn: tuple[list[Target], list[CheckResult], list[Breaker], dict[str, Any], set[str]],
) -> None:
    targets, results, breakers, stores, ever_up = drawn
    model = build_topology(
        Observation(
            settings=SETTINGS,
            observed_at=NOW,
            targets=targets,
            results={r.name: r for r in results},
            breakers=breakers,
            self_checks=stores,
            ever_up=set(ever_up),
        )
    )
    assert StackModel.model_validate(compact(model)) == model
    for node in model.nodes:
        assert node.status == "healthy" or node.reasons, node
    checks = deep_checks(model, {r.name: r for r in results}, breakers, SETTINGS)
    body = with_shared_state(
        {"status": model.status, "checks": checks.model_dump(mode="json")}, model
    )
    if body["status"] != "healthy":
        assert explained(body["checks"]), body
    assert "sk-abcdefghijklmnopqrstuvwx" not in str(body)
    assert "sk-abcdefghijklmnopqrstuvwx" not in str(compact(model))
