"""The SSE stream as sse-starlette frames it: the priming event (``id:`` + ``retry:``), event
ids, resume after a reconnect from the priming id or the last event id, and clean-up of a
client that goes away."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx

from dev3000.timeline.stream import StreamConfig
from guilde_core.events import TimelineEvent, make_event
from tools.harness import wait_until

from .conftest import StreamFactory

SSE = "/api/v1/diag/stream/sse"


@dataclass
class Block:
    """One SSE event block, every field as sent (comments dropped)."""

    fields: list[tuple[str, str]] = field(default_factory=list)

    def get(self, name: str) -> str | None:
        values = [v for k, v in self.fields if k == name]
        return values[-1] if values else None

    @property
    def names(self) -> list[str]:
        return [k for k, _ in self.fields]


def blocks(response: httpx.Response) -> Iterator[Block]:
    block = Block()
    for line in response.iter_lines():
        if line == "":
            if block.fields:
                yield block
            block = Block()
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            block.fields.append((name, value.removeprefix(" ")))


def timeline_ids(stream: Iterator[Block], count: int) -> list[str]:
    """The ids of the next ``count`` timeline events (heartbeats skipped)."""
    ids: list[str] = []
    while len(ids) < count:
        block = next(stream)
        if block.get("event") == "timeline":
            event_id = block.get("id")
            assert event_id is not None
            ids.append(event_id)
        else:
            assert block.get("event") == "heartbeat", block
    return ids


def ev(n: int) -> TimelineEvent:
    return make_event(source="test", kind="notice", subject=f"s{n}", summary=f"event {n}")


def test_priming_event_comes_first_with_an_id_and_retry(stream_server: StreamFactory) -> None:
    srv = stream_server(config=StreamConfig(retry_ms=1500))
    with httpx.Client(timeout=10) as client:
        with client.stream("GET", srv.url + SSE) as response:
            first, hello = next(blocks(response)), None
            # an empty bus: the id is "before this bus's first event"
            assert first.names == ["id", "retry"]
            assert first.get("id") == srv.bus.origin_id
            assert first.get("retry") == "1500"
        earlier = [ev(i) for i in range(3)]
        srv.bus.publish_many(earlier)
        wait_until(lambda: len(srv.bus) == 3)
        with client.stream("GET", srv.url + SSE) as response:
            stream = blocks(response)
            first, hello = next(stream), next(stream)
            # live from here: the id is the newest event before the stream's first one
            assert first.names == ["id", "retry"]
            assert first.get("id") == earlier[-1].id
            assert hello.get("event") == "hello"
            assert "retry" not in hello.names
            assert "id" not in hello.names  # the client's last event id stays the primed one


def test_every_timeline_event_carries_its_id(stream_server: StreamFactory) -> None:
    srv = stream_server()
    with (
        httpx.Client(timeout=10) as client,
        client.stream("GET", srv.url + SSE) as response,
    ):
        stream = blocks(response)
        next(stream), next(stream)  # priming, hello
        burst = [ev(i) for i in range(5)]
        srv.bus.publish_many(burst)
        assert timeline_ids(stream, 5) == [e.id for e in burst]


def test_resume_after_reconnect_from_the_priming_id_or_the_last_event(
    stream_server: StreamFactory,
) -> None:
    srv = stream_server()
    with httpx.Client(timeout=10) as client:
        with client.stream("GET", srv.url + SSE) as response:
            primed = next(blocks(response)).get("id")
        assert primed is not None
        # the connection dropped before any event; these happen meanwhile
        missed = [ev(i) for i in range(4)]
        srv.bus.publish_many(missed)
        wait_until(lambda: len(srv.bus) == 4)
        headers = {"Last-Event-ID": primed}
        with client.stream("GET", srv.url + SSE, headers=headers) as response:
            stream = blocks(response)
            assert next(stream).get("id") == primed  # the resume point stays the same
            assert next(stream).get("event") == "hello"
            assert timeline_ids(stream, 4) == [e.id for e in missed]  # no gap, nothing lost
        later = ev(9)
        srv.bus.publish(later)
        headers = {"Last-Event-ID": missed[-1].id}
        with client.stream("GET", srv.url + SSE, headers=headers) as response:
            stream = blocks(response)
            assert next(stream).get("id") == missed[-1].id
            next(stream)  # hello
            assert timeline_ids(stream, 1) == [later.id]


def test_resume_from_the_origin_after_evictions_reports_the_count(
    stream_server: StreamFactory,
) -> None:
    srv = stream_server(buffer_size=3)
    with httpx.Client(timeout=10) as client:
        with client.stream("GET", srv.url + SSE) as response:
            primed = next(blocks(response)).get("id")
        assert primed == srv.bus.origin_id
        events = [ev(i) for i in range(5)]  # two leave the 3-event buffer
        srv.bus.publish_many(events)
        wait_until(lambda: srv.bus.events()[-1].id == events[-1].id)
        with client.stream("GET", srv.url + SSE, headers={"Last-Event-ID": primed}) as response:
            stream = blocks(response)
            next(stream), next(stream)  # priming, hello
            gap = next(stream)
            assert gap.get("event") == "gap"
            assert '"missed":2' in (gap.get("data") or "")
            assert timeline_ids(stream, 3) == [e.id for e in events[2:]]


def test_a_client_that_goes_away_is_cleaned_up(stream_server: StreamFactory) -> None:
    # the server learns of the hang-up from the connection (http.disconnect) or, at the
    # latest, when its next heartbeat cannot be written: a short interval bounds the second
    srv = stream_server(config=StreamConfig(heartbeat_interval=1.0))
    with httpx.Client(timeout=10) as client:
        with client.stream("GET", srv.url + SSE) as response:
            # the reader is kept: a discarded one closes the connection when it is collected
            # (the server saw a hang-up before the count was read, under load)
            reader = blocks(response)
            next(reader)
            wait_until(lambda: srv.manager.client_count == 1)
            (sub,) = srv.bus.subscriptions
        # the client hung up without a word: the server notices the disconnect, ends the
        # stream and leaves the bus (the stream-clients gauge goes down with it)
        wait_until(lambda: srv.manager.client_count == 0, timeout=10)
        assert srv.bus.subscriptions == []
        assert sub.closed
