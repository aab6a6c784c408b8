"""Host and Origin: the one check (``guilde_core.http.hosts``) in front of dev3000's routes,
``/mcp``, ``/sse``, the WebSocket stream, agent-web and an MCP server run on its own —
DNS rebinding refused, probes left to the orchestrator, CORS only by allow-list."""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Origin

from guilde_core.config import Settings
from guilde_core.http.hosts import HostPolicy, host_name
from tools.harness import ManagedProcess, ServerThread, free_port, wait_for_http

EVIL = {"Host": "evil.example.com", "Origin": "http://evil.example.com"}
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "rebinding-test", "version": "1"},
    },
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


# --- the decision --------------------------------------------------------------------------
def test_host_names_are_names_without_ports() -> None:
    assert host_name("LocalHost:3001") == "localhost"
    assert host_name("[::1]:80") == host_name("[0:0:0:0:0:0:0:1]") == "[::1]"
    assert host_name("127.0.0.1") == "127.0.0.1"
    for bad in (None, "", "::1", "[::1]x", "a b", "host:port", "user@host"):
        assert host_name(bad) is None, bad


def test_the_policy_allows_loopback_the_bind_address_and_the_setting() -> None:
    policy = HostPolicy.build("10.1.2.3", ["dev3000", "*.svc.cluster.local"], [])
    for host in ("localhost:3001", "127.0.0.1", "[::1]:3001", "10.1.2.3:3001", "dev3000:3001",
                 "dev3000.ops.svc.cluster.local"):  # fmt: skip
        assert policy.check({"host": host}) is None, host
    for host in ("evil.example.com", "svc.cluster.local", "dev3000.evil.com", "10.1.2.4", ""):
        refusal = policy.check({"host": host})
        assert refusal is not None, host
        assert refusal.status == 421, host
        assert "DEV3000_ALLOWED_HOSTS" in refusal.detail
    # every address is no name: 0.0.0.0 adds nothing
    assert HostPolicy.build("0.0.0.0").hosts == ("localhost", "127.0.0.1", "[::1]")


def test_an_origin_must_be_on_an_allowed_host_or_listed() -> None:
    policy = HostPolicy.build("127.0.0.1", [], ["https://console.example.com"])
    ok = {"host": "127.0.0.1:3001"}
    assert policy.check(ok) is None  # no Origin: not a browser, or same-origin navigation
    for origin in ("http://127.0.0.1:3001", "http://localhost:5173", "https://[::1]",
                   "https://console.example.com", "https://CONSOLE.example.com/"):  # fmt: skip
        assert policy.check({**ok, "origin": origin}) is None, origin
    for origin in ("http://evil.example.com", "null", "file://", "https://console.example.com:8443",
                   "ftp://localhost", "http://localhost:99999", "http://localhost/path"):  # fmt: skip
        refusal = policy.check({**ok, "origin": origin})
        assert refusal is not None, origin
        assert refusal.status == 403, origin
        assert "DEV3000_CORS_ORIGINS" in refusal.detail


def test_settings_refuse_malformed_hosts_and_origins() -> None:
    with pytest.raises(ValidationError, match="not a host name"):
        Settings(dev3000_allowed_hosts="http://dev3000")
    with pytest.raises(ValidationError, match="not a host name"):
        Settings(dev3000_allowed_hosts="dev3000:3001")
    with pytest.raises(ValidationError, match="not an origin"):
        Settings(dev3000_cors_origins="console.example.com")
    with pytest.raises(ValidationError, match="not an origin"):
        Settings(dev3000_cors_origins="https://console.example.com/app")
    s = Settings(dev3000_allowed_hosts=" Dev3000 ,*.svc", dev3000_cors_origins="https://A.b/")
    assert (s.dev3000_allowed_hosts, s.dev3000_cors_origins) == (
        ["dev3000", "*.svc"],
        ["https://a.b"],
    )


