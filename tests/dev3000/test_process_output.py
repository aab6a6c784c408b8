"""A supervised process's output as a log source (levels, tracebacks, JSON kept, redacted),
read by the logs tools and the timeline's follower; restarts on request through MCP are
control actions, audited."""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from fastmcp import Client

from dev3000.mcp_aggregate import build_aggregate_server
from dev3000.process_output import ProcessOutput, detect_level
from dev3000.supervisor import RestartPolicy, Supervisor, supervisor_lifespan
from dev3000.timeline.bus import EventBus
from dev3000.timeline.service import TimelineService
from guilde_core.config import Settings
from servers.logs import logic as logs

NOISY = textwrap.dedent(
    """
    import json, sys, time
    print("INFO:     Uvicorn running on http://127.0.0.1:8000", flush=True)
    print(json.dumps({"level": "error", "message": "charge failed", "request_id": "req-4242abcd",
                      "api_key": "sk-planted0123456789abcdef"}), flush=True)
    print("Warning: config file not found, using defaults", file=sys.stderr, flush=True)
    time.sleep(0.4)  # quiet: the warning is complete (a traceback right after would join it)
    try:
        {}["customer_tier"]
    except KeyError:
        import traceback
        traceback.print_exc()
    sys.stderr.flush()
    time.sleep(0.4)
    print("TypeError: cannot read 'total' of undefined", file=sys.stderr, flush=True)
    print("plain progress line 7/10", flush=True)
    time.sleep(30)
    """
)


