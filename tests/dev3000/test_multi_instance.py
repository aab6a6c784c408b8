"""Several dev3000 instances, and several stacks, on one Redis.

* Two deployments (``DEV3000_DEPLOYMENT``) sharing one Redis never read each other's
  breakers, rate limits, timeline or targets; two instances of one deployment share them.
* Two instances of one deployment relaying the same breaker transition show it once on
  every stream and in every timeline file.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from dev3000.app import create_app
from dev3000.targets_store import TargetCreate, open_targets_store
from dev3000.timeline.bus import EventBus
from dev3000.timeline.service import TimelineService
from guilde_core.config import Settings, reset_settings_cache
from guilde_core.events import make_event
from guilde_core.resilience import BreakerState, get_registry, reset_registry
from guilde_core.shared_redis import probe_sync
from tools.harness import ManagedProcess, delete_keys, free_port, wait_for_http, wait_until


@pytest.fixture
def deployments(redis_url: str) -> Iterator[tuple[str, str]]:
    """Two deployment names unique to this test run; their keys are deleted after it."""
    run = f"t{uuid.uuid4().hex[:10]}"
    yield f"{run}-blue", f"{run}-green"
    delete_keys(redis_url, f"guilde:{run}-")


def test_a_breaker_opened_in_one_deployment_is_closed_in_the_other(
    redis_url: str, deployments: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    blue, green = deployments
    monkeypatch.setenv("CIRCUIT_BREAKER_REDIS_URL", redis_url)

    def in_deployment(name: str, action: Callable[[], Any]) -> Any:
        """Run ``action`` with the process-wide registry of deployment ``name``."""
        monkeypatch.setenv("DEV3000_DEPLOYMENT", name)
        reset_settings_cache()
        reset_registry()

        async def main() -> Any:
            try:
                return await action()
            finally:
                await get_registry().aclose()

        try:
            return asyncio.run(main())
        finally:
            reset_registry()

    async def open_payments() -> BreakerState:
        snap = await get_registry().force_open("payments", reason="drill")
        return snap.state

    async def look() -> tuple[BreakerState, set[str]]:
        reg = get_registry()
        reg.breaker("payments")
        assert reg.remote is not None
        return (await reg.snapshot("payments")).state, await reg.remote.names()

    assert in_deployment(blue, open_payments) is BreakerState.OPEN
    state, names = in_deployment(green, look)
    assert state is BreakerState.CLOSED
    assert "payments" not in names  # green's store has never heard of blue's breaker
    state, names = in_deployment(blue, look)
    assert state is BreakerState.OPEN  # another process of blue reads blue's state
    assert "payments" in names
    with probe_sync(redis_url, 5.0) as client:
        keys = {
            k.decode() if isinstance(k, bytes) else k for k in client.keys(f"guilde:{blue}:cbr::*")
        }
    assert f"guilde:{blue}:cbr::payments::state" in keys


def _settings(make_settings: Callable[..., Settings], deployment: str, redis_url: str) -> Settings:
    return make_settings(
        dev3000_deployment=deployment,
        redis_url=redis_url,
        diagnostic_rate_limit=3,
    )


def test_rate_limits_and_targets_stay_inside_their_deployment(
    make_settings: Callable[..., Settings], redis_url: str, deployments: tuple[str, str]
) -> None:
    blue, green = deployments
    blue_settings = _settings(make_settings, blue, redis_url)
    green_settings = _settings(make_settings, green, redis_url)

    async def add_target() -> None:
        store = open_targets_store(blue_settings)
        await store.create(TargetCreate(name="orders-api", url="http://127.0.0.1:9/"))
        await store.aclose()

    asyncio.run(add_target())
    apps = [
        create_app(s, mcp=False, timeline_sources=False)
        for s in (blue_settings, blue_settings, green_settings)
    ]
    with TestClient(apps[0]) as blue1, TestClient(apps[1]) as blue2, TestClient(apps[2]) as green1:
        names = {
            client: [t["name"] for t in client.get("/api/v1/targets").json()["items"]]
            for client in (blue1, blue2, green1)
        }
        assert names[blue1] == names[blue2] == ["orders-api"]
        assert names[green1] == []
        # blue's two instances share one budget of 3 a minute (the 3 reads above used
        # two of blue's and one of green's); green's is its own
        statuses = [blue1.get("/api/v1/timeline").status_code for _ in range(2)]
        assert statuses == [200, 429]
        assert blue2.get("/api/v1/timeline").status_code == 429
        assert [green1.get("/api/v1/timeline").status_code for _ in range(2)] == [200, 200]


def test_the_timeline_stays_inside_its_deployment(
    make_settings: Callable[..., Settings], redis_url: str, deployments: tuple[str, str]
) -> None:
    blue, green = deployments
    blue_settings = _settings(make_settings, blue, redis_url)
    green_settings = _settings(make_settings, green, redis_url)

    async def main() -> None:
        services = [
            TimelineService(
                s, bus=EventBus(100), files=False, health=False, breakers=False, logs=False
            )
            for s in (blue_settings, blue_settings, green_settings)
        ]
        for service in services:
            await service.start()
        try:
            for service in services:
                assert service.fanout is not None
                await asyncio.wait_for(service.fanout.subscribed.wait(), 10)
            blue1, blue2, green1 = (s.bus for s in services)
            from_blue = make_event(source="test", kind="notice", subject="b", summary="blue")
            from_green = make_event(source="test", kind="notice", subject="g", summary="green")
            blue1.publish(from_blue)
            green1.publish(from_green)
            for _ in range(200):
                if blue2.seen(from_blue.id):
                    break
                await asyncio.sleep(0.05)
            assert blue2.seen(from_blue.id)  # one deployment: one timeline
            await asyncio.sleep(1.0)  # time enough for a leak to arrive
            assert not green1.seen(from_blue.id)
            assert not blue1.seen(from_green.id)
            assert not blue2.seen(from_green.id)
        finally:
            for service in services:
                await service.shutdown()

    asyncio.run(main())


# --- two instances of one deployment, as real processes ----------------------------------
class _StreamReader:
    """Every event frame of one instance's WebSocket stream, read in a thread."""

    def __init__(self, base: str) -> None:
        from websockets.sync.client import connect

        self.events: list[dict[str, Any]] = []
        self._ws = connect(
            base.replace("http://", "ws://") + "/api/v1/diag/stream", open_timeout=10, proxy=None
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                frame = json.loads(self._ws.recv(timeout=0.5))
            except TimeoutError:
                continue
            except Exception:
                return
            if frame.get("type") == "event":
                self.events.append(frame["event"])

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._ws.close()


def _serve(tmp: Path, name: str, env: dict[str, str]) -> tuple[ManagedProcess, str, Path]:
    port = free_port()
    logs = tmp / name / "logs"
    logs.mkdir(parents=True)
    out = (tmp / f"{name}.out").open("wb")
    argv = [sys.executable, "-m", "guilde_diag.cli", "serve", "--port", str(port)]
    proc_env = {
        **env,
        "DEV3000_LOG_PATHS": str(logs),
        "DEV3000_DATA_DIR": str(tmp / name / "data"),
    }
    proc = ManagedProcess(argv, env=proc_env, cwd=tmp, stdout=out, stderr=out).start()
    return proc, f"http://127.0.0.1:{port}", logs / "timeline"


def test_two_instances_show_each_breaker_transition_once(
    tmp_path: Path, redis_url: str, deployments: tuple[str, str]
) -> None:
    """Instance A opens a breaker (its own transition, which B learns of through the
    breakers' channel); a third process opens another (both learn of it through the
    channel). Each instance relays what it learns, and the fan-out brings each the other's
    relay: every stream, every buffer and every timeline file still has each transition
    once."""
    from dev3000.timeline.fanout import append_event
    from guilde_core.resilience import BreakerRegistry

    deployment = deployments[0]
    namespace = f"guilde:{deployment}:"
    env = {
        "DEV3000_DEPLOYMENT": deployment,
        "REDIS_URL": redis_url,
        "CIRCUIT_BREAKER_REDIS_URL": redis_url,
        "DIAGNOSTIC_CONTROL_ENABLED": "true",
        "HEALTH_DEEP_CHECK_ENABLED": "false",
        "DEV3000_LOG_LEVEL": "info",
    }
    started = [_serve(tmp_path, name, env) for name in ("a", "b")]
    readers: list[_StreamReader] = []
    try:
        for _, base, _ in started:
            wait_for_http(base + "/api/v1/health/ready", timeout=90, status=200)
        readers = [_StreamReader(base) for _, base, _ in started]
        channel = f"{namespace}cbr::__transitions__"
        with probe_sync(redis_url, 5.0) as client:
            # both instances watch the breakers' channel …
            wait_until(lambda: client.pubsub_numsub(channel)[0][1] == 2, timeout=30)

        # … and read the shared timeline stream: a marker reaches both streams
        async def marker() -> str:
            event = make_event(source="test", kind="notice", subject="marker", summary="sync")
            await append_event(redis_url, event, origin="test", prefix=f"{namespace}dev3000:")
            return event.id

        markers: list[str] = []

        def both_read_the_stream() -> bool:
            markers.append(asyncio.run(marker()))
            time.sleep(0.3)
            return all({e["id"] for e in r.events} & set(markers) for r in readers)

        wait_until(both_read_the_stream, timeout=30, interval=0.2)

        a_base = started[0][1]
        opened = httpx.post(
            a_base + "/api/v1/diag/circuits/openai/open", json={"reason": "drill"}, timeout=10
        )
        assert opened.status_code == 200, opened.text

        async def third_process() -> None:
            reg = BreakerRegistry(redis_url=redis_url, prefix=namespace)
            await reg.force_open("anthropic", reason="from elsewhere")
            await reg.aclose()

        asyncio.run(third_process())

        def transitions(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
            return [(e["subject"], e["id"]) for e in events if e["kind"] == "circuit_transition"]

        wait_until(
            lambda: all({s for s, _ in transitions(r.events)} == {"openai", "anthropic"}
                        for r in readers),
            timeout=20,
        )  # fmt: skip
        time.sleep(2.0)  # time enough for a second copy to arrive
        for reader in readers:
            got = transitions(reader.events)
            assert sorted(s for s, _ in got) == ["anthropic", "openai"], got
        # the same event (one id) on both instances
        assert sorted(transitions(readers[0].events)) == sorted(transitions(readers[1].events))
        for _, base, timeline_dir in started:
            page = httpx.get(
                base + "/api/v1/timeline", params={"kinds": "circuit_transition"}, timeout=10
            ).json()
            assert sorted(e["subject"] for e in page["items"]) == ["anthropic", "openai"]
            lines = [
                json.loads(line)
                for path in sorted(timeline_dir.glob("timeline-*.jsonl"))
                for line in path.read_text(encoding="utf-8").splitlines()
            ]
            ids = [e["id"] for e in lines if e["kind"] == "circuit_transition"]
            assert len(ids) == len(set(ids)), ids
    finally:
        for reader in readers:
            reader.close()
        for proc, _, _ in started:
            proc.stop()


def test_a_health_change_every_instance_observes_is_reported_once(
    make_settings: Callable[..., Settings], redis_url: str, deployments: tuple[str, str]
) -> None:
    """Each instance polls deep health itself; when both see the database go down (and come
    back), the first to see it reports it and the other stays silent: each timeline has
    every transition once. A change only one instance sees is still reported."""
    settings = _settings(make_settings, deployments[0], redis_url)
    status = {"a": "healthy", "b": "healthy"}

    def check_of(instance: str) -> Callable[[], Any]:
        async def check() -> dict[str, Any]:
            s = status[instance]
            return {"status": s, "checks": {"database": {"status": s}}}

        return check

    async def main() -> list[list[tuple[str, str]]]:
        services = [
            TimelineService(
                settings,
                bus=EventBus(100),
                deep_check=check_of(name),
                files=False,
                breakers=False,
                logs=False,
            )
            for name in ("a", "b")
        ]
        for service in services:
            await service.start()
        try:
            for service in services:
                assert service.fanout is not None
                assert service.poller is not None
                await asyncio.wait_for(service.fanout.subscribed.wait(), 10)
                for _ in range(100):  # the first poll: everything healthy, nothing reported
                    if service.poller.polls:
                        break
                    await asyncio.sleep(0.02)
            pollers = [s.poller for s in services]
            assert pollers[0] is not None
            assert pollers[1] is not None
            status.update(a="unhealthy", b="unhealthy")
            await pollers[0].poll_once()
            await pollers[1].poll_once()
            status.update(a="healthy", b="healthy")
            await pollers[1].poll_once()
            await pollers[0].poll_once()
            status.update(b="degraded")  # only b sees this one
            await pollers[1].poll_once()
            await asyncio.sleep(1.5)  # time enough for the fan-out to deliver everything
            return [
                [(e.subject, e.data["to"]) for e in s.bus.events() if e.kind == "health_transition"]
                for s in services
            ]
        finally:
            for service in services:
                await service.shutdown()

    seen_a, seen_b = asyncio.run(main())
    expected = [
        ("overall", "unhealthy"),
        ("database", "unhealthy"),
        ("overall", "healthy"),
        ("database", "healthy"),
        ("overall", "degraded"),
        ("database", "degraded"),
    ]
    assert sorted(seen_a) == sorted(expected)
    assert sorted(seen_b) == sorted(expected)


def test_a_reload_keeps_the_running_deployment_name(
    make_settings: Callable[..., Settings],
    redis_url: str,
    deployments: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every running store, the limiter and the fan-out use the name they started with: a
    SIGHUP reload that sees another one keeps the running one (it needs a restart)."""
    from dev3000.app import reload_config

    blue, green = deployments
    app = create_app(_settings(make_settings, blue, redis_url), mcp=False, timeline_sources=False)
    with TestClient(app):
        monkeypatch.setenv("DEV3000_DEPLOYMENT", green)
        monkeypatch.setenv("DIAGNOSTIC_RATE_LIMIT", "7")
        changed = reload_config(app)
        assert "DIAGNOSTIC_RATE_LIMIT" in changed  # the reload applied …
        assert "DEV3000_DEPLOYMENT" not in changed  # … but not the deployment name
        state = app.state.dev3000
        assert state.settings.dev3000_deployment == blue
        assert state.redis_prefix == f"guilde:{blue}:dev3000:"
