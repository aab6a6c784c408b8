"""Fixtures of the servers tests: generated log trees and a controllable HTTP target."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tools.harness import ServerThread

TRACEBACK = (
    "2026-03-01 10:00:05,000 - app.orders - ERROR - payment failed for order 7781\n"
    "Traceback (most recent call last):\n"
    '  File "/srv/app/orders.py", line 42, in pay\n'
    "    gateway.charge(order)\n"
    "ConnectionError: gateway refused connection to 10.0.0.7:443\n"
)


def write_log_tree(root: Path) -> Path:
    """A realistic log directory: JSONL, Python logging with tracebacks, uvicorn access,
    nginx combined, rotated (.1) and gzip (.2.gz) generations, garbage bytes, a 10 MB line."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "api.log", "w") as fh:
        for i in range(300):
            level = "error" if i % 50 == 49 else "info"
            fh.write(
                json.dumps(
                    {
                        "timestamp": f"2026-03-01T10:{i // 60:02d}:{i % 60:02d}Z",
                        "level": level,
                        "logger": "api",
                        "event": f"handled request {i}",
                        "request_id": "req-trace-42" if i in (10, 200) else f"req-{i}",
                    }
                )
                + "\n"
            )
    (root / "app.log").write_text(
        "2026-03-01 09:59:59,000 - app - INFO - starting request_id=req-trace-42\n"
        + TRACEBACK
        + TRACEBACK.replace("7781", "7790").replace("10:00:05", "10:00:09")
        + "2026-03-01 10:00:10,000 - app - WARNING - slow query took 812 ms\n"
    )
    (root / "access.log").write_text(
        'INFO:     127.0.0.1:51234 - "GET /api/orders HTTP/1.1" 200 OK\n'
        'INFO:     127.0.0.1:51235 - "POST /api/pay HTTP/1.1" 502 Bad Gateway\n'
    )
    (root / "nginx.log").write_text(
        '203.0.113.9 - - [01/Mar/2026:10:00:07 +0000] "GET /index.html HTTP/1.1" 200 512 '
        '"-" "curl/8.0"\n'
        '203.0.113.9 - - [01/Mar/2026:10:00:08 +0000] "GET /missing HTTP/1.1" 404 0 "-" "curl"\n'
    )
    (root / "api.log.1").write_text(
        json.dumps({"ts": "2026-02-28T23:59:00Z", "level": "warning", "msg": "old rotation"}) + "\n"
    )
    with gzip.open(root / "api.log.2.gz", "wt") as gz:
        gz.write(
            json.dumps(
                {"ts": "2026-02-27T08:00:00Z", "level": "error", "msg": "archived failure",
                 "request_id": "req-trace-42"}
            )
            + "\n"
        )  # fmt: skip
    (root / "garbage.log").write_bytes(
        b"\xff\xfe\x00binary\x00junk\n\x80\x81 not utf8 ERROR here\n{broken json\n"
    )
    with open(root / "huge-line.log", "wb") as fh:
        fh.write(b"2026-03-01T10:00:00Z INFO before\n")
        fh.write(b"x" * (10 * 1024 * 1024) + b" NEEDLE-IN-HUGE\n")
        fh.write(b"2026-03-01T10:00:01Z ERROR after the huge line\n")
    # make rotated generations older than the current files
    os.utime(root / "api.log.2.gz", (1_700_000_000, 1_700_000_000))
    os.utime(root / "api.log.1", (1_700_000_100, 1_700_000_100))
    return root


@pytest.fixture
def log_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = write_log_tree(tmp_path / "logs")
    monkeypatch.setenv("DEV3000_LOG_PATHS", str(root))
    return root


@dataclass
class Behaviour:
    delay: float = 0.0
    status: int = 200
    hang: bool = False
    metrics: str = ""
    hits: list[str] = field(default_factory=list)


def target_app(b: Behaviour) -> Starlette:
    async def health(request: Request) -> Response:
        b.hits.append(request.url.path)
        if b.hang:
            await asyncio.sleep(3600)
        if b.delay:
            await asyncio.sleep(b.delay)
        return PlainTextResponse("ok" if b.status < 400 else "failing", status_code=b.status)

    async def metrics(request: Request) -> Response:
        return PlainTextResponse(b.metrics, media_type="text/plain; version=0.0.4")

    return Starlette(routes=[Route("/health", health), Route("/metrics", metrics)])


@pytest.fixture
def target() -> Iterator[tuple[str, Behaviour]]:
    """An HTTP target the test can slow down, fail or hang."""
    behaviour = Behaviour()
    thread = ServerThread(target_app(behaviour), timeout_graceful_shutdown=1).start()
    try:
        yield thread.url, behaviour
    finally:
        behaviour.hang = False
        thread.stop()


def server_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MCP_", "DEV3000_"))}
    env.update({"DEV3000_ENV_FILE": os.devnull, "FASTMCP_LOG_LEVEL": "WARNING"})
    env.update(extra)
    return env


@asynccontextmanager
async def stdio_session(argv: list[str], env: dict[str, str]) -> AsyncIterator[ClientSession]:
    """The official ``mcp`` client talking to a server process over stdio."""
    params = StdioServerParameters(command=argv[0], args=argv[1:], env=env)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session
