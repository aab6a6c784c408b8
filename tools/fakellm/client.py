"""Drive a fake LLM server from tests: :class:`FakeLLMControl` over HTTP, and
:func:`fakellm_server` to run one on a free loopback port.

    with fakellm_server(script={"steps": [{"text": "hi"}]}) as fake:
        client = openai.OpenAI(base_url=fake.openai_base_url, api_key="sk-test", max_retries=0)
        fake.control.inject("rate_limit", endpoint="openai", times=1, retry_after="2")
        ...
        assert fake.control.count("openai") == 2
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tools.fakellm.app import FakeLLM
from tools.fakellm.script import Script
from tools.harness import ServerThread

__all__ = ["FakeLLMControl", "RunningFakeLLM", "fakellm_server"]


class FakeLLMControl:
    """The ``/_control`` API of a fake LLM server at ``url``."""

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self._timeout = timeout

    def _call(self, method: str, path: str, json: Any = None) -> Any:
        response = httpx.request(
            method, f"{self.url}/_control/{path}", json=json, timeout=self._timeout
        )
        response.raise_for_status()
        return response.json()

    def inject(
        self,
        kind: str,
        *,
        endpoint: str = "*",
        times: int | None = None,
        rate: float | None = None,
        status: int | None = None,
        retry_after: str | None = None,
        delay: float | None = None,
        ttl: float | None = None,
    ) -> str:
        """Add a fault; return its id. ``times`` (next N requests, default 1) or ``rate``."""
        spec = {
            "kind": kind,
            "endpoint": endpoint,
            "times": times,
            "rate": rate,
            "status": status,
            "retry_after": retry_after,
            "delay": delay,
            "ttl": ttl,
        }
        body = {k: v for k, v in spec.items() if v is not None}
        return str(self._call("POST", "faults", body)["faults"][0]["id"])

    def faults(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "faults")["faults"]
        return result

    def clear_faults(self, fault_id: str | None = None) -> int:
        path = f"faults/{fault_id}" if fault_id else "faults"
        return int(self._call("DELETE", path)["cleared"])

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "stats")
        return result

    def count(self, endpoint: str) -> int:
        """Requests that reached ``endpoint`` (``openai``, ``anthropic`` or ``models``)."""
        return int(self.stats()["counts"].get(endpoint, 0))

    def requests(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        path = f"requests?endpoint={endpoint}" if endpoint else "requests"
        result: list[dict[str, Any]] = self._call("GET", path)["requests"]
        return result

    def set_script(self, script: dict[str, Any] | list[Any]) -> dict[str, Any]:
        body = {"steps": script} if isinstance(script, list) else script
        result: dict[str, Any] = self._call("POST", "script", body)
        return result

    def reset(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "reset")
        return result


@dataclass
class RunningFakeLLM:
    """A served fake: its URL, the in-process state, and the HTTP control client."""

    url: str
    fake: FakeLLM
    control: FakeLLMControl

    @property
    def openai_base_url(self) -> str:
        """``base_url`` for ``openai.OpenAI`` (the SDK appends ``/chat/completions``)."""
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """``base_url`` for ``anthropic.Anthropic`` (the SDK appends ``/v1/messages``)."""
        return self.url


@contextmanager
def fakellm_server(
    script: Script | dict[str, Any] | list[Any] | str | Path | None = None,
    *,
    api_key: str | None = None,
    seed: int | None = None,
    port: int | None = None,
) -> Iterator[RunningFakeLLM]:
    """Serve a :class:`FakeLLM` on 127.0.0.1 (a free port unless ``port``) for the block."""
    fake = FakeLLM(script, api_key=api_key, seed=seed)
    with ServerThread(fake.app, port=port, timeout_graceful_shutdown=1) as server:
        yield RunningFakeLLM(server.url, fake, FakeLLMControl(server.url))
