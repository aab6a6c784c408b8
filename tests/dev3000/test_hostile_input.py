"""Hostile input answered with a problem (or a close code), never a 500 or a dropped socket."""

from __future__ import annotations

import json

import httpx

from guilde_core.events import make_event

from .conftest import StreamFactory, recv_json, recv_until


def test_replay_larger_than_the_buffered_events_replays_what_there_is(
    stream_server: StreamFactory,
) -> None:
    srv = stream_server(buffer_size=100)
    published = []
    for i in range(3):
        event = make_event(source="test", kind="notice", subject=f"s{i}", summary=f"event {i}")
        srv.bus.publish(event)
        published.append(event.id)
    # SSE: the whole buffer (3 events) instead of an IndexError and a 500
    with (
        httpx.Client(timeout=10) as client,
        client.stream("GET", srv.url + "/api/v1/diag/stream/sse", params={"replay": 50}) as resp,
    ):
        assert resp.status_code == 200
        ids: list[str] = []
        for line in resp.iter_lines():
            if line.startswith("id:"):
                ids.append(line[3:].strip())
            if len(ids) == 3:
                break
        assert ids == published
    # WebSocket: the same three events, not a dropped connection with a traceback
    with srv.ws("replay=50") as ws:
        assert recv_json(ws)["type"] == "hello"
        got = [recv_until(ws, "event")["event"]["id"] for _ in published]
        assert got == published
        ws.send(json.dumps({"type": "ping"}))
        assert recv_until(ws, "pong")["type"] == "pong"
