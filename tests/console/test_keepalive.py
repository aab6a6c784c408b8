"""A server that closes a kept-alive connection just as the client reuses it (uvicorn's
keep-alive timeout on a loaded machine): the console's reads are sent again on a new
connection instead of failing as a lost connection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from console.agent_web import AgentWebAgent
from console.client import Dev3000Client
from console.errors import ConnectionLost

pytestmark = pytest.mark.anyio

_OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


class DroppingServer:
    """Answers the first request of each connection, then closes it on the next one
    without a response; counts the requests it saw."""

    def __init__(self) -> None:
        self.requests = 0
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answered = False
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                self.requests += 1
                if answered:
                    break
                writer.write(_OK)
                await writer.drain()
                answered = True
        except asyncio.IncompleteReadError:  # the client closed the connection
            pass
        writer.close()


@pytest.fixture
async def dropping() -> AsyncIterator[tuple[DroppingServer, str]]:
    server = DroppingServer()
    server.server = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = server.server.sockets[0].getsockname()[1]
    try:
        yield server, f"http://127.0.0.1:{port}"
    finally:
        server.server.close()


async def test_a_read_on_a_connection_the_server_dropped_is_sent_again(
    dropping: tuple[DroppingServer, str],
) -> None:
    server, url = dropping
    async with Dev3000Client(url) as client:
        assert await client.health() == {}
        assert await client.health() == {}  # the reused connection was dropped: sent again
    assert server.requests == 3
    agent = AgentWebAgent(url)
    try:
        assert await agent._request("GET", "/api/v1/sessions") == {}
        assert await agent._request("GET", "/api/v1/sessions") == {}
        # a write is never sent twice: the dropped POST is a lost connection
        with pytest.raises(ConnectionLost):
            await agent._request("POST", "/api/v1/sessions", json={})
    finally:
        await agent.aclose()
