"""``dev3000 chaos …`` against a running sandbox, the bounded load generator, and
``dev3000 demo`` as a real process tree that SIGINT takes down completely."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
from typer.testing import CliRunner

from guilde_core.errors import InvalidInputError
from guilde_diag.cli import app
from tests.tools.conftest import Sandbox
from tools.chaos.load import run_load
from tools.harness import free_port, wait_until

runner = CliRunner()


def test_chaos_cli_against_a_running_sandbox(sandbox: Sandbox, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(sandbox.token)
    common = ["--url", sandbox.url, "--token-file", str(token_file)]

    listed = runner.invoke(app, ["chaos", "list"])
    assert listed.exit_code == 0
    assert "pool-exhaustion" in listed.output
    assert "health:" in listed.output

    injected = runner.invoke(
        app, ["chaos", "inject", "db-latency", "--param", "delay_ms=150", "--ttl", "60", *common]
    )
    assert injected.exit_code == 0, injected.output
    assert "injected db-latency" in injected.output
    assert sandbox.health()["checks"]["database"]["status"] == "degraded"

    status = runner.invoke(app, ["chaos", "status", "--json", *common])
    active = json.loads(status.output)
    assert [(f["id"], f["params"]["delay_ms"]) for f in active] == [("db-latency", 150)]

    # a list parameter as a user types it: comma-separated, its items kept as the schema's strings
    storm = runner.invoke(
        app, ["chaos", "inject", "upstream-error-storm", "-p", "kinds=429,timeout", *common]
    )
    assert storm.exit_code == 0, storm.output
    assert json.loads(storm.output.splitlines()[-1])["kinds"] == ["429", "timeout"]
    assert "kinds=[429,500,503,timeout]" in listed.output

    cleared = runner.invoke(app, ["chaos", "clear", *common])
    assert "cleared: db-latency" in cleared.output
    assert sandbox.health()["checks"]["database"]["status"] == "healthy"
    assert "no active faults" in runner.invoke(app, ["chaos", "status", *common]).output

    bad = runner.invoke(app, ["chaos", "inject", "disk-fill", "-p", "cap_mb=99999", *common])
    assert bad.exit_code == 2
    assert "cap_mb" in bad.output
    assert "Traceback" not in bad.output
    token_file.write_text("wrong-token")
    refused = runner.invoke(app, ["chaos", "status", *common])
    assert refused.exit_code == 2
    assert "refused the token" in refused.output
    far = runner.invoke(
        app, ["chaos", "status", "--url", "http://192.0.2.1:80", "--token-file", str(token_file)]
    )
    assert far.exit_code == 2
    assert "loopback only" in far.output


def test_load_is_bounded_and_summarised(sandbox: Sandbox) -> None:
    summary = asyncio.run(run_load(sandbox.url, rps=20, duration=1.0, seed=1))
    assert 0 < summary.count <= 20
    assert sum(summary.statuses.values()) + summary.transport_errors == summary.count
    assert set(summary.statuses) <= {200, 201}
    assert summary.percentile(0.99) >= summary.percentile(0.5) > 0
    assert summary.duration_s < 5
    assert sandbox.metric("sandbox_http_requests_total") >= summary.count
    with pytest.raises(InvalidInputError, match="loopback"):
        asyncio.run(run_load("http://example.com", rps=1, duration=1))
    with pytest.raises(InvalidInputError, match="rps"):
        asyncio.run(run_load(sandbox.url, rps=10_000, duration=1))
    with pytest.raises(InvalidInputError, match="duration"):
        asyncio.run(run_load(sandbox.url, rps=1, duration=10_000))
    out = runner.invoke(
        app, ["chaos", "load", "--rps", "10", "--duration", "0.5", "--url", sandbox.url]
    )
    assert out.exit_code == 0, out.output
    assert "p50" in out.output
    assert "p99" in out.output


async def _mcp_call(url: str) -> None:
    from agent.mcp_client import DiagTools

    async with DiagTools(url) as tools:
        assert (await tools.call("health_targets", {})).ok


def _session_members(sid: int) -> list[int]:
    members = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getsid(proc.pid) == sid and proc.status() != psutil.STATUS_ZOMBIE:
                members.append(proc.pid)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return members


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_demo_starts_answers_and_stops_on_a_signal(tmp_path: Path, sig: signal.Signals) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("SANDBOX_DATABASE_URL", None)
    env.pop("SANDBOX_REDIS_URL", None)
    env["DEV3000_PORT"] = str(free_port())
    proc = subprocess.Popen(
        [sys.executable, "-m", "guilde_diag.cli", "demo", "--logs-dir", str(tmp_path / "logs")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        info: dict[str, object] = {}
        deadline = time.monotonic() + 100
        while time.monotonic() < deadline:
            line = proc.stdout.readline().decode()
            if not line:
                break
            if line.startswith("DEMO READY "):
                info = json.loads(line.removeprefix("DEMO READY "))
                break
        assert info, "the demo never printed its ready line"
        sandbox = str(info["sandbox"])
        assert httpx.get(sandbox + "/api/v1/health", timeout=10).status_code == 200
        # the demo drives traffic by itself
        wait_until(
            lambda: httpx.get(sandbox + "/api/v1/orders", timeout=5).json()["count"] > 0,
            timeout=20,
        )
        token = Path(str(info["token_file"])).read_text()
        status = httpx.get(sandbox + "/_chaos/status", headers={"x-chaos-token": token})
        assert status.status_code == 200
        pids = info["pids"]
        assert isinstance(pids, dict)
        children = [int(pid) for pid in pids.values()]
        assert len(children) == 3  # fakellm, sandbox, dev3000 serve
        # dev3000 serve is pointed at the sandbox and answers on the port it was given
        dev3000 = str(info["dev3000"])
        assert dev3000.endswith(":" + env["DEV3000_PORT"])
        deep = httpx.get(dev3000 + "/api/v1/health/deep", timeout=20)
        assert deep.status_code in (200, 503)
        assert deep.json()["checks"]
        assert httpx.get(dev3000 + "/api/v1/health/ready", timeout=10).status_code == 200
        # an MCP client's calls (the agent's, the console's) print no spans in the demo
        asyncio.run(_mcp_call(dev3000 + "/mcp"))
        # each child leads its own process group/session (ManagedProcess)
        sessions = [proc.pid, *children]
        assert all(_session_members(sid) for sid in sessions)

        proc.send_signal(sig)
        assert proc.wait(timeout=15) == 0
        rest = proc.stdout.read().decode()
        assert "tools/call" not in rest
        assert "tools/list" not in rest
        wait_until(lambda: not any(_session_members(sid) for sid in sessions), timeout=5)
        for pid in children:
            assert not psutil.pid_exists(pid)
        assert (tmp_path / "logs" / "sandbox.jsonl").exists()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def test_a_missing_token_file_is_named_with_its_reason_unmasked(tmp_path: Path) -> None:
    """The OS's reason reaches the user whole (a "token file …: No such …" message had the
    redactor mask the reason's first word as if it were the token)."""
    missing = tmp_path / "chaos-token"
    result = runner.invoke(
        app, ["chaos", "status", "--url", "http://127.0.0.1:9", "--token-file", str(missing)]
    )
    assert result.exit_code == 2
    assert "No such file or directory" in result.output
    assert "REDACTED" not in result.output


def test_demo_stops_every_component_when_its_output_is_gone(tmp_path: Path) -> None:
    """`dev3000 demo | tee demo.log`, then Ctrl-C: tee dies with the same SIGINT, so every
    line the demo writes while stopping fails. The sandbox and the fake LLM were left
    running (only dev3000 stopped before the first failed write)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "DEV3000_PORT": str(free_port())}
    env.pop("SANDBOX_DATABASE_URL", None)
    env.pop("SANDBOX_REDIS_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "guilde_diag.cli", "demo", "--logs-dir",
         str(tmp_path / "logs")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        info: dict[str, object] = {}
        deadline = time.monotonic() + 100
        while time.monotonic() < deadline and not info:
            line = proc.stdout.readline().decode()
            if not line:
                break
            if line.startswith("DEMO READY "):
                info = json.loads(line.removeprefix("DEMO READY "))
        assert info, "the demo never printed its ready line"
        pids = info["pids"]
        assert isinstance(pids, dict)
        sessions = [proc.pid, *(int(pid) for pid in pids.values())]
        proc.stdout.close()  # the reader is gone: every later write of the demo fails
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        wait_until(lambda: not any(_session_members(sid) for sid in sessions), timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
