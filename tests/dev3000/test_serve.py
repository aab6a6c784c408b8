"""``dev3000 serve`` as a real process: SIGHUP reload, then SIGTERM (readiness 503 at
once, stream clients closed, exit within 10 s)."""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tools.harness import ManagedProcess, free_port, wait_for_http, wait_until

OLD_KEY = "old-key-0123456789"
NEW_KEY = "new-key-9876543210"


def test_sighup_reload_then_sigterm_drain(tmp_path: Path) -> None:
    # Settings read ``.env`` from the working directory (and DEV3000_ENV_FILE for profiles)
    env_file = tmp_path / ".env"
    env_file.write_text(
        f"DIAGNOSTIC_AUTH_REQUIRED=true\nDIAGNOSTIC_API_KEYS={OLD_KEY}:read\n", encoding="utf-8"
    )
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    argv = [sys.executable, "-m", "guilde_diag.cli", "serve", "--port", str(port)]
    argv += ["--drain-seconds", "1.5"]
    env = {
        "DEV3000_ENV_FILE": str(env_file),
        "DEV3000_DATA_DIR": str(tmp_path / "data"),
        "DEV3000_LOG_PATHS": str(tmp_path / "logs"),
        "DEV3000_LOG_LEVEL": "info",
    }
    base = f"http://127.0.0.1:{port}"
    with ManagedProcess(argv, env=env, cwd=tmp_path, stdout=log, stderr=log) as proc:
        wait_for_http(base + "/api/v1/health/ready", timeout=60, status=200)
        client = httpx.Client(base_url=base, timeout=5)
        assert client.get("/api/v1/timeline", headers={"X-API-Key": OLD_KEY}).status_code == 200
        assert client.get("/api/v1/timeline", headers={"X-API-Key": NEW_KEY}).status_code == 401

        # --- SIGHUP: new keys apply without a restart, and a config_reload event appears
        env_file.write_text(
            f"DIAGNOSTIC_AUTH_REQUIRED=true\nDIAGNOSTIC_API_KEYS={NEW_KEY}:read\n",
            encoding="utf-8",
        )
        held = httpx.Client(base_url=base, timeout=5)  # a keep-alive connection across reload
        assert held.get("/api/v1/health").status_code == 200
        proc.signal(signal.SIGHUP)

        def reloaded() -> bool:
            r = client.get("/api/v1/timeline", headers={"X-API-Key": NEW_KEY})
            return r.status_code == 200

        wait_until(reloaded, timeout=10)
        events = client.get(
            "/api/v1/timeline", params={"kinds": "config_reload"}, headers={"X-API-Key": NEW_KEY}
        ).json()["items"]
        assert events
        assert events[0]["data"]["changed"] == ["DIAGNOSTIC_API_KEYS"]
        assert NEW_KEY not in str(events)
        assert client.get("/api/v1/timeline", headers={"X-API-Key": OLD_KEY}).status_code == 401
        assert held.get("/api/v1/health").status_code == 200  # connection survived
        assert proc.alive()

        # --- a stream client that must get a close on SIGTERM
        stream_done = threading.Event()
        frames: list[str] = []

        def listen() -> None:
            try:
                with httpx.stream(
                    "GET",
                    base + "/api/v1/diag/stream/sse",
                    headers={"X-API-Key": NEW_KEY},
                    timeout=20,
                ) as r:
                    for line in r.iter_lines():
                        frames.append(line)
            except httpx.HTTPError:
                pass
            stream_done.set()

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        wait_until(lambda: any(f.startswith("event:") for f in frames), timeout=10)

        # --- SIGTERM: readiness 503 at once, the rest still answers during the drain
        proc.signal(signal.SIGTERM)
        t0 = time.monotonic()
        ready = client.get("/api/v1/health/ready")
        assert ready.status_code == 503
        assert ready.json()["reason"] == "shutting down"
        assert client.get("/api/v1/health").status_code == 200
        assert stream_done.wait(5), "stream client was not closed"
        assert any("close" in f for f in frames), frames[-5:]
        assert proc.proc is not None
        proc.proc.wait(10)
        assert time.monotonic() - t0 < 10
        client.close()
        held.close()
    log.close()
    text = (tmp_path / "serve.log").read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in text
    assert NEW_KEY not in text
    assert OLD_KEY not in text


def test_serve_refuses_an_invalid_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from guilde_diag.cli import app

    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("DIAGNOSTIC_RATE_LIMIT=-4\n", encoding="utf-8")
    monkeypatch.setenv("DEV3000_ENV_FILE", str(tmp_path / ".env"))
    result = CliRunner().invoke(app, ["serve", "--port", str(free_port())])
    assert result.exit_code == 2
    assert "DIAGNOSTIC_RATE_LIMIT" in result.output


def test_run_commands_are_handed_to_the_supervisor(make_settings: Any) -> None:
    from fastapi.testclient import TestClient

    from dev3000.app import create_app
    from dev3000.serve import supervisor_lifespan

    command = f"{sys.executable} -c \"import time; print('up', flush=True); time.sleep(30)\""
    app = create_app(
        make_settings(),
        mcp=False,
        timeline_sources=False,
        lifespans=[supervisor_lifespan([command])],
    )
    with TestClient(app) as client:
        (supervisor,) = app.state.dev3000.supervisors

        def started() -> bool:
            page = client.get("/api/v1/timeline", params={"kinds": "process_start"}).json()
            return bool(page["items"]) and bool(supervisor.running)

        wait_until(started, timeout=20)
    assert not supervisor.running  # stopped with the app
