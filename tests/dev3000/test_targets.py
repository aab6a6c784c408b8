"""The runtime targets registry: CRUD, list filters and pages, bulk, immediate checks,
persistence across restarts (SQLite and Redis), and targets in deep health."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tools.harness import ServerThread, free_port


@pytest.fixture
def upstream(stack_service: ServerThread) -> ServerThread:
    """A live HTTP service: /health 200, /broken 500."""
    return stack_service


def test_crud_with_immediate_check(api: TestClient, upstream: ServerThread) -> None:
    r = api.post("/api/v1/targets", json={"name": "up", "url": upstream.url, "critical": True})
    assert r.status_code == 201
    assert r.headers["location"] == "/api/v1/targets/up"
    body = r.json()
    assert body["last_check"]["status"] == "healthy"
    assert body["last_check"]["details"]["status_code"] == 200
    assert api.get("/api/v1/targets/up").json()["last_check"]["status"] == "healthy"

    dup = api.post("/api/v1/targets", json={"name": "up", "url": upstream.url})
    assert dup.status_code == 409
    assert dup.headers["content-type"].startswith("application/problem+json")

    patched = api.patch("/api/v1/targets/up", json={"path": "/broken"})
    assert patched.status_code == 200
    assert patched.json()["path"] == "/broken"
    assert patched.json()["last_check"]["status"] == "unhealthy"
    assert "500" in patched.json()["last_check"]["error"]

    replaced = api.put(
        "/api/v1/targets/up", json={"name": "up", "url": upstream.url, "tags": ["x"]}
    )
    assert replaced.status_code == 200
    assert replaced.json()["tags"] == ["x"]
    assert replaced.json()["path"] == "/health"
    mismatch = api.put("/api/v1/targets/up", json={"name": "other", "url": upstream.url})
    assert mismatch.status_code == 422

    assert api.delete("/api/v1/targets/up").status_code == 204
    assert api.get("/api/v1/targets/up").status_code == 404
    assert api.delete("/api/v1/targets/up").status_code == 404


def test_unreachable_target_is_unhealthy_at_once(api: TestClient) -> None:
    r = api.post(
        "/api/v1/targets",
        json={"name": "gone", "kind": "tcp", "url": f"tcp://127.0.0.1:{free_port()}"},
    )
    assert r.status_code == 201
    assert r.json()["last_check"]["status"] == "unhealthy"
    assert r.json()["last_check"]["error"]


def test_list_filters_and_pagination(api: TestClient) -> None:
    targets = [
        {"name": f"svc-{i:02d}", "kind": "tcp", "url": "tcp://127.0.0.1:1", "critical": i % 3 == 0}
        | ({"tags": ["db"]} if i < 2 else {})
        for i in range(7)
    ]
    r = api.post("/api/v1/targets/bulk", json={"targets": targets})
    assert r.status_code == 201
    assert len(r.json()) == 7
    page = api.get("/api/v1/targets", params={"limit": 3}).json()
    assert [t["name"] for t in page["items"]] == ["svc-00", "svc-01", "svc-02"]
    assert page["total"] == 7
    assert page["next_offset"] == 3
    last = api.get("/api/v1/targets", params={"limit": 3, "offset": 6}).json()
    assert [t["name"] for t in last["items"]] == ["svc-06"]
    assert last["next_offset"] is None
    crit = api.get("/api/v1/targets", params={"critical": "true"}).json()
    assert [t["name"] for t in crit["items"]] == ["svc-00", "svc-03", "svc-06"]
    tagged = api.get("/api/v1/targets", params={"tag": "db"}).json()
    assert tagged["total"] == 2
    assert api.get("/api/v1/targets", params={"q": "svc-05"}).json()["total"] == 1
    assert api.get("/api/v1/targets", params={"kind": "http"}).json()["total"] == 0


def test_bulk_create_is_all_or_nothing_and_bulk_delete(api: TestClient) -> None:
    one = {"name": "a1", "kind": "tcp", "url": "tcp://127.0.0.1:1"}
    assert api.post("/api/v1/targets", json=one).status_code == 201
    r = api.post(
        "/api/v1/targets/bulk",
        json={"targets": [one | {"name": "a2"}, one]},  # a1 exists: nothing is added
    )
    assert r.status_code == 409
    assert api.get("/api/v1/targets/a2").status_code == 404
    dup = api.post("/api/v1/targets/bulk", json={"targets": [one | {"name": "z"}] * 2})
    assert dup.status_code == 422
    api.post("/api/v1/targets/bulk", json={"targets": [one | {"name": "a2"}, one | {"name": "a3"}]})
    gone = api.post("/api/v1/targets/bulk-delete", json={"names": ["a1", "a3", "nope"]}).json()
    assert gone == {"deleted": ["a1", "a3"], "missing": ["nope"]}
    assert [t["name"] for t in api.get("/api/v1/targets").json()["items"]] == ["a2"]


def test_targets_persist_across_restart_sqlite(make_app: Callable[..., FastAPI]) -> None:
    with TestClient(make_app()) as client:
        assert (
            client.post(
                "/api/v1/targets", json={"name": "keep", "kind": "tcp", "url": "tcp://127.0.0.1:1"}
            ).status_code
            == 201
        )
    with TestClient(make_app()) as client:  # same data dir (make_settings' tmp_path)
        assert client.get("/api/v1/targets/keep").status_code == 200
        assert client.get("/api/v1/targets").json()["total"] == 1


def test_targets_persist_and_are_shared_through_redis(
    make_app: Callable[..., FastAPI], redis_url: str, redis_prefix: str
) -> None:
    def app() -> FastAPI:
        return make_app(redis_url=redis_url, redis_prefix=redis_prefix)

    with TestClient(app()) as first, TestClient(app()) as second:
        r = first.post(
            "/api/v1/targets", json={"name": "shared", "kind": "tcp", "url": "tcp://127.0.0.1:1"}
        )
        assert r.status_code == 201
        assert second.get("/api/v1/targets/shared").status_code == 200
        assert second.get("/api/v1/diag/status").json()["targets"]["backend"] == "redis"
    with TestClient(app()) as restarted:
        assert restarted.get("/api/v1/targets/shared").status_code == 200


def test_runtime_targets_feed_deep_health(api: TestClient, upstream: ServerThread) -> None:
    api.post("/api/v1/targets", json={"name": "web", "url": upstream.url, "critical": True})
    body = api.get("/api/v1/health/deep").json()
    assert body["checks"]["targets"]["web"]["status"] == "healthy"
    # a change drops the cached round: the next report checks the changed target
    api.patch("/api/v1/targets/web", json={"path": "/broken"})
    r = api.get("/api/v1/health/deep")
    assert r.status_code == 503  # a critical target failed
    assert r.json()["checks"]["targets"]["web"]["status"] == "unhealthy"
    api.delete("/api/v1/targets/web")
    assert "web" not in api.get("/api/v1/health/deep").json()["checks"]["targets"]


def test_target_events_reach_the_timeline(api: TestClient, upstream: ServerThread) -> None:
    api.post("/api/v1/targets", json={"name": "evt", "url": upstream.url})
    events = api.get("/api/v1/timeline", params={"sources": "targets"}).json()["items"]
    assert events[0]["subject"] == "evt"
    assert "healthy" in events[0]["summary"]


def test_target_credentials_are_masked_on_every_surface(
    make_app: Callable[..., FastAPI], upstream: ServerThread
) -> None:
    from tests.planted import leaks, one_of_each

    pw = next(p for p in one_of_each(seed=7) if p.kind == "dsn")
    password = pw.secret
    http_url = upstream.url.replace("http://", f"http://svc:{password}@")
    pg_url = f"postgresql://app:{password}@127.0.0.1:{free_port()}/main"
    with TestClient(make_app()) as api:
        seen: list[str] = []
        for body in (
            {"name": "web", "url": http_url},
            {"name": "db", "kind": "postgres", "url": pg_url, "critical": True},
        ):
            r = api.post("/api/v1/targets", json=body)
            assert r.status_code == 201, r.text
            assert "***REDACTED***@" in r.json()["url"]
            seen.append(r.text)
        seen.append(api.get("/api/v1/targets").text)
        seen.append(api.get("/api/v1/targets/db").text)
        seen.append(api.post("/api/v1/targets/web/check").text)
        seen.append(api.patch("/api/v1/targets/web", json={"path": "/broken"}).text)
        seen.append(api.put("/api/v1/targets/web", json={"name": "web", "url": http_url}).text)
        seen.append(api.get("/api/v1/timeline", params={"sources": "targets"}).text)
        seen.append(api.get("/api/v1/health/deep").text)
        # the list's q filter is no oracle for the password, a character at a time
        assert api.get("/api/v1/targets", params={"q": password[:4]}).json()["total"] == 0
        # the real URL is still what the checks use: the http target is healthy
        assert api.get("/api/v1/targets/web").json()["last_check"]["status"] == "healthy"

    text = "\n".join(seen)
    assert leaks(text, [pw]) == [], text[:2000]
