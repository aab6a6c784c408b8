"""Alert intake over HTTP on a real dev3000 (uvicorn): Alertmanager's webhook opens one
investigation per firing alert (deduplicated, rate limited), the agent's offline engine
diagnoses it, the diagnosis goes to the timeline and to a real webhook receiver (JSON or
Slack, retried, dead-lettered when it fails for good, never leaking the URL), resolved alerts
close it, and the endpoints answer bad input and missing keys with problems."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from websockets.sync.client import connect

from dev3000.app import create_app
from guilde_core.config import Settings, reset_settings_cache
from guilde_core.resilience import (
    BreakerRegistry,
    list_dead_letters,
    reset_dead_letter_store,
    reset_registry,
)
from guilde_diag.cli import diagnose_tool
from tools.harness import ServerThread, wait_until

READ_KEY = "alerts-read-0123456789"
WEBHOOK_SECRET = "T0SECRET/B0SECRET/xoxSECRETSECRETSECRET"


@dataclass
class Receiver:
    """A webhook receiver on loopback: records each POST, fails the first ``fail`` ones
    with ``status``."""

    server: ServerThread
    bodies: list[dict[str, Any]] = field(default_factory=list)
    calls: int = 0
    fail: int = 0
    status: int = 503

    @property
    def url(self) -> str:
        return f"{self.server.url}/services/{WEBHOOK_SECRET}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    lock = threading.Lock()
    holder: list[Receiver] = []

    async def hook(request: Request) -> Response:
        rec = holder[0]
        body = await request.json()
        with lock:
            rec.calls += 1
            if rec.calls <= rec.fail:
                return JSONResponse({"error": "try later"}, status_code=rec.status)
            rec.bodies.append(body)
        return Response("ok")

    server = ServerThread(
        Starlette(routes=[Route("/services/{rest:path}", hook, methods=["POST"])])
    )
    holder.append(Receiver(server))
    with server:
        yield holder[0]


@pytest.fixture(autouse=True)
def _fast_resilience(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Quick retries for the write-back, dead letters in the test's own directory."""
    for name, value in {
        "RETRY_THIRD_PARTY_API_MAX_ATTEMPTS": "3",
        "RETRY_THIRD_PARTY_API_BASE_DELAY": "0.01",
        "RETRY_THIRD_PARTY_API_MAX_DELAY": "0.05",
        "DEV3000_DATA_DIR": str(tmp_path / "dl"),
    }.items():
        monkeypatch.setenv(name, value)
    reset_settings_cache()
    reset_registry(BreakerRegistry())
    reset_dead_letter_store()
    yield
    reset_registry()
    reset_dead_letter_store()
    reset_settings_cache()


@dataclass
class Dev3000:
    url: str
    app: FastAPI
    headers: dict[str, str]

    def post(self, body: Any, **kw: Any) -> httpx.Response:
        kw.setdefault("headers", self.headers)
        return httpx.post(self.url + "/api/v1/alerts", json=body, timeout=10, **kw)

    def investigation(self, inv_id: str) -> dict[str, Any]:
        r = httpx.get(self.url + f"/api/v1/investigations/{inv_id}", headers=self.headers)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def events(self, kind: str) -> list[dict[str, Any]]:
        bus = self.app.state.dev3000.bus
        return [e.model_dump(mode="json") for e in bus.events() if e.kind == kind]


Dev3000Factory = Callable[..., Dev3000]


@pytest.fixture
def dev3000(make_settings: Callable[..., Settings]) -> Iterator[Dev3000Factory]:
    started: list[ServerThread] = []

    def make(*, key: str | None = None, **overrides: Any) -> Dev3000:
        if key:
            overrides.setdefault("diagnostic_api_keys", f"{key}:read")
        app = create_app(
            make_settings(**overrides),
            redis_prefix=f"alerts-{uuid.uuid4().hex[:8]}:",
            mcp=True,
            timeline_sources=False,
            extra_tools=[diagnose_tool],
        )
        server = ServerThread(app).start()
        started.append(server)
        return Dev3000(server.url, app, {"X-API-Key": key} if key else {})

    yield make
    for server in started:
        server.stop()


def alert(name: str = "HighErrorRate", status: str = "firing", **labels: str) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": name, "severity": "critical", **labels},
        "annotations": {"summary": f"{name} over threshold"},
        "startsAt": "2026-01-02T15:04:05Z",
        "fingerprint": uuid.uuid5(uuid.NAMESPACE_OID, name + str(sorted(labels.items()))).hex[:16],
    }


def webhook(*alerts: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "4",
        "status": alerts[0]["status"],
        "receiver": "dev3000",
        "alerts": list(alerts),
    }


