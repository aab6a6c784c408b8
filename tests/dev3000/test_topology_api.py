"""The stack model over HTTP: ``/api/v1/health/deep`` says why, ``/api/v1/diag/topology``
serves the graph (redacted, behind the read key when auth is required).

A real backend stands in for the watched service: its own seed deep report shows a slow
database (degraded), so dev3000's deep report and model must name that database, under the
backend, as the reason — and a never-started agent is absent, not the cause."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from guilde_core.stack import StackModel
from tools.harness import ServerThread, free_port

_RANK = {"healthy": 0, "degraded": 1, "unhealthy": 2}
READ_KEY = "topology-read-key-000001"
SECRET = "s3cr3t-topology-pw"


@pytest.fixture(scope="module")
def slow_db_backend() -> Iterator[ServerThread]:
    """A backend whose own deep report shows its database over the latency threshold."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    async def health(_: Request) -> Response:
        return JSONResponse(
            {
                "status": "degraded",
                "checks": {
                    "database": {
                        "status": "degraded",
                        "latency_ms": 801.0,
                        "critical": True,
                        "warning": "latency 801 ms > 100 ms",
                    },
                    "redis": {"status": "healthy", "latency_ms": 1.2},
                    "external_apis": {"openai": {"status": "healthy", "circuit_state": "closed"}},
                },
            }
        )

    app = Starlette(routes=[Route("/api/v1/health", health)])
    with ServerThread(app) as server:
        yield server


def _checks(value: Any, path: str = "checks") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every check of a deep report's ``checks`` (groups, targets and their children)."""
    if not isinstance(value, dict):
        return
    if "status" in value:
        yield path, value
        for name, child in (value.get("children") or {}).items():
            yield from _checks(child, f"{path}.children.{name}")
        return
    for name, child in value.items():
        yield from _checks(child, f"{path}.{name}")


def explaining(body: dict[str, Any]) -> list[str]:
    """The checks of ``body`` that explain its status: counted (not absent), as bad as the
    status (a non-critical unhealthy one explains degraded too) and with reasons."""
    status = body["status"]
    out = []
    for path, check in _checks(body["checks"]):
        reasons = check.get("reasons") or []
        if check.get("absent") or check["status"] == "healthy" or not reasons:
            continue
        if _RANK[check["status"]] >= _RANK[status] and all(r.get("category") for r in reasons):
            out.append(path)
    return out


def _app(make_app: Callable[..., FastAPI], backend: str, **overrides: Any) -> FastAPI:
    overrides.setdefault("dev3000_agent_url", f"http://127.0.0.1:{free_port()}")
    return make_app(
        dev3000_backend_url=backend,
        dev3000_frontend_url="",
        health_check_cache_ttl=30,
        health_check_timeout=2,
        **overrides,
    )


def test_a_status_other_than_healthy_comes_with_a_check_that_explains_it(
    make_app: Callable[..., FastAPI], slow_db_backend: ServerThread
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    cases = {
        "slow database": (slow_db_backend.url, {}),
        "dead critical backend": (dead, {}),
        "anonymous, auth required": (
            slow_db_backend.url,
            {"diagnostic_auth_required": True, "diagnostic_api_keys": f"{READ_KEY}:read"},
        ),
    }
    seen: set[str] = set()
    for case, (backend, overrides) in cases.items():
        with TestClient(_app(make_app, backend, **overrides)) as client:
            r = client.get("/api/v1/health/deep")
        body = r.json()
        seen.add(body["status"])
        assert body["status"] != "healthy", case  # a fault is there in every case
        assert explaining(body), f"{case}: {body['status']} and no check says why: {body}"
        assert (r.status_code == 503) is (body["status"] == "unhealthy")
        if case == "slow database":
            # the watched backend's own report fills checks.database, with the reason
            assert body["checks"]["database"]["status"] == "degraded"
            assert body["checks"]["database"]["reasons"][0]["category"] == "latency"
            backend_check = body["checks"]["targets"]["backend"]
            child = backend_check["children"]["database"]
            assert child["reasons"][0]["category"] == "latency"
            assert "801" in child["reasons"][0]["summary"]
            agent = body["checks"]["targets"]["agent"]
            assert agent["absent"] is True  # never started: shown, not the reason
            assert "checks.targets.agent" not in explaining(body)
        if case == "anonymous, auth required":  # reduced to statuses and categories
            agent = body["checks"]["targets"]["agent"]
            assert agent == {"status": "unhealthy", "absent": True, "reasons": agent["reasons"]}
            assert "checks.targets.backend.children.database" in explaining(body)
        if case == "dead critical backend":
            assert body["status"] == "unhealthy"
            assert "checks.targets.backend" in explaining(body)
    assert seen == {"degraded", "unhealthy"}


def test_the_topology_route_serves_the_model_of_the_same_round(
    make_app: Callable[..., FastAPI], slow_db_backend: ServerThread
) -> None:
    app = _app(make_app, slow_db_backend.url)
    with TestClient(app) as client:
        # a registry target with a password in its URL: used to probe, never shown
        port = slow_db_backend.url.rsplit(":", 1)[1]
        created = client.post(
            "/api/v1/targets",
            json={
                "name": "orders",
                "url": f"http://svc:{SECRET}@127.0.0.1:{port}",
                "path": "/api/v1/health",
                "depends_on": ["database"],
            },
        )
        assert created.status_code == 201, created.text
        r = client.get("/api/v1/diag/topology")
        deep = client.get("/api/v1/health/deep").json()
        compact = client.get("/api/v1/diag/topology", params={"compact": "true"})
        fresh = client.get("/api/v1/diag/topology", params={"fresh": "true"})
        bad = client.get("/api/v1/diag/topology", params={"fresh": "maybe"})
    assert r.status_code == 200
    assert SECRET not in r.text
    assert SECRET not in compact.text
    assert SECRET not in fresh.text
    model = StackModel.model_validate(r.json())
    assert model.status == deep["status"] == "degraded"  # one round behind both
    database = model.node("backend/database")
    assert database.parent == "backend"
    assert database.cause is not None
    assert database.cause.category == "latency"
    assert [n.id for n in model.deepest_fault("backend") or []] == ["backend", "backend/database"]
    assert model.node("agent").absent
    assert model.node("agent") not in model.explaining()
    orders = model.node("orders")
    assert orders.source == "registry"
    assert orders.url is not None
    assert SECRET not in orders.url
    assert "orders/database" in {d.id for d in model.dependencies("orders")}
    # compact: defaults left out, reads back as the same graph
    short = compact.json()
    assert len(compact.text) < len(r.text)
    assert StackModel.model_validate(short).nodes == model.nodes
    assert StackModel.model_validate(fresh.json()).status == "degraded"
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")


def test_the_topology_route_needs_the_read_key_when_auth_is_required(
    make_app: Callable[..., FastAPI], slow_db_backend: ServerThread
) -> None:
    app = _app(
        make_app,
        slow_db_backend.url,
        diagnostic_auth_required=True,
        diagnostic_api_keys=f"{READ_KEY}:read",
    )
    with TestClient(app) as client:
        anonymous = client.get("/api/v1/diag/topology")
        keyed = client.get("/api/v1/diag/topology", headers={"X-API-Key": READ_KEY})
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"].startswith("application/problem+json")
    assert keyed.status_code == 200
    assert StackModel.model_validate(keyed.json()).node("backend/database").faulty
