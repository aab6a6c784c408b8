"""Fixtures of the dev3000 aggregator tests."""

from __future__ import annotations

# --- timeline / stream ------------------------------------------------------------------
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

import pytest
from fastapi import FastAPI
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from dev3000.mcp_aggregate import ToolRegistrar
from dev3000.timeline.bus import EventBus
from dev3000.timeline.stream import StreamConfig, StreamManager
from tools.harness import ServerThread


class StreamHarness:
    """A bus + stream manager served by uvicorn on a free port."""

    def __init__(self, bus: EventBus, manager: StreamManager, server: ServerThread) -> None:
        self.bus = bus
        self.manager = manager
        self.server = server

    @property
    def url(self) -> str:
        return self.server.url

    def ws(self, query: str = "", **kwargs: Any) -> ClientConnection:
        base = self.server.url.replace("http://", "ws://")
        sep = "?" if query else ""
        kwargs.setdefault("open_timeout", 5)
        kwargs.setdefault("proxy", None)
        conn: ClientConnection = connect(f"{base}/api/v1/diag/stream{sep}{query}", **kwargs)
        return conn


def recv_json(ws: ClientConnection, timeout: float = 5.0) -> dict[str, Any]:
    data = json.loads(ws.recv(timeout=timeout))
    assert isinstance(data, dict)
    return data


def recv_until(ws: ClientConnection, frame_type: str, timeout: float = 5.0) -> dict[str, Any]:
    """Next frame of ``frame_type``, skipping heartbeats and hello frames."""
    while True:
        frame = recv_json(ws, timeout)
        if frame["type"] == frame_type:
            return frame
        assert frame["type"] in ("heartbeat", "hello", "pong", "subscribed"), frame


def closed_with(ws: ClientConnection, timeout: float = 10.0) -> tuple[int, str]:
    """Read until the server closes; its close code and reason."""
    with pytest.raises(ConnectionClosed) as info:  # noqa: PT012 - read until closed
        while True:
            ws.recv(timeout=timeout)
    frame = info.value.rcvd
    assert frame is not None, "closed without a close frame"
    return frame.code, frame.reason


StreamFactory = Callable[..., StreamHarness]


@pytest.fixture
def stream_server() -> Iterator[StreamFactory]:
    """Factory: ``stream_server(buffer_size=…, config=StreamConfig(…), authorize=…)``."""
    started: list[ServerThread] = []

    def make(
        *,
        buffer_size: int = 100,
        config: StreamConfig | None = None,
        authorize: Any = None,
        bus: EventBus | None = None,
    ) -> StreamHarness:
        bus = bus or EventBus(buffer_size)
        manager = StreamManager(bus, config=config, authorize=authorize)

        @contextlib.asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[None]:
            bus.bind_loop()
            yield

        app = FastAPI(lifespan=lifespan)
        app.include_router(manager.router())

        server = ServerThread(app).start()
        started.append(server)
        return StreamHarness(bus, manager, server)

    yield make
    for server in started:
        server.stop()


# --- HTTP app ---------------------------------------------------------------------------
from pathlib import Path  # noqa: E402

from fastapi.testclient import TestClient  # noqa: E402

from guilde_core.config import Settings  # noqa: E402

AppFactory = Callable[..., FastAPI]


@pytest.fixture(scope="session")
def stack_service() -> Iterator[ServerThread]:
    """A live service standing in for the stack: ``/health`` and ``/`` 200, ``/broken`` 500."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    async def ok(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def broken(_: Request) -> Response:
        return JSONResponse({"status": "down"}, status_code=500)

    app = Starlette(
        routes=[
            Route("/health", ok),
            Route("/api/v1/health", ok),
            Route("/", ok),
            Route("/broken", broken),
        ]
    )
    with ServerThread(app) as srv:
        yield srv


@pytest.fixture
def make_settings(tmp_path: Path, stack_service: ServerThread) -> Callable[..., Settings]:
    """``make_settings(diagnostic_rate_limit=5, …)``: settings with a private data dir and
    the backend/agent/frontend pointed at :func:`stack_service` (healthy)."""

    def make(**overrides: Any) -> Settings:
        overrides.setdefault("dev3000_data_dir", str(tmp_path / "data"))
        overrides.setdefault("dev3000_log_paths", [str(tmp_path / "logs")])
        for name in ("backend", "agent", "frontend"):
            overrides.setdefault(f"dev3000_{name}_url", stack_service.url)
        return Settings(**overrides)

    return make


@pytest.fixture
def make_app(make_settings: Callable[..., Settings]) -> AppFactory:
    """``make_app(settings=None, *, redis_prefix, mcp, timeline_sources, extra_tools,
    **overrides)``."""

    def make(
        settings: Settings | None = None,
        *,
        redis_prefix: str = "dev3000-test:",
        mcp: bool = False,
        timeline_sources: bool = False,
        extra_tools: Sequence[ToolRegistrar] = (),
        **overrides: Any,
    ) -> FastAPI:
        from dev3000.app import create_app

        return create_app(
            settings or make_settings(**overrides),
            redis_prefix=redis_prefix,
            mcp=mcp,
            timeline_sources=timeline_sources,
            extra_tools=extra_tools,
        )

    return make


@pytest.fixture
def api(make_app: AppFactory) -> Iterator[TestClient]:
    """A TestClient (lifespan entered) on a default dev3000 app without MCP."""
    with TestClient(make_app()) as client:
        yield client
