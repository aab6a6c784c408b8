"""The metrics area against a real Prometheus scraping the real sandbox: instant and range
PromQL with bounded answers, and clear tool errors (bad PromQL, Prometheus down, no URL)."""

from __future__ import annotations

import anyio
import pytest
from fastmcp import Client
from fastmcp.exceptions import ToolError

from guilde_core.config import Settings
from guilde_core.errors import ConfigurationError, ConnectionFailedError, InvalidInputError
from guilde_core.resilience import BreakerRegistry, reset_registry
from servers.metrics import logic
from servers.metrics.models import RangeResult
from servers.metrics.server import build_server
from tests.tools.conftest import Sandbox
from tools.harness import free_port, wait_until
from tools.observability_harness import PrometheusServer


@pytest.fixture(autouse=True)
def _own_breakers() -> object:
    reset_registry(BreakerRegistry())
    yield None
    reset_registry()


def _settings(prom: PrometheusServer | None, **overrides: object) -> Settings:
    return Settings(prometheus_url=prom.url if prom else None, **overrides)  # type: ignore[arg-type]


def _traffic(sandbox: Sandbox, n: int = 5) -> None:
    for _ in range(n):
        sandbox.get("/api/v1/orders")
        sandbox.get("/api/v1/orders/999999")  # a 404


def test_instant_query_reads_the_sandbox_series(
    sandbox: Sandbox, prometheus: PrometheusServer
) -> None:
    _traffic(sandbox)
    s = _settings(prometheus)

    def seen() -> bool:
        r = anyio.run(lambda: logic.query("sum(sandbox_http_requests_total)", settings=s))
        return bool(r.samples) and (r.samples[0].value or 0) >= 10

    wait_until(seen, timeout=20, interval=0.5)
    result = anyio.run(
        lambda: logic.query('up{job="backend"}', settings=s),
    )
    assert result.result_type == "vector"
    assert [x.labels["job"] for x in result.samples] == ["backend"]
    assert result.samples[0].value == 1.0
    assert not result.truncated


def test_series_and_points_are_capped(sandbox: Sandbox, prometheus: PrometheusServer) -> None:
    _traffic(sandbox)
    s = _settings(prometheus, prometheus_max_series=2, prometheus_max_points=20)
    wait_until(
        lambda: (
            (
                anyio.run(lambda: logic.query("count(sandbox_http_requests_total)", settings=s))
                .samples[0]
                .value
                or 0
            )
            >= 3
        ),
        timeout=20,
        interval=0.5,
    )
    instant = anyio.run(lambda: logic.query("sandbox_http_requests_total", settings=s))
    assert len(instant.samples) == 2
    assert instant.series_total >= 3
    assert instant.truncated

    def ranged_now() -> RangeResult:
        return anyio.run(
            lambda: logic.query_range(
                "sandbox_http_requests_total", "now-60s", None, 0.5, settings=s
            )
        )

    # a series only shows at the range's steps once it is older than one (widened) step
    wait_until(lambda: ranged_now().series_total >= 3, timeout=20, interval=0.5)
    ranged = ranged_now()
    assert len(ranged.series) == 2
    assert ranged.series_total >= 3
    assert ranged.points_total <= 20
    # 60 s at 0.5 s would be 121 points a series: the step was widened to fit the cap
    assert ranged.step_seconds >= 60 / 19
    assert ranged.truncated
    for series in ranged.series:
        assert series.last is not None
        assert series.max is not None


def test_bad_promql_is_a_clear_tool_error(prometheus: PrometheusServer) -> None:
    server = build_server(_settings(prometheus))

    async def call() -> str:
        async with Client(server) as client:
            with pytest.raises(ToolError) as info:
                await client.call_tool("metrics_query", {"query": "sum(rate(x[5m]"})
            return str(info.value)

    message = anyio.run(call)
    assert "Prometheus refused the query (bad_data)" in message
    assert "parse error" in message
    with pytest.raises(InvalidInputError, match="start must be before end"):
        anyio.run(lambda: logic.query_range("up", "now", "now-1h", settings=_settings(prometheus)))


def test_prometheus_down_and_not_configured_are_clear(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRY_THIRD_PARTY_API_MAX_ATTEMPTS", "1")
    from guilde_core.config import reset_settings_cache

    reset_settings_cache()
    down = Settings(prometheus_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ConnectionFailedError, match="is unreachable"):
        anyio.run(lambda: logic.query("up", settings=down))
    with pytest.raises(ConfigurationError, match="set PROMETHEUS_URL"):
        anyio.run(lambda: logic.query("up", settings=Settings()))

    async def call() -> str:
        async with Client(build_server(Settings())) as client:
            with pytest.raises(ToolError) as info:
                await client.call_tool("metrics_query_range", {"query": "up"})
            return str(info.value)

    assert "PROMETHEUS_URL" in anyio.run(call)


def test_targets_and_credentials_never_show(sandbox: Sandbox, prometheus: PrometheusServer) -> None:
    secret_url = prometheus.url.replace("http://", "http://admin:s3cr3t-pass@")
    listed = anyio.run(lambda: logic.targets(settings=Settings(prometheus_url=secret_url)))
    assert [t.job for t in listed.targets] == ["backend"]
    assert listed.targets[0].health == "up"
    assert "s3cr3t-pass" not in listed.model_dump_json()


def test_status_says_whether_a_prometheus_answers(
    prometheus: PrometheusServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    up = anyio.run(lambda: logic.status(settings=_settings(prometheus)))
    assert up.configured
    assert up.reachable
    assert up.version
    assert up.version.startswith("2.")
    off = anyio.run(lambda: logic.status(settings=Settings()))
    assert not off.configured
    assert off.reachable is None
    assert off.error is not None
    assert "PROMETHEUS_URL" in off.error
    monkeypatch.setenv("RETRY_THIRD_PARTY_API_MAX_ATTEMPTS", "1")
    from guilde_core.config import reset_settings_cache

    reset_settings_cache()
    down = anyio.run(
        lambda: logic.status(settings=Settings(prometheus_url=f"http://127.0.0.1:{free_port()}"))
    )
    assert down.reachable is False
    assert down.error is not None
    assert "unreachable" in down.error
