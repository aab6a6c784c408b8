"""Timeline: bus queries, files with rotation and a `current` link, and the event sources."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from dev3000.timeline.bus import EventBus
from dev3000.timeline.files import TimelineFiles, timeline_dir
from dev3000.timeline.filters import EventFilter, parse_filter
from dev3000.timeline.service import TimelineService
from dev3000.timeline.sources import (
    BreakerWatcher,
    HealthPoller,
    LogFollower,
    breaker_event,
    flatten_statuses,
)
from guilde_core.config import Settings
from guilde_core.errors import InvalidInputError
from guilde_core.events import TimelineEvent, make_event
from guilde_core.resilience import BreakerRegistry, BreakerState, BreakerTransition, get_registry
from tools.harness import ServerThread, wait_until


def ev(n: int, **kw: Any) -> TimelineEvent:
    kw.setdefault("kind", "notice")
    kw.setdefault("source", "test")
    return make_event(subject=f"s{n}", summary=f"event {n}", data={"n": n}, **kw)


# --- bus -----------------------------------------------------------------------------------
def test_buffer_is_bounded_and_duplicates_are_ignored() -> None:
    bus = EventBus(3)
    events = [ev(i) for i in range(5)]
    for e in events:
        assert bus.publish(e)
    assert not bus.publish(events[-1])  # same id again (e.g. back through Redis)
    assert [e.id for e in bus.events()] == [e.id for e in events[2:]]
    assert bus.duplicates == 1


def test_query_pages_newest_first_with_filters() -> None:
    bus = EventBus(100)
    events = [
        ev(i, kind="error_log" if i % 2 else "notice", severity="error" if i % 2 else "info")
        for i in range(9)
    ]
    for e in events:
        bus.publish(e)
    errors = [e for e in events if e.kind == "error_log"]
    page = bus.query(parse_filter({"kinds": "error_log"}), limit=3)
    assert [e.id for e in page.items] == [e.id for e in reversed(errors)][:3]
    assert page.next_cursor == page.items[-1].id
    rest = bus.query(parse_filter({"kinds": "error_log"}), limit=3, before=page.next_cursor)
    assert [e.id for e in rest.items] == [errors[0].id]
    assert rest.next_cursor is None
    newer = bus.query(EventFilter(), after=events[6].id)
    assert [e.id for e in newer.items] == [events[8].id, events[7].id]
    assert [e.id for e in bus.recent(2, EventFilter(severity="error"))] == [
        errors[-2].id,
        errors[-1].id,
    ]


def test_filter_parsing_names_the_bad_field() -> None:
    with pytest.raises(InvalidInputError, match="severity"):
        parse_filter({"severity": "loud"})
    with pytest.raises(InvalidInputError, match="kinds"):
        parse_filter({"kinds": "error_log,nonsense"})
    flt = parse_filter({"kind": "error_log", "min_severity": "WARNING", "source": "logs,process"})
    assert flt.describe() == {
        "kinds": ["error_log"],
        "severity": "warning",
        "sources": ["logs", "process"],
    }


def test_events_published_from_another_thread_reach_the_loop() -> None:
    async def run() -> list[str]:
        bus = EventBus(10)
        bus.bind_loop()
        sub = bus.subscribe()
        events = [ev(i) for i in range(3)]
        await asyncio.gather(*(asyncio.to_thread(bus.publish, e) for e in events))
        got = []
        for _ in events:
            item = await sub.get(max_wait=5)
            assert isinstance(item, TimelineEvent)
            got.append(item.id)
        return sorted(got)

    assert len(asyncio.run(run())) == 3


# --- files ---------------------------------------------------------------------------------
def test_files_rotate_keep_the_last_ten_and_point_current_at_the_live_one(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "logs" / "timeline"
    files = TimelineFiles(directory, max_bytes=1024, keep=10)
    events = [ev(i) for i in range(120)]
    for e in events:
        files.emit(e)
    kept = files.files()
    assert len(kept) == 10
    assert files.part > 10  # older parts were deleted
    link = directory / "current"
    assert link.is_symlink()
    assert os.readlink(link) == kept[-1].name  # relative: the directory can move
    assert link.resolve() == files.path
    lines = [json.loads(line) for p in kept for line in p.read_text().splitlines()]
    assert [d["id"] for d in lines] == [e.id for e in events][-len(lines) :]
    assert all(p.stat().st_size <= 1024 for p in kept)
    # a new session gets its own file; `current` follows it
    files.close()
    second = TimelineFiles(directory, keep=10)
    second.session += "-b"
    second.emit(ev(999))
    assert link.resolve() == second.path
    assert second.path not in kept
    assert len(second.files()) == 10
    second.close()


def test_timeline_dir_is_under_the_first_log_directory(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    settings = Settings(dev3000_log_paths=[str(tmp_path / "x/*.log"), str(tmp_path / "b")])
    assert timeline_dir(settings) == tmp_path / "b" / "timeline"


# --- sources: logs -------------------------------------------------------------------------
def test_log_follower_emits_error_lines_follows_rotation_and_limits_floods(
    tmp_path: Path,
) -> None:
    logs = tmp_path / "logs"
    (logs / "timeline").mkdir(parents=True)
    app_log = logs / "app.log"
    app_log.write_text("ERROR old line, before we started\n")
    settings = Settings(dev3000_log_paths=[str(logs)])

    async def wait_for(bus: EventBus, count: int, timeout: float = 15) -> list[TimelineEvent]:
        for _ in range(int(timeout / 0.05)):
            if len(bus) >= count:
                break
            await asyncio.sleep(0.05)
        return bus.events()

    async def run() -> None:
        bus = EventBus(500)
        bus.bind_loop()
        follower = LogFollower(
            bus, settings, exclude=[logs / "timeline"], interval=0.05, max_per_second=5
        )
        follower.start()
        await asyncio.sleep(0.5)  # existing content is not replayed
        with app_log.open("a") as f:
            f.write("INFO fine\n")
            f.write(
                "2026-01-22 10:00:00 ERROR api: payment failed token=sk-live-abcdefghijklmnop\n"
            )
            f.write('{"level": "critical", "message": "db gone", "correlation_id": "c-42"}\n')
            f.write("INFO request done\n")
            f.write("Traceback (most recent call last):\n")  # joined to the INFO line
            f.write('  File "worker.py", line 9, in run\n')
            f.write("ZeroDivisionError: division by zero\n")
            f.write("INFO next\n")
        (logs / "timeline" / "t.jsonl").write_text('{"level": "error", "message": "x"}\n')
        events = await wait_for(bus, 3)
        assert [e.severity for e in events] == ["error", "critical", "error"]
        assert all(e.kind == "error_log" and e.source == "logs" for e in events)
        assert "sk-live-abcdefghijklmnop" not in events[0].model_dump_json()
        assert events[1].correlation_id == "c-42"
        assert "ZeroDivisionError" in events[2].data["message"]  # the traceback is one event
        assert "old line" not in str([e.summary for e in events])
        # rotation: the file is renamed and a new one starts
        app_log.rename(logs / "app.log.1")
        app_log.write_text("ERROR after rotation\n")
        events = await wait_for(bus, 4)
        assert events[-1].summary == "ERROR after rotation"
        # a flood is capped, with a notice of what was held back
        await asyncio.sleep(1.1)  # a fresh one-second window
        with app_log.open("a") as f:
            f.writelines(f"ERROR flood {i}\n" for i in range(50))
        events = await wait_for(bus, 4 + 5 + 1, timeout=20)
        flood = [e for e in events[4:] if e.kind == "error_log"]
        notices = [e for e in events[4:] if e.kind == "notice"]
        assert len(flood) == 5
        assert [n.data["held_back"] for n in notices] == [45]
        await follower.stop()

    asyncio.run(run())


# --- sources: health -----------------------------------------------------------------------
def _report(overall: str, db: str, openai: str) -> dict[str, Any]:
    return {
        "status": overall,
        "checks": {
            "database": {"status": db, "latency_ms": 5.0},
            "redis": {"status": "healthy"},
            "external_apis": {"openai": {"status": openai, "circuit_state": "closed"}},
        },
    }


def test_flatten_statuses_walks_the_seed_shape() -> None:
    flat = flatten_statuses(_report("degraded", "healthy", "degraded"))
    assert {k: v["status"] for k, v in flat.items()} == {
        "overall": "degraded",
        "database": "healthy",
        "redis": "healthy",
        "external_apis.openai": "degraded",
    }


def test_health_poller_emits_only_transitions() -> None:
    reports = [
        _report("healthy", "healthy", "healthy"),
        _report("healthy", "healthy", "healthy"),
        _report("unhealthy", "unhealthy", "healthy"),
        _report("unhealthy", "unhealthy", "healthy"),
        RuntimeError("connection refused password=hunter2"),
        RuntimeError("still down"),
        _report("healthy", "healthy", "degraded"),
    ]

    async def check() -> Any:
        item = reports.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    async def run() -> list[list[TimelineEvent]]:
        bus = EventBus(100)
        poller = HealthPoller(bus, check, interval=0.01)
        return [await poller.poll_once() for _ in range(7)]

    rounds = asyncio.run(run())
    assert [len(r) for r in rounds] == [0, 0, 2, 0, 1, 0, 3]
    overall, db = rounds[2]
    assert (overall.subject, overall.data["from"], overall.data["to"]) == (
        "overall",
        "healthy",
        "unhealthy",
    )
    assert db.severity == "error"
    assert db.data["latency_ms"] == 5.0
    failed = rounds[4][0]
    assert failed.kind == "notice"
    assert "hunter2" not in failed.model_dump_json()
    recovered = {e.subject: e for e in rounds[6]}
    assert recovered["external_apis.openai"].severity == "warning"
    assert recovered["overall"].severity == "info"


def test_a_health_transition_says_why() -> None:
    slow = {
        "status": "degraded",
        "checks": {
            "database": {
                "status": "degraded",
                "latency_ms": 801.0,
                "reasons": [
                    {"category": "circuit_open", "summary": "breaker open", "consequence": True},
                    {"category": "latency", "summary": "latency 801 ms\n> 100 ms"},
                ],
            }
        },
    }
    reports = [slow, {"status": "healthy", "checks": {"database": {"status": "healthy"}}}]

    async def check() -> Any:
        return reports.pop(0)

    async def run() -> list[list[TimelineEvent]]:
        poller = HealthPoller(EventBus(10), check, interval=0.01)
        return [await poller.poll_once() for _ in range(2)]

    degraded, healthy = asyncio.run(run())
    db = next(e for e in degraded if e.subject == "database")
    # the cause, not its consequence, on one line; the reasons themselves in the data
    assert db.summary == "database: unknown → degraded — latency 801 ms > 100 ms"
    assert [r["category"] for r in db.data["reasons"]] == ["circuit_open", "latency"]
    back = next(e for e in healthy if e.subject == "database")
    assert back.summary == "database: degraded → healthy"


# --- sources: breakers ---------------------------------------------------------------------
def _transition(name: str, old: str, new: str, reason: str = "") -> BreakerTransition:
    return BreakerTransition(
        name=name,
        from_state=BreakerState(old),
        to_state=BreakerState(new),
        at=datetime.now(UTC),
        reason=reason,
    )


def test_breaker_event_from_a_transition() -> None:
    event = breaker_event(_transition("openai", "closed", "open", "3 failures"))
    assert (event.kind, event.source, event.subject, event.severity) == (
        "circuit_transition",
        "circuits",
        "openai",
        "error",
    )
    assert event.summary == "openai: closed → open (3 failures)"
    assert breaker_event(_transition("x", "open", "half-open")).data["to"] == "half-open"


def test_breaker_watcher_relays_the_real_registry() -> None:

    async def run() -> list[TimelineEvent]:
        bus = EventBus(100)
        bus.bind_loop()
        watcher = BreakerWatcher(bus)
        watcher.start()
        registry = get_registry()
        await registry.force_open("timeline-test", reason="test")
        await asyncio.sleep(0.05)
        await watcher.stop()
        await registry.reset("timeline-test", reason="test")
        return bus.events()

    events = [e for e in asyncio.run(run()) if e.subject == "timeline-test"]
    assert events, "no circuit_transition relayed"
    opened = events[0]
    assert (opened.kind, opened.severity, opened.data["to"]) == (
        "circuit_transition",
        "error",
        "open",
    )
    assert opened.data["manual"] is True
    assert "test" in opened.summary  # the reason given to force_open


# --- the service ---------------------------------------------------------------------------
def test_service_writes_files_and_follows_logs(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    settings = Settings(dev3000_log_paths=[str(logs)], health_deep_check_interval=0.05)
    polls: list[int] = []

    async def check() -> dict[str, Any]:
        polls.append(1)
        return _report("degraded" if len(polls) > 1 else "healthy", "healthy", "healthy")

    async def run() -> tuple[list[TimelineEvent], dict[str, Any]]:
        service = TimelineService(settings, deep_check=check, fanout=False, breakers=False)
        await service.start()
        assert service.follower is not None
        await asyncio.sleep(0.5)  # the follower has looked at what exists
        (logs / "svc.log").write_text("ERROR from the service\n")
        for _ in range(500):
            kinds = {e.kind for e in service.bus.events()}
            if {"error_log", "health_transition"} <= kinds:
                break
            await asyncio.sleep(0.02)
        status = service.status()
        await service.shutdown()
        return service.bus.events(), status

    events, status = asyncio.run(run())
    assert {"error_log", "health_transition"} <= {e.kind for e in events}
    current = logs / "timeline" / "current"
    written = [json.loads(line)["id"] for line in current.read_text().splitlines()]
    assert written == [e.id for e in events]
    assert status["files"] is not None
    assert status["health_poller"]
    assert status["log_follower"]


def test_breaker_transitions_of_another_process_reach_the_timeline(
    redis_url: str, redis_prefix: str
) -> None:
    """A breaker opened by a different process (sharing Redis) becomes a timeline event."""
    import subprocess
    import sys

    other = (
        "import asyncio, sys\n"
        "from guilde_core.resilience import BreakerRegistry\n"
        "async def main():\n"
        "    reg = BreakerRegistry(redis_url=sys.argv[1], prefix=sys.argv[2])\n"
        "    reg.breaker('remote-upstream')\n"
        "    await reg.force_open('remote-upstream', reason='opened elsewhere')\n"
        "asyncio.run(main())\n"
    )

    async def run() -> list[TimelineEvent]:
        bus = EventBus(100)
        bus.bind_loop()
        registry = BreakerRegistry(redis_url=redis_url, prefix=redis_prefix)
        watcher = BreakerWatcher(bus, registry)
        watcher.start()
        await asyncio.sleep(0.5)  # the Redis subscription is in place
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", other, redis_url, redis_prefix, stderr=subprocess.PIPE
        )
        _, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
        for _ in range(200):
            if any(e.subject == "remote-upstream" for e in bus.events()):
                break
            await asyncio.sleep(0.05)
        await watcher.stop()
        with contextlib.suppress(Exception):
            await registry.aclose()
        return bus.events()

    events = [e for e in asyncio.run(run()) if e.subject == "remote-upstream"]
    assert events, "the other process's transition did not arrive"
    assert events[0].data["to"] == "open"
    assert events[0].data.get("origin")  # which process made the change


def test_a_stopped_service_leaves_no_sink_behind(tmp_path: Path) -> None:
    """An app restarted on the same bus must not keep writing through the old service."""
    logs = tmp_path / "logs"
    logs.mkdir()
    settings = Settings(dev3000_log_paths=[str(logs)])
    first, later = ev(1), ev(2)

    async def run() -> None:
        bus = EventBus(10)
        service = TimelineService(
            settings, bus=bus, fanout=False, health=False, breakers=False, logs=False
        )
        await service.start()
        bus.publish(first)
        await service.shutdown()
        bus.reopen()
        bus.publish(later)
        assert later.id in [e.id for e in bus.events()]

    asyncio.run(run())
    files = list((logs / "timeline").glob("timeline-*.jsonl"))
    assert len(files) == 1
    text = files[0].read_text()
    assert first.id in text
    assert later.id not in text


def test_the_app_runs_the_timeline_on_its_own_bus(tmp_path: Path) -> None:
    """Inside ``dev3000 serve``: log errors reach the REST timeline and the current file."""
    from dev3000.app import create_app

    logs = tmp_path / "logs"
    logs.mkdir()
    settings = Settings(
        dev3000_log_paths=[str(logs)],
        dev3000_data_dir=str(tmp_path / "data"),
        health_deep_check_interval=3600,
    )
    app = create_app(settings, mcp=False)
    with ServerThread(app) as srv:
        service = app.state.dev3000.timeline
        assert service.bus is app.state.dev3000.bus
        wait_until(lambda: service.follower is not None, timeout=10)
        time.sleep(0.6)  # the follower has looked at the existing files
        (logs / "api.log").write_text("ERROR order 42 failed: upstream timeout\n")

        def error_ids() -> list[str]:
            body = httpx.get(srv.url + "/api/v1/timeline", params={"kinds": "error_log"}).json()
            return [e["id"] for e in body["items"]]

        wait_until(lambda: len(error_ids()) == 1, timeout=15)
        event_id = error_ids()[0]
        current = logs / "timeline" / "current"
        wait_until(lambda: event_id in current.read_text(), timeout=5)
