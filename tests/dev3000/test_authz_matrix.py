"""The authorization matrix: no key / read key / control key × every surface × read and
control operations, under three postures — generated from ONE table of expected answers.

Every cell drives a real dev3000 over HTTP (uvicorn): REST, MCP over streamable HTTP
(``/mcp``) and legacy SSE (``/sse``) with the official client, the timeline's SSE stream and
WebSocket, and the ``/timeline`` page. An allowed control action must leave one
``control_action`` event naming its surface and key; a refused one, none.
"""

from __future__ import annotations

import contextlib
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import anyio
import httpx
import httpx2
import pytest
from fastapi import FastAPI
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from dev3000.app import create_app
from dev3000.timeline.filters import EventFilter
from guilde_core.config import Settings
from guilde_core.http.auth import hash_key
from guilde_core.resilience import BreakerRegistry, reset_registry
from tools.harness import ServerThread

READ_KEY = "matrix-read-0123456789"
CONTROL_KEY = "matrix-ctl-0123456789"
KEYS = {"none": None, "read": READ_KEY, "control": CONTROL_KEY}
OK: Literal["ok"] = "ok"
Outcome = Literal["ok", 401, 403]
Credential = Literal["none", "read", "control"]

#: the postures: settings beyond the two keys
POSTURES: dict[str, dict[str, Any]] = {
    # the issue's configuration: keys required, MCP control switched on
    "auth-required": {"diagnostic_auth_required": True, "diagnostic_control_enabled": True},
    # staging, auth optional: anonymous callers read, control needs a key (secure default)
    "staging": {"dev3000_mode": "staging", "diagnostic_control_enabled": True},
    # development on loopback, auth optional, MCP control switched off
    "dev-switch-off": {"diagnostic_control_enabled": False},
}

#: THE table: posture → credential → (read anywhere, control over REST, control over MCP)
EXPECTED: dict[str, dict[Credential, tuple[Outcome, Outcome, Outcome]]] = {
    "auth-required": {"none": (401, 401, 401), "read": (OK, 403, 403), "control": (OK, OK, OK)},
    "staging": {"none": (OK, 403, 403), "read": (OK, 403, 403), "control": (OK, OK, OK)},
    "dev-switch-off": {"none": (OK, OK, 403), "read": (OK, 403, 403), "control": (OK, OK, 403)},
}

Surface = Literal["rest", "mcp", "mcp-sse", "sse", "websocket", "page"]
#: every surface with the operations it has
OPERATIONS: list[tuple[Surface, Literal["read", "control"]]] = [
    ("rest", "read"),
    ("rest", "control"),
    ("mcp", "read"),
    ("mcp", "control"),
    ("mcp-sse", "read"),
    ("mcp-sse", "control"),
    ("sse", "read"),
    ("websocket", "read"),
    ("page", "read"),
]


def expected(posture: str, credential: Credential, surface: Surface, action: str) -> Outcome:
    read, rest_control, mcp_control = EXPECTED[posture][credential]
    if action == "read":
        return read
    return rest_control if surface == "rest" else mcp_control


@dataclass
class Served:
    app: FastAPI
    server: ServerThread

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="module")
def served() -> Iterator[dict[str, Served]]:
    reset_registry(BreakerRegistry())
    data = tempfile.mkdtemp(prefix="authz-matrix-")
    started: dict[str, Served] = {}
    try:
        for name, overrides in POSTURES.items():
            settings = Settings(
                dev3000_data_dir=f"{data}/{name}",
                dev3000_log_paths=[f"{data}/{name}/logs"],
                dev3000_enabled=True,
                diagnostic_mode=True,
                diagnostic_rate_limit=1_000_000,
                diagnostic_api_keys=f"{READ_KEY}:read,{CONTROL_KEY}:read+control",
                health_deep_check_enabled=False,
                **overrides,
            )
            app = create_app(settings, mcp=True, redis_prefix=f"matrix-{name}:")
            started[name] = Served(app, ServerThread(app).start())
        yield started
    finally:
        for one in started.values():
            one.server.stop()
        reset_registry()