def _entries(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_levels_are_detected_from_the_line_or_its_shape() -> None:
    assert detect_level("Traceback (most recent call last):", None) == "error"
    assert detect_level("TypeError: x is undefined", None) == "error"
    assert detect_level("panic: runtime error: index out of range", None) == "error"
    assert detect_level("(node:123) Warning: something is deprecated", None) == "warning"
    assert detect_level("compiled 42 modules", None) == "info"
    assert detect_level("anything", "critical") == "critical"


def test_output_is_rotated_and_generations_are_kept(tmp_path: Path) -> None:
    out = ProcessOutput(tmp_path / "app.log", "app", max_bytes=2048, keep=2)
    for i in range(200):
        out.feed(f"line {i:04d} {'x' * 40}\n".encode(), "stdout")
    out.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["app.log", "app.log.1", "app.log.2"]
    assert all(p.stat().st_size <= 2048 for p in tmp_path.iterdir())
    assert _entries(tmp_path / "app.log")[-1]["message"].startswith("line 0199")


def test_process_output_is_a_log_source_the_logs_tools_and_the_timeline_read(
    tmp_path: Path,
) -> None:
    script = tmp_path / "noisy.py"
    script.write_text(NOISY)
    logs_dir = tmp_path / "logs"
    logs_dir.mkdir()
    settings = Settings(dev3000_log_paths=[str(logs_dir)], health_deep_check_enabled=False)

    async def run() -> tuple[EventBus, Supervisor]:
        bus = EventBus(200)
        service = TimelineService(
            settings, bus=bus, files=False, fanout=False, health=False, breakers=False
        )
        await service.start()
        sup = Supervisor(
            [sys.executable, str(script)], bus=bus, log_dir=logs_dir, name="devserver",
            policy=RestartPolicy(mode="never"), stop_timeout=2,
        )  # fmt: skip
        sup.start()
        for _ in range(200):
            if sum(e.kind == "error_log" for e in bus.events()) >= 3:
                break
            await asyncio.sleep(0.05)
        await sup.stop()
        await service.shutdown()
        return bus, sup

    bus, sup = asyncio.run(run())
    entries = _entries(sup.log_path)
    by_message = {e["message"].splitlines()[0]: e for e in entries}
    assert by_message["Uvicorn running on http://127.0.0.1:8000"]["level"] == "info"
    charge = by_message["charge failed"]
    assert charge["level"] == "error"
    assert charge["request_id"] == "req-4242abcd"
    assert charge["stream"] == "stdout"
    assert by_message["Warning: config file not found, using defaults"]["level"] == "warning"
    traceback = by_message["Traceback (most recent call last):"]
    assert traceback["level"] == "error"
    assert traceback["stream"] == "stderr"
    assert "KeyError: 'customer_tier'" in traceback["message"]  # one entry, not six lines
    assert by_message["TypeError: cannot read 'total' of undefined"]["level"] == "error"
    assert by_message["plain progress line 7/10"]["level"] == "info"
    assert "sk-planted0123456789abcdef" not in sup.log_path.read_text()
    # the logs tools read it: levels, error groups, a trace by request id
    tail = asyncio.run(logs.tail(sources=["devserver.log"], lines=50, settings=settings))
    assert {e.level for e in tail.entries} >= {"info", "warning", "error"}
    groups = asyncio.run(logs.error_groups(sources=["devserver.log"], settings=settings))
    assert len(groups.groups) >= 3
    trace = asyncio.run(logs.trace("req-4242abcd", settings=settings))
    assert [e.message for e in trace.entries] == ["charge failed"]
    # and the timeline's follower turned its errors into error_log events
    errors = [e for e in bus.events() if e.kind == "error_log"]
    assert {e.subject for e in errors} == {"devserver.log"}
    assert any("KeyError" in e.data["message"] for e in errors)


LOOP = "import time\nprint('up', flush=True)\ntime.sleep(60)\n"


def test_restart_over_mcp_is_a_control_action_and_is_audited(tmp_path: Path) -> None:
    script = tmp_path / "server.py"
    script.write_text(LOOP)

    async def run(control: bool) -> tuple[list[Any], EventBus]:
        settings = Settings(
            dev3000_log_paths=[str(tmp_path)],
            diagnostic_control_enabled=control,
            health_deep_check_enabled=False,
        )
        bus = EventBus(100)
        bus.bind_loop()
        state = SimpleNamespace(settings=settings, bus=bus, supervisors=[])
        app = SimpleNamespace(state=SimpleNamespace(dev3000=state))
        results: list[Any] = []
        async with supervisor_lifespan(app, [f"{sys.executable} {script}"]) as sups:
            assert state.supervisors == sups
            while sups[0].runs < 1:
                await asyncio.sleep(0.02)
            first_pid = sups[0].status()["pid"]
            aggregate = build_aggregate_server(
                settings, bus=bus, processes=lambda: state.supervisors
            )
            async with Client(aggregate) as client:
                listed = await client.call_tool_mcp("process_list", {})
                results.append(listed.structured_content)
                restarted = await client.call_tool_mcp(
                    "process_restart", {"name": sups[0].name, "reason": "picked up new code"}
                )
                results.append(restarted)
                unknown = await client.call_tool_mcp(
                    "process_restart", {"name": "nope", "reason": "no such process"}
                )
                results.append(unknown)
            results.append((first_pid, sups[0].status()))
        assert state.supervisors == []
        return results, bus

    refused, bus = asyncio.run(run(control=False))
    assert refused[1].is_error
    assert "DIAGNOSTIC_CONTROL_ENABLED" in str(refused[1].content)
    assert not [e for e in bus.events() if e.kind == "control_action"]

    results, bus = asyncio.run(run(control=True))
    listed, restarted, unknown, (first_pid, after) = results
    assert [p["name"] for p in listed["processes"]] == [Path(sys.executable).name]
    assert listed["processes"][0]["log"].endswith(".log")
    assert not restarted.is_error, restarted.content
    assert restarted.structured_content["runs"] == 2
    assert after["pid"] != first_pid
    assert unknown.is_error
    assert "no supervised process 'nope'" in str(unknown.content)
    kinds = [e.kind for e in bus.events()]
    assert kinds.count("process_start") == 2
    exits = [e for e in bus.events() if e.kind == "process_exit"]
    assert exits[0].severity == "info"
    assert "restart requested" in exits[0].summary
    audit = [e for e in bus.events() if e.kind == "control_action"]
    assert len(audit) == 1
    assert audit[0].data["action"] == "process_restart"
    assert audit[0].data["key_id"] == "local"
    assert audit[0].data["reason"] == "picked up new code"
    assert audit[0].source == "process"
