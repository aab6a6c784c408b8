"""API keys and scopes: parsing, hashing, the 401/403 matrix, MCP and stream protection."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from guilde_core.config import Settings
from guilde_core.errors import ConfigurationError
from guilde_core.http.auth import (
    ANONYMOUS,
    AuthFailure,
    Keyring,
    authenticate,
    extract_token,
    parse_api_keys,
)

READ_KEY = "read-key-0123456789"
CONTROL_KEY = "control-key-9876543210"
HASHED_KEY = "hashed-key-abcdef"
KEYS = f"{READ_KEY}:read,{CONTROL_KEY}:read+control,sha256:{hashlib.sha256(HASHED_KEY.encode()).hexdigest()}:read"


def test_parse_plain_and_hashed_keys_keeps_only_digests() -> None:
    entries = parse_api_keys(KEYS)
    assert [sorted(e.scopes) for e in entries] == [["read"], ["control", "read"], ["read"]]
    for entry in entries:
        assert READ_KEY.encode() not in entry.digest
        assert len(entry.digest) == 32
    ring = Keyring(entries)
    assert ring.identify(HASHED_KEY) is not None
    assert ring.identify(READ_KEY) is not None
    assert ring.identify("sha256:" + hashlib.sha256(HASHED_KEY.encode()).hexdigest()) is None
    assert ring.identify("nope") is None
    assert READ_KEY not in repr(ring)


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("justakey", "no scopes"),
        ("k:admin", "unknown scopes"),
        ("sha256:1234:read", "64 hex"),
        (":read", "empty key"),
    ],
)
def test_bad_key_specs_name_the_variable(spec: str, fragment: str) -> None:
    with pytest.raises(ConfigurationError) as err:
        parse_api_keys(spec)
    assert "DIAGNOSTIC_API_KEYS" in str(err.value)
    assert fragment in str(err.value)


def test_extract_token_from_header_bearer_and_query() -> None:
    assert extract_token({"x-api-key": "a"}) == "a"
    assert extract_token({"authorization": "Bearer b"}) == "b"
    assert extract_token({"authorization": "Basic c"}) is None
    assert extract_token({}, {"token": "d"}) == "d"
    assert extract_token({}) is None


def test_authenticate_decisions() -> None:
    ring = Keyring.from_spec(KEYS, required=True)
    with pytest.raises(AuthFailure) as err:
        authenticate(None, ring)
    assert err.value.status == 401
    with pytest.raises(AuthFailure) as err:
        authenticate("wrong", ring)
    assert err.value.status == 401
    with pytest.raises(AuthFailure) as err:
        authenticate(READ_KEY, ring, action="control")
    assert err.value.status == 403
    assert authenticate(CONTROL_KEY, ring, action="control").has("control")
    # unprotected resources let anonymous callers in even when auth is required
    assert authenticate(None, ring, protected=False) is ANONYMOUS
    optional = Keyring.from_spec(KEYS, required=False)
    assert authenticate(None, optional, action="control") is ANONYMOUS
    with pytest.raises(AuthFailure):  # a wrong key is refused even when auth is optional
        authenticate("wrong", optional)


@pytest.fixture
def secured(make_app: Callable[..., FastAPI]) -> Iterator[TestClient]:
    app = make_app(diagnostic_auth_required=True, diagnostic_api_keys=KEYS, mcp=True)
    with TestClient(app) as client:
        yield client


READ_ROUTES = [
    ("GET", "/api/v1/diag/status"),
    ("GET", "/api/v1/timeline"),
    ("GET", "/api/v1/targets"),
]
OPEN_ROUTES = ["/health", "/api/v1/health", "/api/v1/health/live", "/api/v1/health/ready"]


@pytest.mark.parametrize(("method", "path"), READ_ROUTES)
def test_read_routes_matrix(secured: TestClient, method: str, path: str) -> None:
    none = secured.request(method, path)
    assert none.status_code == 401
    assert none.headers["content-type"].startswith("application/problem+json")
    assert "www-authenticate" in none.headers
    assert secured.request(method, path, headers={"X-API-Key": "wrong"}).status_code == 401
    for key in (READ_KEY, CONTROL_KEY, HASHED_KEY):
        ok = secured.request(method, path, headers={"X-API-Key": key})
        assert ok.status_code in (200, 503), (key, ok.text)  # 503 only if status is unhealthy
    bearer = secured.request(method, path, headers={"Authorization": f"Bearer {READ_KEY}"})
    assert bearer.status_code in (200, 503)


def test_control_needs_control_scope(secured: TestClient) -> None:
    body = {"name": "t1", "kind": "tcp", "url": "tcp://127.0.0.1:1"}
    assert secured.post("/api/v1/targets", json=body).status_code == 401
    forbidden = secured.post("/api/v1/targets", json=body, headers={"X-API-Key": READ_KEY})
    assert forbidden.status_code == 403
    assert "control" in forbidden.json()["detail"]
    created = secured.post("/api/v1/targets", json=body, headers={"X-API-Key": CONTROL_KEY})
    assert created.status_code == 201
    r = secured.post(
        "/api/v1/diag/circuits/x/open", json={"reason": "test"}, headers={"X-API-Key": READ_KEY}
    )
    assert r.status_code == 403


@pytest.mark.parametrize("path", OPEN_ROUTES)
def test_probes_never_need_a_key(secured: TestClient, path: str) -> None:
    assert secured.get(path).status_code == 200


def test_deep_health_details_need_a_key(secured: TestClient) -> None:
    anonymous = secured.get("/api/v1/health/deep").json()
    assert "diagnostics" not in anonymous

    def reduced(check: Any) -> bool:
        """Only statuses, the categories of reasons, and children reduced the same way."""
        if not isinstance(check, dict):
            return False
        if "status" not in check:
            return all(reduced(v) for v in check.values())
        reasons = check.get("reasons", [])
        return (
            set(check) <= {"status", "reasons", "children"}
            and all(set(r) == {"category"} for r in reasons)
            and all(reduced(v) for v in check.get("children", {}).values())
        )

    for check in anonymous["checks"].values():
        assert check is None or reduced(check), check
    assert anonymous["checks"]["targets"]["backend"]["status"] == "healthy"
    detailed = secured.get("/api/v1/health/deep", headers={"X-API-Key": READ_KEY}).json()
    assert "diagnostics" in detailed
    assert secured.get("/api/v1/health/deep", headers={"X-API-Key": "wrong"}).status_code == 401


def test_mcp_endpoint_needs_a_key(secured: TestClient) -> None:
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        },
    }
    headers = {"accept": "application/json, text/event-stream"}
    r = secured.post("/mcp", json=init, headers=headers)
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    ok = secured.post("/mcp", json=init, headers={**headers, "X-API-Key": READ_KEY})
    assert ok.status_code == 200
    assert "serverInfo" in ok.text
    assert secured.get("/sse").status_code == 401


def test_stream_needs_a_key(secured: TestClient) -> None:
    r = secured.get("/api/v1/diag/stream/sse")
    assert r.status_code == 401


def test_auth_optional_lets_anonymous_callers_control(make_app: Callable[..., FastAPI]) -> None:
    with TestClient(make_app(diagnostic_api_keys=KEYS)) as client:
        assert client.get("/api/v1/diag/status").status_code in (200, 503)
        body = {"name": "t2", "kind": "tcp", "url": "tcp://127.0.0.1:1"}
        assert client.post("/api/v1/targets", json=body).status_code == 201
        # a key that is sent is still checked
        r = client.post(
            "/api/v1/targets", json=body | {"name": "t3"}, headers={"X-API-Key": READ_KEY}
        )
        assert r.status_code == 403


@pytest.mark.parametrize(
    "overrides",
    [{"dev3000_mode": "staging"}, {"dev3000_host": "0.0.0.0"}],
    ids=["staging", "non-loopback-bind"],
)
def test_anonymous_control_is_refused_where_exposed(
    make_app: Callable[..., FastAPI], overrides: dict[str, str]
) -> None:
    """Secure by default: outside development, or bound to a non-loopback address, a caller
    without a key may still read (auth optional) but every control route is a 403 problem
    naming the fix; with a control key it works."""
    app = make_app(
        dev3000_enabled=True, diagnostic_api_keys=f"{CONTROL_KEY}:read+control", **overrides
    )
    with TestClient(app) as client:
        assert client.get("/api/v1/diag/circuits").status_code == 200
        for method, path, body in (
            ("POST", "/api/v1/diag/circuits/openai/open", {"reason": "anonymous tries"}),
            ("POST", "/api/v1/targets", {"name": "t1", "url": "tcp://127.0.0.1:1"}),
            ("DELETE", "/api/v1/targets/t1", None),
        ):
            refused = client.request(method, path, json=body)
            assert refused.status_code == 403, (path, refused.text)
            problem = refused.json()
            assert problem["type"].endswith("/control_needs_key")
            assert "DIAGNOSTIC_API_KEYS" in problem["detail"]
            assert "read+control" in problem["detail"]
        done = client.post(
            "/api/v1/diag/circuits/openai/open",
            json={"reason": "with the key"},
            headers={"X-API-Key": CONTROL_KEY},
        )
        assert done.status_code == 200, done.text


def test_development_on_loopback_keeps_anonymous_control(make_app: Callable[..., FastAPI]) -> None:
    with TestClient(make_app()) as client:
        r = client.post("/api/v1/diag/circuits/openai/reset", json={"reason": "local dev"})
        assert r.status_code == 200, r.text


def test_profiles_log_at_info_outside_development(monkeypatch: pytest.MonkeyPatch) -> None:
    from guilde_core.config import Settings, reset_settings_cache

    for mode, level in (("development", "debug"), ("staging", "info"), ("production", "info")):
        monkeypatch.setenv("DEV3000_MODE", mode)
        reset_settings_cache()
        assert Settings().dev3000_log_level == level, mode


def test_agent_web_reaches_a_keyed_dev3000_with_its_api_key(
    make_app: Callable[..., FastAPI], tmp_path: Any
) -> None:
    """``dev3000 agent web --api-key`` (``DEV3000_API_KEY``): the key agent-web's MCP
    connection sends, so its approved control actions pass dev3000's decision."""
    from agent.web import create_app as agent_web
    from tools.harness import ServerThread

    dev3000 = make_app(mcp=True, diagnostic_auth_required=True, diagnostic_api_keys=KEYS)
    with ServerThread(dev3000) as srv:
        for key, reachable in ((None, False), (CONTROL_KEY, True)):
            app = agent_web(
                Settings(dev3000_data_dir=str(tmp_path)),
                mcp_url=srv.url + "/mcp",
                mcp_api_key=key,
                checkpointer="memory",
            )
            with TestClient(app, base_url="http://127.0.0.1:8001") as client:
                created = client.post("/api/v1/sessions", json={"title": "keyed"})
                assert (created.status_code == 201) is reachable, created.text


def test_a_reload_keeps_the_bound_address_posture(make_app: Callable[..., FastAPI]) -> None:
    """``serve --host 0.0.0.0`` then SIGHUP: the environment says nothing of the bind
    address, but the running one stays what decides exposure."""
    from dev3000.app import reload_config

    app = make_app(dev3000_host="0.0.0.0")
    with TestClient(app) as client:
        body = {"reason": "anonymous tries"}
        assert client.post("/api/v1/diag/circuits/openai/open", json=body).status_code == 403
        reload_config(app)
        assert app.state.keyring.posture.exposed == "bound to 0.0.0.0, not loopback"
        assert client.post("/api/v1/diag/circuits/openai/open", json=body).status_code == 403
