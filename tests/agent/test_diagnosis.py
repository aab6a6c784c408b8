"""The diagnosis over the stack model, rule by rule, on models built here (no I/O): the
question read as a symptom, the root cause as the deepest fault on its path with the chain,
faults off the path as other problems, absent services never counted, evidence read from
structured fields only, the window and the deployment of timeline events, the status agreeing
with the root cause, and the one entry point a new evidence collector plugs into."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent import rules
from agent.analyzers import HEALTHY_COMPONENT, analyse, supported
from agent.models import EvidenceRecord, JsonValue
from agent.rules.base import RuleInput, Signal
from agent.symptom import read_symptom
from agent.toolnames import TOOL_ROLES, role_of
from guilde_core.stack import Edge, Node, Reason, StackModel, aggregate, compact

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def _node(node_id: str, **kw: Any) -> Node:
    name = node_id.rsplit("/", 1)[-1]
    base: dict[str, Any] = {
        "id": node_id,
        "name": name,
        "kind": "service",
        "component": name,
        "ever_up": True,
        "observed_at": NOW,
    }
    if "/" in node_id:
        base["parent"] = node_id.rsplit("/", 1)[0]
    base.update(kw)
    return Node.model_validate(base)


def _latency(ms: float, limit: float = 100) -> Reason:
    return Reason(
        category="latency",
        summary=f"latency {ms:.0f} ms > {limit:.0f} ms",
        field="checks.database.latency_ms",
        value=ms,
        threshold=limit,
    )


def _stack(
    *extra: Node, database: Reason | None = None, edges: tuple[Edge, ...] = ()
) -> StackModel:
    """backend (critical, reporting database, redis, openai, disk) and dev3000 (host
    resources, its own breakers) — plus ``extra`` nodes."""
    db_status = "degraded" if database is not None else "healthy"
    backend_reasons = (
        [Reason(category="latency", summary=f"reports degraded: database — {database.summary}",
                field="report.status", value="degraded")]
        if database is not None else []
    )  # fmt: skip
    nodes = [
        _node("dev3000", source="builtin"),
        _node("backend", critical=True, status=db_status, reasons=backend_reasons, latency_ms=945),
        _node("backend/database", kind="datastore", critical=True, status=db_status,
              reasons=[database] if database else [], latency_ms=801, source="report"),
        _node("backend/redis", kind="datastore", source="report"),
        _node("backend/openai", kind="provider", source="report"),
        _node("backend/disk", kind="resource", component="disk", source="report"),
        _node("host/cpu", kind="resource", component="cpu", source="builtin"),
        *extra,
    ]  # fmt: skip
    edge_list = [
        Edge(source="backend", target="backend/database", origin="report"),
        Edge(source="backend", target="backend/redis", origin="report"),
        Edge(source="backend", target="backend/openai", origin="report"),
        Edge(source="backend", target="backend/disk", origin="report"),
        Edge(source="dev3000", target="host/cpu", origin="declared"),
        *edges,
    ]
    for node in extra:
        if node.parent is not None:
            edge_list.append(Edge(source=node.parent, target=node.id, origin="breaker"))
    return StackModel(status=aggregate(nodes), observed_at=NOW, nodes=nodes, edges=edge_list)


def _record(eid: str, tool: str, data: Any) -> EvidenceRecord:
    return EvidenceRecord(
        id=eid, tool=tool, arguments={}, ok=True, data=data, error=None, excerpt="", turn=0
    )


def _topology(model: StackModel, eid: str = "E1") -> EvidenceRecord:
    value: JsonValue = compact(model)
    return _record(eid, "health_topology", value)


def _groups(*groups: dict[str, Any], eid: str = "E2") -> EvidenceRecord:
    return _record(eid, "logs_error_groups", {"groups": list(groups)})


def _group(message: str, count: int = 3, ts: datetime = NOW, **fields: Any) -> dict[str, Any]:
    stamp = ts.isoformat().replace("+00:00", "Z")
    return {
        "fingerprint": message,
        "count": count,
        "last_seen": stamp,
        "sources": ["billing-postgres.jsonl"],
        "sample": {"level": "error", "message": message, "ts": stamp, "fields": fields},
    }


# --- the question as a symptom -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("question", "kind", "component", "route"),
    [
        ("why are orders slow?", "slow", None, "orders"),
        ("why is checkout failing?", "failing", None, "checkout"),
        ("why is the cache slow?", "slow", "redis", None),
        ("is everything ok?", "overall", None, None),
        ("is the database healthy?", "overall", "database", None),
        ("why are payments rejected with 401?", "rejected", None, "payments"),
        ("why do AI answers take forever?", "slow", "llm", None),
        ("checkout is really slow today, why?", "slow", None, "checkout"),
    ],
)
def test_a_question_is_read_as_a_symptom(
    question: str, kind: str, component: str | None, route: str | None
) -> None:
    symptom = read_symptom(question)
    assert (symptom.kind, symptom.component, symptom.route) == (kind, component, route)


def test_the_focus_names_what_the_question_is_about() -> None:
    model = _stack()
    symptom = read_symptom("why is it slow?", focus="redis", model=model)
    assert (symptom.kind, symptom.component, symptom.source) == ("slow", "redis", "focus")
    assert symptom.entry == ["backend/redis"]
    # a route the question names starts at the service that serves it, not dev3000
    assert read_symptom("why are orders slow?", model=model).entry == ["backend"]
    # the model's own component names are read first: a breaker called payments
    payments = _node("dev3000/payments", kind="provider")
    assert read_symptom("payments are refused", model=_stack(payments)).component == "payments"


def test_the_site_is_the_frontend_only_where_one_runs() -> None:
    """ "The site" names the frontend of a stack that runs one; a stack without a deployed
    frontend still has a site: its services, and the diagnosis follows them, not a dead path."""
    question = "the site feels sluggish, what's going on?"
    without = read_symptom(question, model=_stack(_node("frontend", absent=True, ever_up=False)))
    assert (without.kind, without.component, without.route) == ("slow", None, None)
    assert without.entry == ["backend"]
    running = _stack(_node("frontend"))
    assert read_symptom(question, model=running).component == "frontend"
    assert read_symptom(question, model=running).entry == ["frontend"]
    # a slow cache behind the backend is the site's root cause when no frontend runs
    slow = Reason(category="latency", summary="latency 400 ms > 50 ms")
    base = _stack(_node("frontend", absent=True, ever_up=False))
    nodes = [
        n.model_copy(update={"status": "degraded", "reasons": [slow]})
        if n.id == "backend/redis"
        else n
        for n in base.nodes
    ]
    slow_cache = StackModel(status=aggregate(nodes), observed_at=NOW, nodes=nodes, edges=base.edges)
    found = analyse([_topology(slow_cache)], question=question)
    assert (found.root_cause.component, found.root_cause.category) == ("redis", "latency")


# --- the root cause: the deepest fault on the path, with the chain ---------------------------
def test_slow_orders_name_the_database_with_the_chain() -> None:
    result = analyse([_topology(_stack(database=_latency(801)))], question="why are orders slow?")
    root = result.root_cause
    assert (root.component, root.category, root.evidence_ids) == ("database", "latency", ["E1"])
    assert result.chain == [
        "orders slow",
        "backend degraded, 945 ms",
        "database: latency 801 ms > 100 ms",
    ]
    assert "orders slow ← backend degraded, 945 ms ← database: latency 801 ms > 100 ms" in (
        root.summary
    )
    assert result.status == "degraded"


def test_a_fault_off_the_path_is_another_problem_never_the_cause() -> None:
    breaker = _node(
        "dev3000/payments",
        kind="provider",
        status="unhealthy",
        reasons=[Reason(category="circuit_open", summary="forced open by an operator")],
    )
    model = _stack(breaker, database=_latency(801))
    result = analyse([_topology(model)], question="why are orders slow?")
    assert (result.root_cause.component, result.root_cause.category) == ("database", "latency")
    assert [f.component for f in result.other_problems] == ["payments"]
    assert all(f.component != "payments" for f in result.findings)
    # nothing wrong on the path of the cache: healthy for that question, with what was checked
    cache = analyse([_topology(model)], question="why is the cache slow?")
    assert (cache.root_cause.component, cache.root_cause.category) == (
        HEALTHY_COMPONENT,
        "unknown",
    )
    assert cache.status == "healthy"
    assert cache.checked == ["backend/redis: healthy"]
    assert "looks healthy for that question" in cache.root_cause.summary
    assert "backend/redis: healthy" in cache.root_cause.summary
    assert {f.component for f in cache.other_problems} == {"payments", "database"}


def test_an_absent_optional_service_never_counts() -> None:
    agent = _node(
        "agent",
        status="unhealthy",
        absent=True,
        ever_up=False,
        reasons=[Reason(category="unreachable", summary="connection refused")],
    )
    model = _stack(agent, edges=(Edge(source="agent", target="dev3000"),))
    for question in ("is everything ok?", "is the system healthy?", "why is checkout failing?"):
        result = analyse([_topology(model)], question=question)
        assert result.root_cause.component == HEALTHY_COMPONENT, question
        assert result.status == "healthy"
        assert not result.other_problems
    everything = analyse([_topology(model)], question="is everything ok?")
    assert "agent: absent (never answered; not counted)" in everything.checked


def test_the_kind_picks_among_faults_on_the_path() -> None:
    """Memory over budget slows a service down; it does not make it answer errors."""
    memory = _node(
        "backend/memory",
        kind="resource",
        component="memory",
        status="degraded",
        reasons=[Reason(category="resource_exhaustion", summary="memory growth 160 MB ≥ 128 MB")],
    )
    redis_down = Reason(category="unreachable", summary="connection refused")
    model = _stack(memory)
    nodes = [
        n.model_copy(update={"status": "unhealthy", "reasons": [redis_down]})
        if n.id == "backend/redis"
        else n
        for n in model.nodes
    ]
    model = StackModel(status=aggregate(nodes), observed_at=NOW, nodes=nodes, edges=model.edges)
    errors = analyse([_topology(model)], question="the API is returning errors, what is wrong?")
    assert (errors.root_cause.component, errors.root_cause.category) == ("redis", "unreachable")
    slower = analyse([_topology(model)], question="why is the service getting slower?")
    assert slower.root_cause.component == "memory"


def test_status_and_root_cause_always_agree() -> None:
    for model, question in [
        (_stack(), "is everything ok?"),
        (_stack(database=_latency(801)), "why are orders slow?"),
        (_stack(database=_latency(801)), "why is the cache slow?"),
    ]:
        result = analyse([_topology(model)], question=question)
        healthy = result.root_cause.component == HEALTHY_COMPONENT
        assert (result.status == "healthy") == healthy
        assert (result.root_cause.category == "unknown") == healthy


# --- evidence from structured fields only ----------------------------------------------------
def test_a_rate_limit_storm_that_opened_a_breaker_is_rate_limited() -> None:
    openai = Reason(category="upstream_rate_limited", summary="RateLimitedError: 429",
                    field="checks.external_apis.openai.last_failure")  # fmt: skip
    opened = Reason(
        category="circuit_open", summary="circuit open", field="circuit_state", consequence=True
    )
    model = _stack()
    nodes = [
        n.model_copy(update={"status": "unhealthy", "reasons": [opened, openai]})
        if n.id == "backend/openai"
        else n
        for n in model.nodes
    ]
    model = StackModel(status=aggregate(nodes), observed_at=NOW, nodes=nodes, edges=model.edges)
    result = analyse([_topology(model)], question="why does checkout fail?")
    assert (result.root_cause.component, result.root_cause.category) == (
        "openai",
        "upstream_rate_limited",
    )


def test_nothing_is_guessed_from_free_text() -> None:
    """A postgresql:// inside an unrelated message is no database, a log file's name is no
    component, a message saying 'refused' is no category: only error_code/provider count."""
    groups = _groups(
        _group("billing sync failed: DATABASE_URL=postgresql://app@db/prod refused", count=2),
        _group(
            "upstream call failed: 401", count=2, error_code="authentication", provider="openai"
        ),
    )
    result = analyse([_topology(_stack()), groups], question="why does checkout fail?")
    assert (result.root_cause.component, result.root_cause.category) == ("openai", "upstream_auth")
    components = {f.component for f in [*result.findings, *result.other_problems]}
    assert "database" not in components
    assert "billing-postgres" not in components
    assert result.status == "degraded"


def test_evidence_before_the_window_or_from_another_deployment_does_not_count() -> None:
    old = _group("upstream failed", ts=NOW - timedelta(hours=2), error_code="rate_limited",
                 provider="openai")  # fmt: skip
    timeline = _record(
        "E3",
        "timeline_recent",
        {
            "instance": "aaaaaaaaaaaa",
            "events": [
                {"ts": (NOW - timedelta(minutes=1)).isoformat(), "kind": "config_reload",
                 "severity": "error", "subject": "config", "summary": "reload failed",
                 "data": {"origin_instance": "bbbbbbbbbbbb"}},
                {"ts": (NOW - timedelta(hours=3)).isoformat(), "kind": "config_reload",
                 "severity": "error", "subject": "config", "summary": "reload failed"},
            ],
        },
    )  # fmt: skip
    records = [_topology(_stack()), _groups(old), timeline]
    result = analyse(records, question="is everything ok?")
    assert result.root_cause.component == HEALTHY_COMPONENT
    assert result.findings == []
    assert result.other_problems == []
    # the same event written by this deployment, inside the window, counts
    fresh = _record(
        "E3",
        "timeline_recent",
        {
            "instance": "aaaaaaaaaaaa",
            "events": [
                {"ts": (NOW - timedelta(minutes=1)).isoformat(), "kind": "config_reload",
                 "severity": "error", "subject": "config", "summary": "reload failed",
                 "data": {"origin_instance": "aaaaaaaaaaaa"}},
            ],
        },
    )  # fmt: skip
    config = _node("backend/config", kind="check", component="config", source="report")
    result = analyse([_topology(_stack(config)), fresh], question="is everything ok?")
    assert (result.root_cause.component, result.root_cause.category) == ("config", "configuration")


# --- LLM citations are checked with the same rules ------------------------------------------
def test_a_citation_supports_only_what_its_record_shows() -> None:
    records = [_topology(_stack(database=_latency(801))), _groups()]
    assert supported(records, "postgres", "latency", ["E1"])
    assert not supported(records, "database", "unreachable", ["E1"])
    assert not supported(records, "database", "latency", ["E2"])  # the logs show nothing


# --- one entry point for evidence collectors, one table of tool names -----------------------
def test_a_new_collector_plugs_in_at_one_place(monkeypatch: pytest.MonkeyPatch) -> None:
    def metrics(record: EvidenceRecord, context: RuleInput) -> Iterator[Signal]:
        yield Signal(
            component="redis",
            category="latency",
            severity="warning",
            title="redis p99 250 ms",
            evidence_id=record["id"],
        )

    monkeypatch.setitem(rules.COLLECTORS, "metrics", metrics)
    monkeypatch.setattr(
        "agent.analyzers.role_of", lambda tool: "metrics" if "metrics" in tool else role_of(tool)
    )
    records = [_topology(_stack()), _record("E2", "metrics_query", {"series": []})]
    result = analyse(records, question="why is the cache slow?")
    assert (result.root_cause.component, result.root_cause.category) == ("redis", "latency")
    assert result.root_cause.evidence_ids == ["E2"]


def test_the_agent_finds_its_tools_through_the_one_table() -> None:
    """No module of the agent but agent/toolnames.py looks a tool up by name keywords."""
    root = Path(__file__).resolve().parents[2] / "agent"
    offenders: list[str] = []
    for path in root.rglob("*.py"):
        if path.name == "toolnames.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "find"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "tools"
            ):
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []
    assert {"topology", "health", "circuits", "errors", "timeline", "browser_errors"} <= set(
        TOOL_ROLES
    )
    assert role_of("health_topology") == "topology"
    assert role_of("circuits_list_breakers") == "circuits"
    assert role_of("browser_recent_errors") == "browser_errors"


def test_errors_that_name_no_component_are_the_entry_services_when_nothing_else_explains() -> None:
    """40 errors in the watched logs, no field naming a component, a model with nothing
    wrong: the application's own error spike (the critical service), never dev3000's, never
    a component read from the message."""
    spike = _groups(_group("unhandled error in apply_discount: postgresql://db refused", 40))
    for question in ("why are some orders failing with 500?", "is everything ok?"):
        result = analyse([_topology(_stack()), spike], question=question)
        assert (result.root_cause.component, result.root_cause.category) == (
            "backend",
            "error_spike",
        ), question
        assert result.status == "degraded"
    # with a fault on the path that explains it, the spike only supports it
    slow = analyse(
        [_topology(_stack(database=_latency(801))), spike], question="why are orders slow?"
    )
    assert (slow.root_cause.component, slow.root_cause.category) == ("database", "latency")


# --- what users see: the watched page ------------------------------------------------------
@pytest.mark.parametrize(
    "question",
    [
        "the promotions banner on the shop page is empty, why?",
        "the orders list does not load",
        "why is the checkout page blank?",
        "prices are missing on the product page",
        "the dashboard won't render",
    ],
)
def test_a_page_that_shows_nothing_is_a_failing_symptom(question: str) -> None:
    assert read_symptom(question).kind == "failing"


def _browser(*items: dict[str, Any], eid: str = "E3") -> EvidenceRecord:
    return _record(eid, "browser_errors", {"records": list(items)})


def _failed_fetch(cid: str, path: str = "/api/v1/promotions", ts: datetime = NOW) -> dict[str, Any]:
    url = f"http://127.0.0.1:8080{path}"
    return {"ts": ts.isoformat(), "kind": "request", "level": "error", "url": url,
            "message": f"GET {url} → 500 Internal Server Error", "correlation_id": cid}  # fmt: skip


def _trace(cid: str, message: str, eid: str = "E4") -> EvidenceRecord:
    line: dict[str, JsonValue] = {"source": "app.jsonl", "level": "error", "message": message,
                                  "correlation_id": cid}  # fmt: skip
    return EvidenceRecord(id=eid, tool="logs_trace", arguments={"correlation_id": cid}, ok=True,
                          data={"entries": [line]}, error=None, excerpt="", turn=0)  # fmt: skip


def _served(model: StackModel) -> StackModel:
    """``model`` with the backend probed at the origin the page calls."""
    nodes = [n.model_copy(update={"url": "http://127.0.0.1:8080/health"})
             if n.id == "backend" else n for n in model.nodes]  # fmt: skip
    return model.model_copy(update={"nodes": nodes})


def test_a_failed_request_of_the_page_traced_to_an_untyped_backend_error_is_the_backends() -> None:
    """The page's GET /api/v1/promotions answered 500; the backend logged an error with the
    same correlation id and no error_code: the backend at that origin fails on that path,
    whatever the health probes say (they are all healthy here)."""
    records = [
        _topology(_served(_stack())),
        _browser(_failed_fetch("c0ffee")),
        _trace("c0ffee", "promotions lookup failed: pricing rules unavailable"),
    ]
    result = analyse(records, question="the promotions banner on the shop page is empty, why?")
    assert (result.root_cause.component, result.root_cause.category) == ("backend", "error_spike")
    assert "pricing rules unavailable" in result.root_cause.summary
    assert {"E3", "E4"} <= set(result.root_cause.evidence_ids)
    # a request to an origin no node of the model serves names no component by itself: with
    # nothing else on the path, it is the entry service's, like any error naming none
    elsewhere = [_topology(_stack()), records[1], records[2]]
    other = analyse(elsewhere, question="the promotions banner on the shop page is empty, why?")
    assert (other.root_cause.component, other.root_cause.category) == ("backend", "error_spike")


def test_the_pages_own_exception_answers_a_question_about_the_page_only() -> None:
    exception = {"ts": NOW.isoformat(), "kind": "exception", "level": "error",
                 "url": "http://127.0.0.1:8080/app",
                 "message": "uncaught TypeError: Cannot read properties of undefined"}  # fmt: skip
    records = [_topology(_served(_stack())), _browser(exception, exception)]
    for question in ("the orders page is blank, why?", "why is the frontend broken?",
                     "is everything ok?"):  # fmt: skip
        result = analyse(records, question=question)
        assert (result.root_cause.component, result.root_cause.category) == (
            "frontend",
            "error_spike",
        ), question
        assert "2× uncaught TypeError" in result.root_cause.summary
    # slow orders are not what a page's exception explains: another problem, not the cause
    slow = analyse(records, question="why are orders slow?")
    assert slow.root_cause.component == HEALTHY_COMPONENT
    assert any("uncaught TypeError" in f.title for f in slow.other_problems)


def test_a_recovered_fault_that_cannot_cause_the_symptom_is_no_answer() -> None:
    """A failed request of the page minutes ago, the backend healthy now: it is no answer to
    "why are orders slow?" (an error does not make orders slow and the model shows nothing);
    it still answers a question it explains."""
    records = [
        _topology(_served(_stack())),
        _browser(_failed_fetch("c0ffee", ts=NOW - timedelta(minutes=4))),
        _trace("c0ffee", "promotions lookup failed: pricing rules unavailable"),
    ]
    slow = analyse(records, question="why are orders slow?")
    assert slow.root_cause.component == HEALTHY_COMPONENT
    failing = analyse(records, question="why is the promotions page failing?")
    assert failing.root_cause.component == "backend"


def test_a_slow_page_load_is_a_latency_of_the_service_that_served_the_slowest_resource() -> None:
    slow_load = {"ts": NOW.isoformat(), "kind": "navigation", "level": "warning",
                 "url": "http://127.0.0.1:8080/app",
                 "message": "slow page load: loaded http://127.0.0.1:8080/app in 4.1 s; "
                            "slowest http://127.0.0.1:8080/app/style.css 4.0 s",
                 "data": {"load_ms": 4100, "slowest": [
                     {"url": "http://127.0.0.1:8080/app/style.css", "ms": 4000}]}}  # fmt: skip
    records = [_topology(_served(_stack())), _browser(slow_load)]
    for question in ("the shop page takes ages to load", "why is the website sluggish?"):
        assert read_symptom(question).kind == "slow"
        result = analyse(records, question=question)
        assert (result.root_cause.component, result.root_cause.category) == (
            "backend",
            "latency",
        ), question
        assert "style.css" in result.root_cause.summary
    # served from nowhere the model knows: the page's own
    elsewhere = analyse([_topology(_stack()), records[1]], question="the page takes ages")
    assert (elsewhere.root_cause.component, elsewhere.root_cause.category) == (
        "frontend",
        "latency",
    )
