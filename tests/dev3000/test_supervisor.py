"""The supervisor with real child processes: output captured, start/exit/restart recorded."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest

from dev3000.supervisor import RestartPolicy, Supervisor
from dev3000.timeline.bus import EventBus
from guilde_core.config import Settings
from guilde_core.errors import ConfigurationError
from tools.harness import ServerThread, wait_until

FAILING = textwrap.dedent(
    """
    import sys, time
    print("hello from stdout", flush=True)
    print("ERROR something broke api_key=sk-abcdefghijklmnopqrstuvwx", file=sys.stderr, flush=True)
    time.sleep(0.05)
    sys.exit(3)
    """
)

LONG_RUNNING = textwrap.dedent(
    """
    import subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    print(f"ready child={child.pid}", flush=True)
    time.sleep(120)
    """
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is not alive
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split()[2] != "Z"


def test_failing_child_is_captured_and_restarted_with_backoff(tmp_path: Path) -> None:
    script = tmp_path / "failing.py"
    script.write_text(FAILING)

    async def run() -> tuple[EventBus, Supervisor]:
        bus = EventBus(100)
        bus.bind_loop()
        policy = RestartPolicy(initial_backoff=0.05, multiplier=2, max_restarts=2)
        sup = Supervisor(
            [sys.executable, str(script)], bus=bus, log_dir=tmp_path / "logs", policy=policy
        )
        sup.start()
        await asyncio.wait_for(sup.finished.wait(), 30)
        await sup.stop()
        return bus, sup

    bus, sup = asyncio.run(run())
    kinds = [e.kind for e in bus.events()]
    assert kinds == [
        "process_start", "process_exit", "process_restart",
        "process_start", "process_exit", "process_restart",
        "process_start", "process_exit",
    ]  # fmt: skip
    exits = [e for e in bus.events() if e.kind == "process_exit"]
    assert all(e.data["returncode"] == 3 and e.severity == "error" for e in exits)
    assert exits[0].summary.endswith("exited: exit code 3")
    delays = [e.data["delay_seconds"] for e in bus.events() if e.kind == "process_restart"]
    assert delays == [0.05, 0.1]
    assert sup.status()["restarts"] == 2
    assert sup.status()["running"] is False
    text = sup.log_path.read_text()
    assert text.count("hello from stdout") == 3
    assert text.count("ERROR something broke") == 3  # stderr is captured too


def test_stop_leaves_no_process_behind_and_records_a_clean_exit(tmp_path: Path) -> None:
    script = tmp_path / "server.py"
    script.write_text(LONG_RUNNING)

    async def run() -> tuple[EventBus, Supervisor, int, int]:
        bus = EventBus(100)
        bus.bind_loop()
        sup = Supervisor(
            [sys.executable, str(script)], bus=bus, log_dir=tmp_path / "logs", name="devserver",
            stop_timeout=2,
        )  # fmt: skip
        sup.start()
        for _ in range(500):
            if sup.log_path.exists() and "ready" in sup.log_path.read_text():
                break
            await asyncio.sleep(0.02)
        entry = json.loads(sup.log_path.read_text().splitlines()[0])
        grandchild = int(entry["message"].split("child=")[1].split()[0])
        assert sup.process is not None
        pid = sup.process.pid
        await sup.stop()
        return bus, sup, pid, grandchild

    bus, _, pid, grandchild = asyncio.run(run())
    assert not _alive(pid)
    wait_until(lambda: not _alive(grandchild), timeout=5)
    last = bus.events()[-1]
    assert last.kind == "process_exit"
    assert last.severity == "info"
    assert last.data["stopped"] is True
    assert not any(e.kind == "process_restart" for e in bus.events())


def test_restart_policy_decisions() -> None:
    assert RestartPolicy().should_restart(1, 0)
    assert not RestartPolicy().should_restart(0, 0)
    assert RestartPolicy(mode="always").should_restart(0, 5)
    assert not RestartPolicy(mode="never").should_restart(1, 0)
    assert not RestartPolicy(max_restarts=3).should_restart(1, 3)


def test_bad_commands_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        Supervisor("", bus=EventBus(1), log_dir=tmp_path)
    with pytest.raises(ConfigurationError):
        Supervisor("python 'unclosed", bus=EventBus(1), log_dir=tmp_path)

    async def run() -> EventBus:
        bus = EventBus(10)
        sup = Supervisor(str(tmp_path / "missing-binary"), bus=bus, log_dir=tmp_path)
        sup.start()
        await asyncio.wait_for(sup.finished.wait(), 10)
        await sup.stop()
        return bus

    events = asyncio.run(run()).events()
    assert [e.kind for e in events] == ["process_exit"]
    assert "could not start" in events[0].summary


def test_serve_run_hook_supervises_inside_the_app(tmp_path: Path) -> None:
    """``dev3000 serve --run`` path: the serve lifespan hook → this supervisor → timeline API."""
    from dev3000.app import create_app
    from dev3000.serve import supervisor_lifespan

    logs = tmp_path / "logs"
    logs.mkdir()
    script = tmp_path / "app.py"
    script.write_text(FAILING)
    settings = Settings(dev3000_log_paths=[str(logs)], dev3000_data_dir=str(tmp_path / "data"))
    app = create_app(
        settings,
        mcp=False,
        lifespans=[supervisor_lifespan([f"{sys.executable} {script}"])],
    )
    with ServerThread(app) as srv:

        def kinds() -> list[Any]:
            body = httpx.get(srv.url + "/api/v1/timeline", params={"sources": "process"}).json()
            return [e["kind"] for e in body["items"]]

        wait_until(lambda: kinds().count("process_restart") >= 1, timeout=20)
        supervisors = app.state.dev3000.supervisors
        captured = supervisors[0].log_path
        assert captured.parent == logs
        assert "hello from stdout" in captured.read_text()
    assert all(not s.running for s in supervisors)
