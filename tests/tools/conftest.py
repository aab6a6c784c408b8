"""Fixtures: a real sandbox (in-process, uvicorn thread) with a fake LLM upstream."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from guilde_core.resilience import BreakerRegistry
from tools.chaos.client import ChaosClient
from tools.fakellm import fakellm_server
from tools.fakellm.client import RunningFakeLLM
from tools.harness import ServerThread
from tools.sandbox import SandboxConfig, create_app
from tools.sandbox.context import SandboxContext


@dataclass
class Sandbox:
    url: str
    token: str
    ctx: SandboxContext
    chaos: ChaosClient
    upstream: RunningFakeLLM
    logs: Path
    _offset: int = field(default=0)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return httpx.get(self.url + path, timeout=15, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return httpx.post(self.url + path, timeout=15, **kw)

    def health(self) -> dict[str, Any]:
        body: dict[str, Any] = self.get("/api/v1/health/deep").json()
        return body

    def log_lines(self) -> list[dict[str, Any]]:
        path = self.logs / "sandbox.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of ``name`` whose labels include ``labels``."""
        total = 0.0
        for line in self.get("/metrics").text.splitlines():
            if line.startswith("#") or not line.startswith(name):
                continue
            head, _, value = line.rpartition(" ")
            metric, _, rest = head.partition("{")
            if metric != name:
                continue
            if all(f'{k}="{v}"' in rest for k, v in labels.items()):
                total += float(value)
        return total


SandboxFactory = Callable[..., Sandbox]


@pytest.fixture
def llm_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fast resilience policy for the sandbox's outbound calls in tests."""
    for name, value in {
        "RETRY_LLM_MAX_ATTEMPTS": "1",
        "RETRY_DATABASE_MAX_ATTEMPTS": "1",
        "CB_OPENAI_FAILURE_THRESHOLD": "2",
        "CB_OPENAI_RECOVERY_TIMEOUT": "1",
        "CB_DATABASE_FAILURE_THRESHOLD": "50",
        "CB_DATABASE_RECOVERY_TIMEOUT": "1",
        "CB_REDIS_FAILURE_THRESHOLD": "2",
        "CB_REDIS_RECOVERY_TIMEOUT": "1",
    }.items():
        monkeypatch.setenv(name, value)
    from guilde_core.config import reset_settings_cache

    reset_settings_cache()


@pytest.fixture
def make_sandbox(tmp_path: Path, llm_env: None) -> Iterator[SandboxFactory]:
    stack: list[Any] = []

    def factory(
        registry: BreakerRegistry | None = None,
        upstream_key: str | None = None,
        **overrides: Any,
    ) -> Sandbox:
        """A sandbox; ``upstream_key``: the fake upstream checks it and the sandbox sends it."""
        upstream_cm = fakellm_server(api_key=upstream_key)
        if upstream_key is not None:
            overrides["llm_api_key"] = upstream_key
        upstream = upstream_cm.__enter__()
        stack.append(upstream_cm)
        logs = tmp_path / f"logs{len(stack)}"
        cfg = SandboxConfig(
            logs_dir=logs,
            data_dir=tmp_path / f"data{len(stack)}",
            llm_base_url=upstream.openai_base_url,
            chaos_token="test-token-" + tmp_path.name,
            **overrides,
        )
        app = create_app(cfg, registry=registry or BreakerRegistry())
        server = ServerThread(app, timeout_graceful_shutdown=2)
        server.start()
        stack.append(server)
        ctx: SandboxContext = app.state.sandbox
        return Sandbox(
            server.url,
            ctx.chaos_token,
            ctx,
            ChaosClient(server.url, ctx.chaos_token),
            upstream,
            logs,
        )

    yield factory
    for item in reversed(stack):
        if isinstance(item, ServerThread):
            item.stop()
        else:
            item.__exit__(None, None, None)


@pytest.fixture
def sandbox(make_sandbox: SandboxFactory) -> Sandbox:
    return make_sandbox()
