"""The seed's master switches: ``DIAGNOSTIC_MODE`` (the diagnostic API) and
``DEV3000_ENABLED`` (the debug server's own surfaces), per request and after a reload."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from dev3000.app import reload_config

PROBLEM = "application/problem+json"
PROBES = ("/health", "/api/v1/health", "/api/v1/health/live", "/api/v1/health/ready", "/metrics")
DIAGNOSTIC = ("/api/v1/diag/status", "/api/v1/diag/circuits", "/api/v1/investigations")
DEBUG = ("/api/v1/timeline", "/api/v1/targets", "/timeline", "/api/v1/logs/search?q=x")


def _disabled(client: TestClient, path: str, switch: str) -> bool:
    r = client.get(path)
    if r.status_code != 404:
        return False
    body = r.json()
    assert r.headers["content-type"].startswith(PROBLEM)
    assert body["type"].endswith("/disabled")
    assert f"{switch}=false" in body["detail"]
    assert r.headers["x-request-id"]
    return True


def test_default_profile_serves_everything(make_app: Callable[..., FastAPI]) -> None:
    with TestClient(make_app()) as client:
        for path in PROBES + DIAGNOSTIC + DEBUG:
            assert client.get(path).status_code == 200, path


def test_diagnostic_mode_off_turns_off_the_diag_api_only(
    make_app: Callable[..., FastAPI],
) -> None:
    with TestClient(make_app(diagnostic_mode=False)) as client:
        for path in DIAGNOSTIC:
            assert _disabled(client, path, "DIAGNOSTIC_MODE"), path
        assert _disabled(client, "/api/v1/diag/stream/sse", "DIAGNOSTIC_MODE")
        r = client.post("/api/v1/diag/circuits/payments/open", json={"reason": "x"})
        assert r.status_code == 404  # control is part of the diagnostic API
        alert = {"alerts": [{"status": "firing", "labels": {"alertname": "X"}}]}
        assert client.post("/api/v1/alerts", json=alert).status_code == 404  # so is the intake
        with pytest.raises(WebSocketDisconnect) as closed:  # noqa: SIM117
            with client.websocket_connect("/api/v1/diag/stream"):
                pass
        assert closed.value.code == 1008
        for path in PROBES + DEBUG:
            assert client.get(path).status_code == 200, path


def test_dev3000_disabled_keeps_probes_and_the_diag_api(
    make_app: Callable[..., FastAPI],
) -> None:
    """``DEV3000_ENABLED=false``: diagnostics on, the debug server off."""
    with TestClient(make_app(dev3000_enabled=False, mcp=True)) as client:
        for path in DEBUG:
            assert _disabled(client, path, "DEV3000_ENABLED"), path
        r = client.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        assert r.status_code == 404
        assert r.json()["type"].endswith("/disabled")
        for path in PROBES + DIAGNOSTIC:
            assert client.get(path).status_code == 200, path


@pytest.mark.parametrize("mode", ["staging", "production"])
def test_staging_and_production_serve_every_surface_behind_keys(
    mode: str,
    make_app: Callable[..., FastAPI],
    make_settings: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The profiles keep the surfaces on (agent-web needs /mcp wherever it is deployed);
    production asks for a key on every one but the probes."""
    monkeypatch.setenv("DEV3000_MODE", mode)
    monkeypatch.setenv("DIAGNOSTIC_API_KEYS", "ops-key-0001:read")
    settings = make_settings()
    assert (settings.diagnostic_mode, settings.dev3000_enabled) == (True, True)
    with TestClient(make_app(settings)) as client:
        for path in PROBES:
            assert client.get(path).status_code == 200, path
        for path in DIAGNOSTIC + DEBUG:
            expected = 401 if mode == "production" else 200
            assert client.get(path).status_code == expected, path
            answer = client.get(path, headers={"X-API-Key": "ops-key-0001"})
            assert answer.status_code == 200, path


def test_a_reload_applies_the_switches_without_a_restart(
    make_app: Callable[..., FastAPI], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app()
    with TestClient(app) as client:
        assert client.get("/api/v1/diag/circuits").status_code == 200
        monkeypatch.setenv("DIAGNOSTIC_MODE", "false")
        assert "DIAGNOSTIC_MODE" in reload_config(app)
        assert _disabled(client, "/api/v1/diag/circuits", "DIAGNOSTIC_MODE")
        monkeypatch.setenv("DIAGNOSTIC_MODE", "true")
        reload_config(app)
        assert client.get("/api/v1/diag/circuits").status_code == 200
