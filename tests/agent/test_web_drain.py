"""agent-web drains and exits within its Kubernetes grace period on SIGTERM, with a session
WebSocket open (before, uvicorn waited on it for ever and the pod was killed)."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from evals.recorded import RecordedState
from tools.harness import ManagedProcess, free_port, wait_for_http

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _grace() -> float:
    """What Kubernetes gives agent-web after SIGTERM: the grace period less the preStop sleep."""
    doc = yaml.safe_load(
        (ROOT / "deploy/k8s/base/agent-web-deployment.yaml").read_text(encoding="utf-8")
    )
    pod = doc["spec"]["template"]["spec"]
    pre_stop = pod["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"]
    return float(pod["terminationGracePeriodSeconds"] - pre_stop)


def test_sigterm_with_an_open_session_stream_exits_within_the_grace_period(
    mcp_http: tuple[str, RecordedState], tmp_path: Path
) -> None:
    url, _ = mcp_http
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DEV3000_", "DIAGNOSTIC_"))},
        "DEV3000_ENV_FILE": str(tmp_path / "none.env"),
        "DEV3000_DATA_DIR": str(tmp_path / "data"),
    }
    argv = [str(BIN / "dev3000"), "agent", "web", "--port", str(port), "--url", url]
    log = (tmp_path / "agent-web.log").open("wb")
    with ManagedProcess(argv, env=env, cwd=tmp_path, stdout=log, stderr=log) as proc:
        base = f"http://127.0.0.1:{port}"
        wait_for_http(f"{base}/health", timeout=60, status=200)
        # /health answers before the MCP session to dev3000 is up: wait for sessions to work
        wait_for_http(f"{base}/api/v1/sessions", timeout=60, status=200)
        created = httpx.post(f"{base}/api/v1/sessions", json={"title": "drain"}, timeout=30)
        assert created.status_code == 201, created.text
        sid = created.json()["id"]
        ws = connect(f"ws://127.0.0.1:{port}/api/v1/sessions/{sid}/stream")
        try:
            assert json.loads(ws.recv(timeout=10))["type"] == "status"
            started = time.monotonic()
            proc.signal(signal.SIGTERM)
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=_grace())
            assert proc.proc is not None
            code = proc.proc.wait(timeout=_grace())
            took = time.monotonic() - started
        finally:
            ws.close()
    log.close()
    output = (tmp_path / "agent-web.log").read_text(errors="replace")
    # a clean shutdown (uvicorn re-raises the signal it handled, hence -SIGTERM)
    assert code in (0, -signal.SIGTERM), output[-2000:]
    assert "Application shutdown complete" in output
    assert took < _grace(), f"exited after {took:.1f} s, the grace period is {_grace():.0f} s"
    assert took < 5, f"an idle stream should not hold the drain ({took:.1f} s)"
