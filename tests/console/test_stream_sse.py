"""The console's SSE client (``console.stream.EventStream``, transport ``sse``) against dev3000's
SSE stream as sse-starlette frames it: the priming event, heartbeats and CRLF lines are
skipped, events arrive once, and a stream the server closes is resumed without loss."""

from __future__ import annotations

import asyncio

from console.connection import Backoff
from console.stream import EventStream
from dev3000.timeline.stream import StreamConfig
from guilde_core.events import TimelineEvent, make_event
from tests.dev3000.conftest import StreamFactory, stream_server  # noqa: F401 - the fixture


def ev(n: int) -> TimelineEvent:
    return make_event(source="test", kind="notice", subject=f"s{n}", summary=f"event {n}")


def test_console_sse_client_follows_and_resumes(stream_server: StreamFactory) -> None:  # noqa: F811
    srv = stream_server(config=StreamConfig(heartbeat_interval=0.2))
    bus, manager = srv.bus, srv.manager
    client = EventStream(srv.url, transport="sse", backoff=Backoff(0.05, 2, 0.2, jitter=False))

    async def scenario() -> list[str]:
        got: list[str] = []
        events = client.events()

        async def until(count: int) -> None:
            while len(got) < count:
                event = await anext(events)
                got.append(event.id)

        reader = asyncio.create_task(until(2))
        while manager.client_count == 0:  # connected (the priming event and hello sent)
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)  # a heartbeat or two on the way
        first = [ev(1), ev(2)]
        bus.publish_many(first)
        await asyncio.wait_for(reader, 10)
        loop = bus._loop
        assert loop is not None
        # the server ends the stream; the client reconnects with Last-Event-ID
        closing = asyncio.run_coroutine_threadsafe(manager.close_all(timeout=5), loop)
        await asyncio.wrap_future(closing)
        later = ev(3)
        bus.publish(later)
        await asyncio.wait_for(until(3), 10)
        assert client.connects == 2
        return got

    got = asyncio.run(scenario())
    assert got[:2] == [e.id for e in bus.events()[:2]]
    assert got[2] == bus.events()[2].id  # once, after the reconnect: nothing lost or repeated
