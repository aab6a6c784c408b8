"""Metrics as evidence: the agent's offline diagnosis, through the aggregate MCP server with
a real Prometheus scraping the real sandbox, cites the component's 5xx rate from Prometheus;
without a metrics source nothing is gathered."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from fastmcp import Client

from agent.mcp_tool import register_diagnose
from dev3000.mcp_aggregate import build_aggregate_server
from dev3000.timeline.bus import EventBus
from guilde_core.config import Settings
from tests.tools.conftest import Sandbox
from tools.harness import free_port, wait_until
from tools.observability_harness import PrometheusServer


def _diagnose(settings: Settings, **arguments: Any) -> dict[str, Any]:
    server = build_aggregate_server(settings, bus=EventBus(10))
    register_diagnose(server, settings)

    async def run() -> dict[str, Any]:
        async with Client(server) as client:
            result = await client.call_tool("diagnose", arguments)
        data = result.structured_content
        assert isinstance(data, dict)
        return data

    return anyio.run(run)


def _failing_checkouts(sandbox: Sandbox, seconds: float = 4.0) -> None:
    """503s from the sandbox's checkout for a few scrapes (rate() needs the growth)."""
    order = sandbox.post("/api/v1/orders", json={"item": "widget"}).json()
    sandbox.get("/api/v1/orders")
    sandbox.chaos.inject("upstream-error-storm", kinds=["503"])
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert sandbox.post("/api/v1/checkout", json={"order_id": order["id"]}).status_code == 503
        time.sleep(0.2)


def test_the_diagnosis_cites_the_components_error_rate_from_prometheus(
    sandbox: Sandbox,
    prometheus: PrometheusServer,
    make_settings: Callable[..., Settings],
) -> None:
    _failing_checkouts(sandbox)
    rate = (
        '100 * sum(rate(sandbox_http_requests_total{job="backend",status=~"5.."}[5m])) '
        '/ sum(rate(sandbox_http_requests_total{job="backend"}[5m]))'
    )
    wait_until(
        lambda: float(prometheus.api("/api/v1/query", query=rate)["result"][0]["value"][1]) > 5,
        timeout=30,
        interval=0.5,
    )
    settings = make_settings(prometheus_url=prometheus.url, dev3000_backend_url=sandbox.url)
    diagnosis = _diagnose(settings, question="why does checkout fail?", focus="backend")
    metrics = [e for e in diagnosis["evidence"] if e["tool"] == "metrics_query_range"]
    assert len(metrics) == 2  # the error rate and the latency
    assert 'job=~"backend"' in metrics[0]["arguments"]["query"]
    assert '"job":"backend"' in metrics[0]["excerpt"]
    found = [f for f in diagnosis["findings"] if "of responses are 5xx (Prometheus" in f["title"]]
    assert found, diagnosis["findings"]
    assert found[0]["component"] == "backend"
    assert found[0]["category"] == "error_spike"
    assert found[0]["evidence_ids"] == [metrics[0]["id"]]


def test_without_a_metrics_source_nothing_is_gathered(
    make_settings: Callable[..., Settings],
) -> None:
    diagnosis = _diagnose(make_settings(), question="what is wrong?")
    assert not [e for e in diagnosis["evidence"] if e["tool"].startswith("metrics_")]


def test_an_unreachable_prometheus_is_itself_evidence(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RETRY_THIRD_PARTY_API_MAX_ATTEMPTS", "1")
    from guilde_core.config import reset_settings_cache

    reset_settings_cache()
    settings = make_settings(prometheus_url=f"http://127.0.0.1:{free_port()}")
    diagnosis = _diagnose(settings, question="what is wrong?")
    metrics = [e for e in diagnosis["evidence"] if e["tool"].startswith("metrics_")]
    assert [e["tool"] for e in metrics] == ["metrics_status"]
    assert "unreachable" in metrics[0]["excerpt"]