# --- dev3000 ---------------------------------------------------------------------------------
@pytest.fixture
def client(make_app: Callable[..., FastAPI]) -> Iterator[TestClient]:
    app = make_app(mcp=True, diagnostic_control_enabled=True)
    with TestClient(app, base_url="http://127.0.0.1:3001") as c:
        yield c


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/mcp", INIT),
        ("GET", "/sse", None),
        ("POST", "/messages/?session_id=0", INIT),
        ("POST", "/api/v1/diag/circuits/openai/open", {"reason": "rebinding"}),
        ("POST", "/api/v1/targets", {"name": "x", "url": "tcp://127.0.0.1:1"}),
        ("DELETE", "/api/v1/targets/x", None),
        ("GET", "/api/v1/timeline", None),
        ("GET", "/timeline", None),
        ("GET", "/api/v1/diag/stream", None),
    ],
)
def test_a_foreign_host_is_misdirected_and_a_foreign_origin_forbidden(
    client: TestClient, method: str, path: str, body: Any
) -> None:
    for headers, status, code in (
        (EVIL, 421, "host_not_allowed"),
        ({"Origin": "http://evil.example.com"}, 403, "origin_not_allowed"),
    ):
        r = client.request(method, path, json=body, headers={**headers, **MCP_HEADERS})
        assert r.status_code == status, (path, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["type"].endswith("/" + code)
        assert r.headers["x-request-id"]
    # nothing acted: the breaker was not forced
    listed = client.get("/api/v1/diag/circuits").json()["circuits"]
    assert all(not c["forced"] for c in listed)


def test_probes_and_metrics_answer_any_host(client: TestClient) -> None:
    """kubelet and Prometheus address a pod by its IP, which no allow-list names."""
    for path in ("/health", "/api/v1/health", "/api/v1/health/live", "/api/v1/health/ready",
                 "/metrics"):  # fmt: skip
        assert client.get(path, headers={"Host": "10.244.3.7:3001"}).status_code == 200, path


def test_the_setting_names_more_hosts_and_a_reload_applies_it(
    make_app: Callable[..., FastAPI], monkeypatch: pytest.MonkeyPatch
) -> None:
    from dev3000.app import reload_config

    app = make_app(dev3000_allowed_hosts=["dev3000"])
    with TestClient(app, base_url="http://dev3000:3001") as c:
        assert c.get("/api/v1/timeline").status_code == 200
        assert c.get("/api/v1/timeline", headers={"Host": "other:3001"}).status_code == 421
        monkeypatch.setenv("DEV3000_ALLOWED_HOSTS", "dev3000,other")
        reload_config(app)
        assert c.get("/api/v1/timeline", headers={"Host": "other:3001"}).status_code == 200


def test_cors_only_for_listed_origins(make_app: Callable[..., FastAPI]) -> None:
    preflight = {
        "Origin": "https://console.example.com",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-api-key,content-type",
    }
    with TestClient(make_app(), base_url="http://127.0.0.1:3001") as c:  # default: none
        r = c.get("/api/v1/timeline", headers={"Origin": "https://console.example.com"})
        assert r.status_code == 403
        assert "access-control-allow-origin" not in r.headers
    app = make_app(dev3000_cors_origins=["https://console.example.com"])
    with TestClient(app, base_url="http://127.0.0.1:3001") as c:
        answered = c.options("/api/v1/diag/circuits/openai/open", headers=preflight)
        assert answered.status_code == 200
        assert answered.headers["access-control-allow-origin"] == "https://console.example.com"
        r = c.get("/api/v1/timeline", headers={"Origin": "https://console.example.com"})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://console.example.com"
        other = c.get("/api/v1/timeline", headers={"Origin": "https://other.example.com"})
        assert other.status_code == 403
        assert "access-control-allow-origin" not in other.headers


def test_a_cross_site_websocket_gets_no_events(make_app: Callable[..., FastAPI]) -> None:
    with ServerThread(make_app()) as srv:
        url = srv.url.replace("http://", "ws://") + "/api/v1/diag/stream"
        with pytest.raises(InvalidStatus) as handshake:
            connect(url, origin=Origin("http://evil.example.com"), open_timeout=5, proxy=None)
        assert handshake.value.response.status_code == 403
        # a client library sets Host itself: the rebound name, by hand
        assert _ws_handshake_status(srv.port, "evil.example.com") == 403
        assert _ws_handshake_status(srv.port, f"localhost:{srv.port}") == 101
        with connect(url, origin=Origin(srv.url), open_timeout=5, proxy=None) as ws:
            assert '"hello"' in str(ws.recv(timeout=5))


def _ws_handshake_status(port: int, host: str) -> int:
    """The status a WebSocket upgrade to the stream with ``Host: host`` is answered with."""
    request = (
        "GET /api/v1/diag/stream HTTP/1.1\r\n"
        f"Host: {host}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request.encode())
        status_line = sock.recv(1024).split(b"\r\n", 1)[0]
    return int(status_line.split()[1])


# --- agent-web and a standalone MCP server -------------------------------------------------------
def test_agent_web_checks_host_and_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.web import create_app

    monkeypatch.setenv("DIAGNOSTIC_API_KEYS", "reader-key-0123:read")
    app = create_app(Settings(), mcp_url="http://127.0.0.1:9/mcp", checkpointer="memory",
                     index_path=":memory:")  # fmt: skip
    with TestClient(app, base_url="http://127.0.0.1:8001") as c:
        assert c.get("/health", headers={"Host": "10.0.0.9"}).status_code == 200
        r = c.post("/api/v1/sessions", json={}, headers=EVIL)
        assert r.status_code == 421
        r = c.post("/api/v1/sessions", json={}, headers={"Origin": "http://evil.example.com"})
        assert r.status_code == 403


def test_an_mcp_server_served_on_its_own_is_guarded_too(tmp_path: Path) -> None:
    """``dev3000 mcp circuits --transport http``: the same Host check and key guard."""
    port = free_port()
    argv = [sys.executable, "-m", "guilde_diag.cli", "mcp", "circuits", "--transport", "http",
            "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    env = {
        "DEV3000_ENV_FILE": str(tmp_path / "none.env"),
        "DEV3000_DATA_DIR": str(tmp_path / "data"),
        "DIAGNOSTIC_AUTH_REQUIRED": "true",
        "DIAGNOSTIC_API_KEYS": "solo-key-0123456789:read",
    }
    url = f"http://127.0.0.1:{port}/mcp"
    with ManagedProcess(argv, env=env):
        wait_for_http(url, timeout=30)
        with httpx.Client(timeout=5, headers=MCP_HEADERS) as http:
            assert http.post(url, json=INIT, headers=EVIL).status_code == 421
            assert http.post(url, json=INIT).status_code == 401
            ok = http.post(url, json=INIT, headers={"X-API-Key": "solo-key-0123456789"})
            assert ok.status_code == 200, ok.text


# --- the MCP conformance suite's dns-rebinding-protection scenario, as raw requests --------------
def test_dns_rebinding_scenario_against_dev3000_serve(tmp_path: Path) -> None:
    """What ``@modelcontextprotocol/conformance``'s ``dns-rebinding-protection`` scenario
    sends (it needs Node and the npm registry, so CI replays it): ``initialize`` with
    ``Host``/``Origin`` of ``evil.example.com`` must get a 4xx, with the server's own
    loopback ``Host``/``Origin`` a 2xx — against a real ``dev3000 serve`` with its defaults."""
    port = free_port()
    argv = [sys.executable, "-m", "guilde_diag.cli", "serve", "--port", str(port)]
    env = {
        "DEV3000_ENV_FILE": str(tmp_path / "none.env"),
        "DEV3000_DATA_DIR": str(tmp_path / "data"),
        "DEV3000_LOG_PATHS": str(tmp_path / "logs"),
        "DEV3000_ALLOWED_HOSTS": "",
        "MCP_SERVER_NAME": f"rebinding-{port}",  # this server, not another on a reused port
    }
    url = f"http://127.0.0.1:{port}/mcp"
    with ManagedProcess(argv, env=env, cwd=tmp_path):
        wait_for_http(f"http://127.0.0.1:{port}/api/v1/health/ready", timeout=60)
        with httpx.Client(timeout=10, headers=MCP_HEADERS) as http:
            own = f"127.0.0.1:{port}"
            valid = http.post(url, json=INIT, headers={"Host": own, "Origin": f"http://{own}"})
            assert 200 <= valid.status_code < 300, valid.text
            assert f"rebinding-{port}" in valid.text
            rebound = http.post(url, json=INIT, headers=EVIL)
            assert 400 <= rebound.status_code < 500, rebound.text
            assert rebound.json()["type"].endswith("/host_not_allowed")