def done(d: Dev3000, inv_id: str, timeout: float = 60) -> dict[str, Any]:
    wait_until(
        lambda: d.investigation(inv_id)["diagnosis_status"] not in ("pending", "running"),
        timeout=timeout,
        interval=0.2,
    )
    return d.investigation(inv_id)


def test_a_firing_alert_opens_one_diagnosed_investigation_written_back_as_json(
    dev3000: Dev3000Factory, receiver: Receiver
) -> None:
    d = dev3000(key=READ_KEY, diagnostic_auth_required=True, alert_webhook_url=receiver.url)
    first = d.post(webhook(alert(service="backend")))
    assert first.status_code == 202, first.text
    opened = first.json()["opened"]
    assert len(opened) == 1
    # Alertmanager sends the same alert again: counted, not a second investigation
    again = d.post(webhook(alert(service="backend")))
    assert again.json() == {**again.json(), "opened": [], "repeated": opened}

    inv = done(d, opened[0])
    assert inv["diagnosis_status"] == "done", inv
    assert inv["occurrences"] == 2
    assert inv["focus"] == "backend"
    assert inv["diagnosis"]["root_cause"]["summary"]
    assert inv["diagnosis"]["evidence"]

    listed = httpx.get(d.url + "/api/v1/investigations", headers=d.headers).json()
    assert [i["id"] for i in listed["investigations"]] == opened
    assert listed["open"] == 1

    # on the timeline (hence the stream): the alert, the opening, the diagnosis
    assert [e["data"]["investigation_id"] for e in d.events("alert")] == opened
    investigation_events = d.events("investigation")
    assert len(investigation_events) == 2
    diagnosed = investigation_events[-1]["data"]
    assert diagnosed["diagnosis_status"] == "done"
    assert (
        diagnosed["diagnosis"]["root_cause"]["summary"] == inv["diagnosis"]["root_cause"]["summary"]
    )

    wait_until(lambda: d.investigation(opened[0])["delivery"] == "sent", timeout=10)
    assert len(receiver.bodies) == 1
    body = receiver.bodies[0]
    assert body["event"] == "investigation.diagnosed"
    assert body["investigation"]["id"] == opened[0]
    assert body["investigation"]["diagnosis"]["root_cause"]["summary"]


def test_resolved_alerts_close_the_investigation(dev3000: Dev3000Factory) -> None:
    d = dev3000()
    inv_id = d.post(webhook(alert("DatabasePoolExhausted"))).json()["opened"][0]
    closed = d.post(webhook(alert("DatabasePoolExhausted", status="resolved")))
    assert closed.status_code == 202
    assert closed.json()["resolved"] == [inv_id]
    inv = d.investigation(inv_id)
    assert inv["status"] == "resolved"
    assert inv["resolved_at"]
    # resolved again (or never opened): ignored
    assert d.post(webhook(alert("DatabasePoolExhausted", status="resolved"))).json()["ignored"] == 1
    # firing again after the resolution: a new investigation
    reopened = d.post(webhook(alert("DatabasePoolExhausted"))).json()["opened"]
    assert reopened
    assert reopened != [inv_id]
    open_only = httpx.get(d.url + "/api/v1/investigations", params={"status": "open"}).json()
    assert [i["id"] for i in open_only["investigations"]] == reopened
    assert any("closed" in e["summary"] for e in d.events("investigation"))


def test_the_intake_is_rate_limited(dev3000: Dev3000Factory) -> None:
    d = dev3000(alert_intake_rate_limit=2)
    result = d.post(webhook(alert("A1"), alert("A2"), alert("A3"))).json()
    assert len(result["opened"]) == 3
    assert result["rate_limited"] == result["opened"][2:]
    limited = d.investigation(result["opened"][2])
    assert limited["diagnosis_status"] == "rate_limited"
    assert "ALERT_INTAKE_RATE_LIMIT" in limited["diagnosis_error"]


def test_slack_write_back_is_retried(dev3000: Dev3000Factory, receiver: Receiver) -> None:
    receiver.fail = 2  # two 503s, then accepted
    d = dev3000(alert_webhook_url=receiver.url, alert_webhook_format="slack")
    inv_id = d.post(webhook(alert("HealthCheckSlow", check="database"))).json()["opened"][0]
    wait_until(lambda: d.investigation(inv_id)["delivery"] == "sent", timeout=60, interval=0.2)
    assert receiver.calls == 3
    message = receiver.bodies[0]
    assert "HealthCheckSlow" in message["text"]
    assert "Root cause" in message["text"]
    assert message["blocks"][0]["text"]["type"] == "mrkdwn"


