"""Two dev3000 instances sharing the real Redis act as one timeline."""

from __future__ import annotations

import asyncio

from dev3000.timeline.fanout import RedisFanout
from guilde_core.events import make_event
from tools.harness import wait_until

from .conftest import StreamFactory, StreamHarness, recv_json, recv_until


def _start_fanout(srv: StreamHarness, redis_url: str, prefix: str) -> RedisFanout:
    loop = srv.bus._loop
    assert loop is not None

    async def start() -> RedisFanout:
        fanout = RedisFanout(srv.bus, redis_url, prefix=prefix)
        await fanout.start()
        await asyncio.wait_for(fanout.subscribed.wait(), 10)
        return fanout

    return asyncio.run_coroutine_threadsafe(start(), loop).result(15)


def _stop_fanout(srv: StreamHarness, fanout: RedisFanout) -> None:
    loop = srv.bus._loop
    assert loop is not None
    asyncio.run_coroutine_threadsafe(fanout.stop(), loop).result(10)


def test_an_event_observed_by_one_instance_reaches_clients_of_both_once(
    stream_server: StreamFactory, redis_url: str, redis_prefix: str
) -> None:
    a, b = stream_server(), stream_server()
    with a.ws() as on_a, b.ws() as on_b:
        recv_json(on_a)
        recv_json(on_b)  # hello frames: both loops are bound
        fan_a = _start_fanout(a, redis_url, redis_prefix)
        fan_b = _start_fanout(b, redis_url, redis_prefix)
        try:
            first = make_event(source="circuits", kind="circuit_transition", severity="error",
                               subject="openai", summary="openai: closed → open")  # fmt: skip
            second = make_event(source="health", kind="health_transition", subject="redis",
                                summary="redis: degraded → healthy")  # fmt: skip
            a.bus.publish(first)
            b.bus.publish(second)
            for ws in (on_a, on_b):
                got = [recv_until(ws, "event")["event"]["id"] for _ in range(2)]
                assert sorted(got) == sorted([first.id, second.id])
            # nothing is delivered twice: the next event each client sees is a new one
            marker = make_event(source="test", kind="notice", subject="m", summary="marker")
            a.bus.publish(marker)
            assert recv_until(on_a, "event")["event"]["id"] == marker.id
            assert recv_until(on_b, "event")["event"]["id"] == marker.id
            # each instance buffers every event once, for resume and the REST query
            for srv in (a, b):
                wait_until(lambda srv=srv: len(srv.bus) == 3)  # type: ignore[misc]
                assert sorted(e.id for e in srv.bus.events()) == sorted(
                    [first.id, second.id, marker.id]
                )
            wait_until(lambda: (fan_a.sent, fan_b.sent, fan_b.received) == (2, 1, 2))
            assert fan_a.status()["connected"] is True
        finally:
            _stop_fanout(a, fan_a)
            _stop_fanout(b, fan_b)


def test_fanout_survives_redis_going_away(
    stream_server: StreamFactory, private_redis: object
) -> None:
    from tools.harness import PrivateRedis

    assert isinstance(private_redis, PrivateRedis)
    a, b = stream_server(), stream_server()
    with a.ws() as on_a, b.ws() as on_b:
        recv_json(on_a)
        recv_json(on_b)
        fan_a = _start_fanout(a, private_redis.url, "p:")
        fan_b = _start_fanout(b, private_redis.url, "p:")
        try:
            before = make_event(source="test", kind="notice", subject="w", summary="before")
            a.bus.publish(before)
            assert recv_until(on_b, "event")["event"]["id"] == before.id
            assert recv_until(on_a, "event")["event"]["id"] == before.id
            private_redis.stop()
            local = make_event(source="test", kind="notice", subject="x", summary="while down")
            a.bus.publish(local)  # still reaches local clients
            assert recv_until(on_a, "event")["event"]["id"] == local.id
            wait_until(lambda: fan_b.status()["connected"] is False, timeout=15)
            assert fan_b.status()["last_error"]
            private_redis.start()  # a fresh Redis: the shared stream is gone
            wait_until(lambda: fan_a.subscribed.is_set() and fan_b.subscribed.is_set(), timeout=20)
            after = make_event(source="test", kind="notice", subject="y", summary="back")
            a.bus.publish(after)
            seen: dict[str, dict[str, object]] = {}
            while after.id not in seen:
                event = recv_until(on_b, "event", timeout=15)["event"]
                seen[event["id"]] = event
            # A held the event it observed while Redis was away and appended it when Redis
            # came back; B, reading the stream from where it resumed, still got it
            assert local.id in seen
            # and B says that other instances' events may be missing (the stream was lost)
            notices = [e for e in seen.values() if e["subject"] == "timeline-fanout"]
            assert notices, seen
            assert fan_b.status()["gaps"] >= 1
        finally:
            _stop_fanout(a, fan_a)
            _stop_fanout(b, fan_b)


def test_a_reader_that_was_away_resumes_and_reports_what_it_cannot_read(
    stream_server: StreamFactory, redis_url: str, redis_prefix: str
) -> None:
    """B stops reading (its connection is gone) while A keeps appending: back, B gets what
    it missed; when those entries were trimmed meanwhile, B posts a gap notice instead."""
    import redis

    a, b = stream_server(), stream_server()
    with a.ws() as on_a, b.ws() as on_b:
        recv_json(on_a)
        recv_json(on_b)
        prefix = redis_prefix + "resume:"
        fan_a = _start_fanout(a, redis_url, prefix)
        fan_b = _start_fanout(b, redis_url, prefix)
        try:
            first = make_event(source="test", kind="notice", subject="1", summary="both up")
            a.bus.publish(first)
            assert recv_until(on_b, "event")["event"]["id"] == first.id
            _stop_fanout(b, fan_b)
            away = make_event(source="test", kind="notice", subject="2", summary="B away")
            a.bus.publish(away)
            wait_until(lambda: fan_a.sent == 2)
            _restart_fanout(b, fan_b)
            assert recv_until(on_b, "event")["event"]["id"] == away.id
            assert fan_b.status()["gaps"] == 0
            # away again, and this time the entries are trimmed before B is back
            _stop_fanout(b, fan_b)
            lost = make_event(source="test", kind="notice", subject="3", summary="trimmed")
            a.bus.publish(lost)
            wait_until(lambda: fan_a.sent == 3)
            redis.Redis.from_url(redis_url).xtrim(f"{prefix}timeline", maxlen=0)
            _restart_fanout(b, fan_b)
            notice = recv_until(on_b, "event")["event"]
            assert notice["subject"] == "timeline-fanout"
            assert "trimmed" in notice["summary"]
            assert fan_b.status()["gaps"] == 1
            assert lost.id not in {e.id for e in b.bus.events()}
        finally:
            _stop_fanout(a, fan_a)
            _stop_fanout(b, fan_b)


def _restart_fanout(srv: StreamHarness, fanout: RedisFanout) -> None:
    loop = srv.bus._loop
    assert loop is not None

    async def start() -> None:
        await fanout.start()
        await asyncio.wait_for(fanout.subscribed.wait(), 10)

    asyncio.run_coroutine_threadsafe(start(), loop).result(15)
