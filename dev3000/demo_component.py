"""``dev3000 serve`` as a component of ``dev3000 demo`` (``tools.demo.EXTRA_COMPONENTS``).

Points dev3000 at the demo's sandbox (backend), its logs directory and the fake LLM
upstream, on a free port, and prints the URLs of the API, the MCP endpoint and the stream.
Wire it with ``tools.demo.EXTRA_COMPONENTS.append(dev3000_component)``.
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Any

from tools.demo import Component, DemoOptions
from tools.harness import free_port

__all__ = ["dev3000_component"]


def _port() -> int:
    """DEV3000_PORT (3001) when it is free — where the console and agent look by default."""
    wanted = int(os.environ.get("DEV3000_PORT", "3001"))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", wanted))
        except OSError:
            return free_port()
    return wanted


def dev3000_component(options: DemoOptions, started: dict[str, Any]) -> Component:
    port = _port()
    env = {
        "DEV3000_PORT": str(port),
        "DEV3000_HOST": "127.0.0.1",
        "DEV3000_BACKEND_URL": started["sandbox"].url,
        "DEV3000_LOG_PATHS": str(options.logs_dir),
        "DEV3000_LOG_LEVEL": "warning",
        "OPENAI_BASE_URL": started["fakellm"].url + "/v1",
        "ANTHROPIC_BASE_URL": started["fakellm"].url,
    }
    if options.logs_dir is not None:
        env["DEV3000_DATA_DIR"] = str(options.logs_dir / "dev3000-data")
    if options.redis_url:
        env["CIRCUIT_BREAKER_REDIS_URL"] = options.redis_url
    if options.database_url:
        env["DATABASE_URL"] = options.database_url
    return Component(
        name="dev3000",
        argv=[sys.executable, "-m", "dev3000.cli", "serve", "--port", str(port)],
        url=f"http://127.0.0.1:{port}",
        health_path="/api/v1/health/ready",
        env=env,
        hints=[
            "dev3000 API: {url}/api/v1/health/deep · {url}/api/v1/diag/status · docs {url}/docs",
            "dev3000 MCP: {url}/mcp (streamable HTTP) · {url}/sse (SSE)",
            "dev3000 stream: ws://127.0.0.1:" + str(port) + "/api/v1/diag/stream · {url}/timeline",
        ],
    )