def test_a_write_back_that_fails_for_good_is_a_dead_letter_without_the_url(
    dev3000: Dev3000Factory, receiver: Receiver
) -> None:
    receiver.fail = 100
    receiver.status = 500
    d = dev3000(alert_webhook_url=receiver.url)
    inv_id = d.post(webhook(alert("SentryRateLimited"))).json()["opened"][0]
    wait_until(lambda: d.investigation(inv_id)["delivery"] == "failed", timeout=60, interval=0.2)
    inv = d.investigation(inv_id)
    assert "HTTP 500" in inv["delivery_error"]
    assert receiver.calls == 3  # every attempt of the policy
    letters = anyio.run(lambda: list_dead_letters(10, "webhooks"))
    assert len(letters) == 1
    assert letters[0].payload["event"] == "investigation.diagnosed"
    dead = d.events("dead_letter")
    assert dead
    assert dead[0]["data"]["investigation_id"] == inv_id
    everything = (
        str(inv)
        + str([letter.model_dump() for letter in letters])
        + str(d.events("dead_letter"))
        + httpx.get(d.url + "/api/v1/investigations").text
    )
    assert "SECRET" not in everything


def test_bad_input_and_missing_keys_are_problems(dev3000: Dev3000Factory) -> None:
    d = dev3000(key=READ_KEY, diagnostic_auth_required=True)
    anonymous = httpx.post(d.url + "/api/v1/alerts", json=webhook(alert()))
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"].startswith("application/problem+json")
    bad_bodies: list[Any] = [
        {"alerts": []},
        {"alerts": [{"status": "firing", "labels": {}}]},  # no alertname
        {"alerts": [{"status": "burning", "labels": {"alertname": "X"}}]},
        {"alerts": [alert() | {"fingerprint": "../../etc"}]},
        {"alerts": [alert()] * 201},
        [1, 2, 3],
    ]
    for bad in bad_bodies:
        r = d.post(bad)
        assert r.status_code == 422, (bad, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    not_json = httpx.post(
        d.url + "/api/v1/alerts",
        content=b"{nope",
        headers={**d.headers, "content-type": "application/json"},
    )
    assert not_json.status_code in (400, 422)
    assert (
        httpx.get(d.url + "/api/v1/investigations/inv-000000000000", headers=d.headers).status_code
        == 404
    )
    assert httpx.get(d.url + "/api/v1/investigations/nope", headers=d.headers).status_code == 422
    assert d.post(webhook(alert())).status_code == 202


def test_without_a_diagnosis_engine_the_investigation_says_so(
    make_settings: Callable[..., Settings],
) -> None:
    # no MCP server at all: unavailable at once; an MCP server without the agent's tool:
    # the diagnosis fails saying so
    for mcp, status, text in (
        (False, "unavailable", "diagnose tool"),
        (True, "failed", "no diagnose tool"),
    ):
        app = create_app(make_settings(), mcp=mcp, timeline_sources=False)
        with ServerThread(app) as server:
            r = httpx.post(server.url + "/api/v1/alerts", json=webhook(alert()))
            inv_id = r.json()["opened"][0]

            def settled(url: str = f"{server.url}/api/v1/investigations/{inv_id}",
                        want: str = status) -> bool:  # fmt: skip
                return bool(httpx.get(url).json()["diagnosis_status"] == want)

            wait_until(settled, timeout=20, interval=0.1)
            inv = httpx.get(server.url + f"/api/v1/investigations/{inv_id}").json()
        assert text in inv["diagnosis_error"]
        assert inv["diagnosis"] is None


def test_the_diagnosis_reaches_a_stream_client(dev3000: Dev3000Factory) -> None:
    d = dev3000(key=READ_KEY, diagnostic_auth_required=True)
    ws_url = d.url.replace("http://", "ws://") + "/api/v1/diag/stream?kinds=alert,investigation"
    with connect(ws_url, additional_headers=d.headers, open_timeout=5, proxy=None) as ws:
        inv_id = d.post(webhook(alert("Dev3000DeepHealthUnhealthy"))).json()["opened"][0]
        seen: list[dict[str, Any]] = []
        end = time.monotonic() + 60
        while time.monotonic() < end:
            frame = json.loads(ws.recv(timeout=end - time.monotonic()))
            if frame["type"] != "event":
                continue
            seen.append(frame["event"])
            if frame["event"]["data"].get("diagnosis_status") in ("done", "failed"):
                break
    assert [e["kind"] for e in seen] == ["alert", "investigation", "investigation"]
    assert all(e["data"]["investigation_id"] == inv_id for e in seen)
    assert seen[-1]["data"]["diagnosis_status"] == "done"
    assert seen[-1]["data"]["diagnosis"]["root_cause"]["summary"]
