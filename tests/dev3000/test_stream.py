"""The live stream over real sockets: WebSocket and SSE, filters, resume, gaps, heartbeats."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from starlette.requests import HTTPConnection

from dev3000.timeline.stream import StreamAuthError, StreamConfig
from guilde_core.events import EventKind, Severity, TimelineEvent, make_event
from tools.harness import wait_until

from .conftest import StreamFactory, closed_with, recv_json, recv_until


def ev(
    n: int = 0,
    *,
    kind: EventKind = "notice",
    severity: Severity = "info",
    source: str = "test",
    data: dict[str, Any] | None = None,
) -> TimelineEvent:
    return make_event(
        source=source,
        kind=kind,
        severity=severity,
        subject=f"s{n}",
        summary=f"event {n}",
        data=data or {"n": n},
    )


def sse_frames(response: httpx.Response) -> Any:
    """Parse an SSE response into (event, id, data) tuples as they arrive."""
    name, event_id, data = "message", None, list[str]()
    for line in response.iter_lines():
        if line == "":
            if data:
                yield name, event_id, json.loads("\n".join(data))
            name, event_id, data = "message", None, list[str]()
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("id:"):
            event_id = line[3:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())


def test_ws_delivers_only_events_matching_the_filters(stream_server: StreamFactory) -> None:
    srv = stream_server()
    with srv.ws("kinds=error_log,circuit_transition&severity=warning&sources=logs,circuits") as ws:
        hello = recv_json(ws)
        assert hello["type"] == "hello"
        assert hello["filters"] == {
            "kinds": ["circuit_transition", "error_log"],
            "severity": "warning",
            "sources": ["circuits", "logs"],
        }
        wanted = [
            ev(1, kind="error_log", severity="error", source="logs"),
            ev(4, kind="circuit_transition", severity="warning", source="circuits"),
        ]
        srv.bus.publish(ev(0, kind="error_log", severity="info", source="logs"))  # too mild
        srv.bus.publish(wanted[0])
        srv.bus.publish(ev(2, kind="notice", severity="critical", source="logs"))  # kind
        srv.bus.publish(ev(3, kind="error_log", severity="error", source="process"))  # source
        srv.bus.publish(wanted[1])
        got = [recv_until(ws, "event")["event"]["id"] for _ in wanted]
        assert got == [e.id for e in wanted]
        # the filter can be changed on the fly
        ws.send(json.dumps({"type": "subscribe", "kinds": "notice"}))
        assert recv_until(ws, "subscribed")["filters"] == {"kinds": ["notice"]}
        last = ev(5)
        srv.bus.publish(ev(6, kind="error_log", severity="error", source="logs"))
        srv.bus.publish(last)
        assert recv_until(ws, "event")["event"]["id"] == last.id


def test_ws_rejects_bad_filters_with_a_close_reason(stream_server: StreamFactory) -> None:
    srv = stream_server()
    with srv.ws("severity=loud") as ws:
        code, reason = closed_with(ws)
    assert code == 4400
    assert "severity" in reason


def test_ws_resume_after_reconnect_loses_nothing(stream_server: StreamFactory) -> None:
    srv = stream_server(buffer_size=50)
    first = [ev(i) for i in range(3)]
    with srv.ws() as ws:
        recv_json(ws)
        for e in first:
            srv.bus.publish(e)
        seen = [recv_until(ws, "event")["event"]["id"] for _ in first]
    assert seen == [e.id for e in first]
    # while disconnected, more happens
    missed = [ev(i) for i in range(3, 8)]
    for e in missed:
        srv.bus.publish(e)
    with srv.ws(f"resume_from={seen[-1]}") as ws:
        assert recv_json(ws)["resume_from"] == seen[-1]
        got = [recv_until(ws, "event")["event"]["id"] for _ in missed]
        assert got == [e.id for e in missed]
        live = ev(99)
        srv.bus.publish(live)
        assert recv_until(ws, "event")["event"]["id"] == live.id


def test_resume_longer_than_the_client_queue_is_still_lossless(
    stream_server: StreamFactory,
) -> None:
    srv = stream_server(buffer_size=100)
    start = ev(0)
    srv.bus.publish(start)
    missed = [ev(i) for i in range(1, 41)]
    srv.bus.publish_many(missed)
    with srv.ws(f"resume_from={start.id}&queue_size=5") as ws:
        recv_json(ws)
        frames = [recv_json(ws) for _ in missed]
        assert [f["type"] for f in frames] == ["event"] * len(missed)
        assert [f["event"]["id"] for f in frames] == [e.id for e in missed]


def test_resume_older_than_the_buffer_starts_with_a_gap(stream_server: StreamFactory) -> None:
    srv = stream_server(buffer_size=5)
    old = ev(0)
    srv.bus.publish(old)
    later = [ev(i) for i in range(1, 12)]
    for e in later:
        srv.bus.publish(e)
    with srv.ws(f"resume_from={old.id}") as ws:
        recv_json(ws)
        gap = recv_json(ws)
        assert gap["type"] == "gap"
        assert gap["reason"] == "resume_point_not_buffered"
        assert gap["resume_from"] == old.id
        assert gap["oldest_buffered_id"] == later[-5].id
        got = [recv_until(ws, "event")["event"]["id"] for _ in range(5)]
        assert got == [e.id for e in later[-5:]]


def test_slow_client_gets_a_gap_notice_and_others_get_everything(
    stream_server: StreamFactory,
) -> None:
    srv = stream_server()
    burst = [ev(i) for i in range(20)]
    with srv.ws("queue_size=5") as slow, srv.ws("queue_size=100") as fast:
        recv_json(slow)
        recv_json(fast)
        wait_until(lambda: srv.manager.client_count == 2)
        srv.bus.publish_many(burst)  # faster than any client can read
        assert [recv_until(fast, "event")["event"]["id"] for _ in burst] == [e.id for e in burst]
        gap = recv_until(slow, "gap")
        assert gap["reason"] == "slow_consumer"
        assert gap["missed"] == 15
        assert gap["first_missed_id"] == burst[0].id
        assert gap["last_missed_id"] == burst[14].id
        rest = [recv_until(slow, "event")["event"]["id"] for _ in range(5)]
        assert rest == [e.id for e in burst[15:]]


def test_batch_mode_sends_waiting_events_in_one_frame(stream_server: StreamFactory) -> None:
    srv = stream_server()
    burst = [ev(i) for i in range(20)]
    with srv.ws("batch=50") as batched, srv.ws() as single:
        recv_json(batched)
        recv_json(single)
        wait_until(lambda: srv.manager.client_count == 2)
        srv.bus.publish_many(burst)
        got: list[str] = []
        sizes = []
        while len(got) < len(burst):
            frame = recv_json(batched)
            if frame["type"] == "events":
                sizes.append(len(frame["events"]))
                got.extend(e["id"] for e in frame["events"])
            elif frame["type"] == "event":
                sizes.append(1)
                got.append(frame["event"]["id"])
        assert got == [e.id for e in burst]
        assert max(sizes) > 1
        # without batch=, one event per frame
        assert [recv_until(single, "event")["event"]["id"] for _ in burst] == [e.id for e in burst]
    with srv.ws("batch=0") as bad:
        assert closed_with(bad)[0] == 4400


def test_slow_client_with_disconnect_policy_is_closed_with_a_reason(
    stream_server: StreamFactory,
) -> None:
    srv = stream_server()
    with srv.ws("queue_size=3&overflow=disconnect") as slow, srv.ws() as other:
        recv_json(slow)
        recv_json(other)
        wait_until(lambda: srv.manager.client_count == 2)
        burst = [ev(i) for i in range(10)]
        srv.bus.publish_many(burst)
        code, reason = closed_with(slow)
        assert code == 1008
        assert "slow consumer" in reason
        assert [recv_until(other, "event")["event"]["id"] for _ in burst] == [e.id for e in burst]
    wait_until(lambda: srv.manager.client_count == 0)


def test_stalled_reader_never_delays_a_fast_one(stream_server: StreamFactory) -> None:
    """A client that stops reading fills its socket; others keep getting events at once."""
    srv = stream_server(buffer_size=400, config=StreamConfig(queue_size=50, send_timeout=30))
    payload = {"blob": "x" * 60_000}
    # ~18 MB in all, more than the socket buffers hold (payload added after make_event:
    # redacting 60 kB strings is slow and not what this test is about)
    events = [ev(i).model_copy(update={"data": payload}) for i in range(300)]
    with (
        srv.ws(max_size=2**20, max_queue=1, compression=None) as stalled,
        srv.ws("queue_size=400", max_size=2**20, compression=None) as fast,
    ):
        recv_json(stalled)
        recv_json(fast)
        wait_until(lambda: srv.manager.client_count == 2)
        received: list[str] = []

        def reader() -> None:
            while len(received) < len(events):
                frame = recv_json(fast, timeout=10)
                if frame["type"] == "event":
                    received.append(frame["event"]["id"])

        thread = threading.Thread(target=reader)
        thread.start()
        started = time.monotonic()
        for e in events:
            srv.bus.publish(e)
        thread.join(30)
        elapsed = time.monotonic() - started
        assert received == [e.id for e in events]
        assert elapsed < 15
        # the stalled client, once it reads, is told what it missed
        frames = []
        while True:
            frame = recv_json(stalled, timeout=10)
            frames.append(frame["type"])
            if frame["type"] == "gap":
                assert frame["missed"] > 0
                break
        assert "gap" in frames


def test_heartbeats_and_idle_timeout(stream_server: StreamFactory) -> None:
    srv = stream_server(config=StreamConfig(heartbeat_interval=0.2, idle_timeout=1.0))
    with srv.ws() as quiet, srv.ws() as chatty:
        assert recv_json(quiet)["heartbeat_interval"] == 0.2
        recv_json(chatty)
        beat = recv_json(quiet)
        assert beat["type"] == "heartbeat"
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:  # the chatty one answers heartbeats
            if recv_json(chatty)["type"] == "heartbeat":
                chatty.send(json.dumps({"type": "pong"}))
        assert closed_with(quiet)[0] == 4408
        chatty.send(json.dumps({"type": "ping"}))
        assert recv_until(chatty, "pong")["type"] == "pong"


def _key_authorizer(keys: dict[str, set[str]], scope: str = "read") -> Any:
    async def authorize(conn: HTTPConnection, token: str | None) -> None:
        key = conn.headers.get("x-api-key") or token
        if not key or key not in keys:
            raise StreamAuthError(401, "API key required")
        if scope not in keys[key]:
            raise StreamAuthError(403, f"scope {scope} required")

    return authorize


def test_stream_auth_close_codes_and_http_statuses(stream_server: StreamFactory) -> None:
    srv = stream_server(
        authorize=_key_authorizer({"good": {"read", "stream"}, "weak": {"read"}}, "stream")
    )
    for query, headers, code in (
        ("", None, 4401),
        ("token=nope", None, 4401),
        ("token=weak", None, 4403),
    ):
        with srv.ws(query, additional_headers=headers) as ws:
            assert closed_with(ws)[0] == code
    with srv.ws(additional_headers={"X-API-Key": "good"}) as ws:
        assert recv_json(ws)["type"] == "hello"
    with srv.ws("token=good") as ws:
        assert recv_json(ws)["type"] == "hello"
    url = srv.url + "/api/v1/diag/stream"
    assert httpx.get(url, timeout=5).status_code == 401
    forbidden = httpx.get(url, params={"token": "weak"}, timeout=5)
    assert forbidden.status_code == 403
    assert forbidden.headers["content-type"].startswith("application/problem+json")
    assert forbidden.json()["status"] == 403
    # the /timeline page takes the same token and hands it to its stream
    assert httpx.get(srv.url + "/timeline", timeout=5).status_code == 401
    page = httpx.get(srv.url + "/timeline", params={"token": "good"}, timeout=5)
    assert page.status_code == 200
    assert '"token": "good"' in page.text


def test_sse_twin_filters_resumes_with_last_event_id_and_beats(
    stream_server: StreamFactory,
) -> None:
    srv = stream_server(config=StreamConfig(heartbeat_interval=0.3))
    before = [ev(i, kind="error_log", severity="error") for i in range(3)]
    for e in before:
        srv.bus.publish(e)
    url = srv.url + "/api/v1/diag/stream/sse"
    with (
        httpx.Client(timeout=10) as client,
        client.stream(
            "GET",
            url,
            params={"kinds": "error_log"},
            headers={"Last-Event-ID": before[0].id},
        ) as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        frames = sse_frames(response)
        name, _, hello = next(frames)
        assert (name, hello["resume_from"]) == ("hello", before[0].id)
        # heartbeats come every 0.3 s whatever else is sent: skip them between events
        events = ((n, i, d) for n, i, d in frames if n != "heartbeat")
        got = [next(events) for _ in range(2)]
        assert [(n, i) for n, i, _ in got] == [("timeline", e.id) for e in before[1:]]
        srv.bus.publish(ev(7))  # filtered out
        live = ev(8, kind="error_log", severity="warning")
        srv.bus.publish(live)
        name, event_id, data = next(events)
        assert (name, event_id, data["summary"]) == ("timeline", live.id, "event 8")
        name, _, beat = next(frames)
        assert name == "heartbeat"
        assert beat["last_event_id"] == live.id


def test_close_all_sends_going_away_to_every_client(stream_server: StreamFactory) -> None:
    srv = stream_server()
    gauge = REGISTRY.get_sample_value("dev3000_stream_clients", {"transport": "websocket"}) or 0
    results: dict[str, Any] = {}

    def sse_reader() -> None:
        with (
            httpx.Client(timeout=10) as client,
            client.stream("GET", srv.url + "/api/v1/diag/stream") as response,
        ):
            for name, _, data in sse_frames(response):
                if name == "close":
                    results["sse"] = data
                    return

    thread = threading.Thread(target=sse_reader)
    thread.start()
    with srv.ws() as ws:
        recv_json(ws)
        wait_until(lambda: srv.manager.client_count == 2)
        assert (
            REGISTRY.get_sample_value("dev3000_stream_clients", {"transport": "websocket"})
            == gauge + 1
        )
        loop = srv.bus._loop
        assert loop is not None
        asyncio.run_coroutine_threadsafe(srv.manager.close_all(), loop).result(10)
        assert closed_with(ws) == (1001, "server shutting down")
    thread.join(10)
    assert results["sse"]["code"] == 1001
    wait_until(lambda: srv.manager.client_count == 0)
    assert REGISTRY.get_sample_value("dev3000_stream_clients", {"transport": "websocket"}) == gauge


def test_websocket_can_be_disabled(stream_server: StreamFactory) -> None:
    srv = stream_server(config=StreamConfig(websocket_enabled=False))
    with srv.ws() as ws:
        assert closed_with(ws)[0] == 4404
    # the SSE twin still answers
    with (
        httpx.Client(timeout=5) as client,
        client.stream("GET", srv.url + "/api/v1/diag/stream") as response,
    ):
        assert response.status_code == 200


def test_bench_stream_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    """The benchmark script runs end to end with minimal sizes (figures: docs/stream.md)."""
    from tools.bench import bench_stream

    assert bench_stream.main(["--clients", "3", "--rate", "20", "--duration", "0.5"]) == 0
    out = capsys.readouterr().out
    for system in bench_stream.SYSTEMS:
        row = next(line for line in out.splitlines() if line.startswith(system + " "))
        assert row.split()[1] == "3"  # every client connected