# --- how each surface is driven ----------------------------------------------------------------
def _headers(key: str | None) -> dict[str, str]:
    return {"X-API-Key": key} if key else {}


def _status(code: int) -> Outcome:
    if code in (401, 403):
        return 401 if code == 401 else 403
    assert 200 <= code < 300, code
    return OK


def _from_tool_error(text: str) -> Outcome:
    """The refusal a tool error carries (the decision's reason names it)."""
    if "an API key is required" in text:
        return 401
    refusals = ("lacks the 'control' scope", "DIAGNOSTIC_CONTROL_ENABLED", "control needs an API")
    assert any(r in text for r in refusals), text
    return 403


def rest(url: str, key: str | None, action: str, reason: str) -> Outcome:
    with httpx.Client(base_url=url, headers=_headers(key), timeout=10) as client:
        if action == "read":
            return _status(client.get("/api/v1/diag/circuits").status_code)
        r = client.post("/api/v1/diag/circuits/openai/open", json={"reason": reason})
        return _status(r.status_code)


@contextlib.asynccontextmanager
async def _mcp_session(url: str, surface: Surface, key: str | None) -> AsyncIterator[Any]:
    if surface == "mcp":
        async with (
            httpx2.AsyncClient(headers=_headers(key), timeout=10) as http,
            streamable_http_client(url + "/mcp", http_client=http) as streams,
            ClientSession(streams[0], streams[1]) as session,
        ):
            await session.initialize()
            yield session
    else:
        async with (
            sse_client(url + "/sse", headers=_headers(key)) as streams,
            ClientSession(streams[0], streams[1]) as session,
        ):
            await session.initialize()
            yield session


def mcp(url: str, surface: Surface, key: str | None, action: str, reason: str) -> Outcome:
    # the endpoint's guard answers first (every MCP request is a read)
    path = "/mcp" if surface == "mcp" else "/sse"
    with httpx.Client(base_url=url, headers=_headers(key), timeout=10) as client:
        if path == "/mcp":
            probe = client.post(
                path,
                json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                headers={"Accept": "application/json, text/event-stream"},
            )
            refused = probe.status_code in (401, 403)
        else:
            with client.stream("GET", path) as probe:
                refused = probe.status_code in (401, 403)
        if refused:
            return _status(probe.status_code)

    async def call() -> Outcome:
        async with _mcp_session(url, surface, key) as session:
            if action == "read":
                result = await session.call_tool("circuits_breakers", {})
            else:
                result = await session.call_tool(
                    "circuits_open", {"name": "openai", "reason": reason}
                )
        text = "".join(getattr(c, "text", "") for c in result.content)
        return _from_tool_error(text) if result.isError else OK

    outcome: Outcome = anyio.run(call)
    return outcome


def sse(url: str, key: str | None) -> Outcome:
    with (
        httpx.Client(base_url=url, headers=_headers(key), timeout=10) as client,
        client.stream("GET", "/api/v1/diag/stream") as response,
    ):
        return _status(response.status_code)


def websocket(url: str, key: str | None) -> Outcome:
    ws_url = url.replace("http://", "ws://") + "/api/v1/diag/stream"
    try:
        with connect(ws_url, additional_headers=_headers(key), open_timeout=5, proxy=None) as ws:
            try:
                ws.recv(timeout=5)
            except ConnectionClosed as closed:
                close_code = closed.rcvd.code if closed.rcvd is not None else None
            else:
                return OK
    except InvalidStatus as refused:  # refused before the handshake
        return _status(refused.response.status_code)
    answers: dict[int | None, Outcome] = {4401: 401, 4403: 403}
    return answers[close_code]


def page(url: str, key: str | None) -> Outcome:
    params = {"token": key} if key else {}
    with httpx.Client(base_url=url, timeout=10) as client:
        return _status(client.get("/timeline", params=params).status_code)


DRIVERS: dict[Surface, Callable[[str, str | None, str, str], Outcome]] = {
    "rest": rest,
    "mcp": lambda url, key, action, reason: mcp(url, "mcp", key, action, reason),
    "mcp-sse": lambda url, key, action, reason: mcp(url, "mcp-sse", key, action, reason),
    "sse": lambda url, key, action, reason: sse(url, key),
    "websocket": lambda url, key, action, reason: websocket(url, key),
    "page": lambda url, key, action, reason: page(url, key),
}

