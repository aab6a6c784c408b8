"""Property: secrets planted in the environment, the configuration and log lines never
appear in any output of any tool or resource of any server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from pathlib import Path
from typing import Any

from fastmcp import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp.shared.exceptions import MCPError

from guilde_core.config import Settings, environment_overrides
from servers.cli import build
from tests.servers.test_mcp import AREAS, ARGS

ALNUM = st.text(alphabet="abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789", min_size=20,
                max_size=32)  # fmt: skip

CIRCUIT_ARGS: dict[str, dict[str, Any]] = {
    "circuits_breakers": {},
    "circuits_transitions": {},
}


async def everything(s: Settings) -> str:
    from guilde_core.resilience import get_registry, reset_registry

    reset_registry()
    registry = get_registry()

    async def leak() -> None:
        raise ConnectionError(f"upstream said Authorization: Bearer {os.environ['PLANT_TOKEN']}")

    with contextlib.suppress(Exception):
        await registry.breaker("leaky").call(leak)
    out: list[str] = []
    for area in AREAS:
        async with Client(build(area, s)) as client:
            calls = CIRCUIT_ARGS if area == "circuits" else ARGS[area]
            for name, args in calls.items():
                result = await client.call_tool(name, args, raise_on_error=False)
                out.append(json.dumps(result.structured_content, default=str))
                out.append(str(result.content))
            for resource in await client.list_resources():
                try:
                    contents = await client.read_resource(resource.uri)
                except MCPError as exc:  # e.g. the browser's, with no capture running
                    out.append(str(exc))
                    continue
                for content in contents:
                    out.append(str(getattr(content, "text", "")))
            for prompt in await client.list_prompts():
                got = await client.get_prompt(prompt.name)
                out.append(str(got.messages))
    reset_registry()
    return "\n".join(out)


@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
@given(key=ALNUM, password=ALNUM, token=ALNUM)
def test_no_planted_secret_leaves_any_server(
    tmp_path: Path, key: str, password: str, token: str
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    (logs / "app.log").write_text(
        json.dumps({"level": "error", "msg": f"calling with sk-proj-{key}",
                    "request_id": "req-trace-42", "api_key": token}) + "\n"
        + f"2026-03-01 10:00:00,000 - db - ERROR - payment failed password={password}\n"
        + f"Traceback (most recent call last):\n  File \"x\"\nValueError: dsn "
          f"postgresql://app:{password}@db/x\n"
        + f'INFO:     127.0.0.1:1 - "GET /?token={token} HTTP/1.1" 500 Error\n'
    )  # fmt: skip
    (logs / "api.log.2.gz").write_bytes(b"")
    env = {
        "DEV3000_LOG_PATHS": str(logs),
        "OPENAI_API_KEY": f"sk-{key}",
        "ANTHROPIC_API_KEY": f"sk-ant-{key}",
        "DATABASE_URL": f"postgresql://app:{password}@127.0.0.1:9/app",
        "REDIS_URL": f"redis://:{password}@127.0.0.1:9/0",
        "LOGFIRE_TOKEN": f"pylf_v1_eu_{token}",
        "DIAGNOSTIC_API_KEYS": f"{token}:read",
        "DEV3000_BACKEND_URL": f"http://admin:{password}@127.0.0.1:9",
        "DEV3000_AGENT_URL": "http://127.0.0.1:9",
        "DEV3000_FRONTEND_URL": "http://127.0.0.1:9",
        "MCP_PROMPTS_ENABLED": "true",
        "HEALTH_CHECK_TIMEOUT": "2",
        "PLANT_TOKEN": token,
    }
    with environment_overrides(env):
        text = asyncio.run(everything(Settings()))
    assert "payment failed" in text  # the logs really were served
    for secret in (key, password, token):
        assert secret not in text