CASES = [
    pytest.param(
        posture, credential, surface, action, id=f"{posture}-{credential}-{surface}-{action}"
    )
    for posture in POSTURES
    for credential in KEYS
    for surface, action in OPERATIONS
]


@pytest.mark.parametrize(("posture", "credential", "surface", "action"), CASES)
def test_matrix(
    served: dict[str, Served],
    posture: str,
    credential: Credential,
    surface: Surface,
    action: Literal["read", "control"],
) -> None:
    target = served[posture]
    reason = f"matrix {uuid.uuid4().hex[:8]}"
    want = expected(posture, credential, surface, action)
    got = DRIVERS[surface](target.url, KEYS[credential], action, reason)
    assert got == want, f"{posture}: {credential} key, {action} over {surface}"
    if action != "control":
        return
    bus = target.app.state.dev3000.bus
    recorded = [
        e
        for e in bus.recent(200, EventFilter(kinds=frozenset({"control_action"})))
        if e.data.get("reason") == reason
    ]
    if want != OK:
        assert recorded == [], "a refused control action is not recorded as done"
        return
    (event,) = recorded
    key = KEYS[credential]
    assert event.data["surface"] == surface
    assert event.data["key_id"] == (hash_key(key)[:8] if key else "anonymous")
    assert (event.data["action"], event.data["ok"], event.subject) == (
        "circuit_open",
        True,
        "openai",
    )


def test_the_table_covers_every_surface_and_answer() -> None:
    """The matrix is the whole matrix: every credential, every surface, both actions where
    the surface has them, and each answer (allowed, 401, 403) somewhere."""
    assert {s for s, _ in OPERATIONS} == set(DRIVERS)
    assert {a for _, a in OPERATIONS} == {"read", "control"}
    answers = {o for p in EXPECTED.values() for row in p.values() for o in row}
    assert answers == {OK, 401, 403}
    assert len(CASES) == len(POSTURES) * len(KEYS) * len(OPERATIONS)


def test_issue_repro_a_read_key_cannot_open_a_breaker_over_mcp_or_sse(
    served: dict[str, Served],
) -> None:
    """``DIAGNOSTIC_AUTH_REQUIRED=true DIAGNOSTIC_CONTROL_ENABLED=true`` with keys
    ``r:read, c:read+control``: REST refuses the read key (403) — and now ``/mcp`` and
    ``/sse`` do too, per call, with the same reason; the breaker stays as it was and no
    control is recorded."""
    target = served["auth-required"]
    registry_state = _state(target.url)
    refused = httpx.post(
        target.url + "/api/v1/diag/circuits/anthropic/open",
        json={"reason": "read key tries"},
        headers={"X-API-Key": READ_KEY},
    )
    assert refused.status_code == 403
    assert refused.json()["type"].endswith("/forbidden")

    async def attempt(surface: Surface) -> str:
        async with _mcp_session(target.url, surface, READ_KEY) as session:
            listed = await session.call_tool("circuits_breakers", {})
            assert not listed.isError  # the key reads
            result = await session.call_tool(
                "circuits_open", {"name": "anthropic", "reason": "read key tries"}
            )
        assert result.isError
        return "".join(getattr(c, "text", "") for c in result.content)

    for surface in ("mcp", "mcp-sse"):
        text = anyio.run(attempt, surface)
        assert text == refused.json()["detail"] == "the API key lacks the 'control' scope"
    assert _state(target.url) == registry_state
    bus = target.app.state.dev3000.bus
    assert not [
        e
        for e in bus.recent(500, EventFilter(kinds=frozenset({"control_action"})))
        if e.data.get("reason") == "read key tries"
    ]


def _state(url: str) -> dict[str, str]:
    circuits = httpx.get(url + "/api/v1/diag/circuits", headers={"X-API-Key": READ_KEY}).json()[
        "circuits"
    ]
    return {c["name"]: c["state"] for c in circuits}
