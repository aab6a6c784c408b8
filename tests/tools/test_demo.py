"""``dev3000 demo`` as a new user gets it: every chaos fault of the catalogue shows its
documented symptom under the demo's own configuration, and dev3000 watches exactly the stack
the demo runs.

One demo (fake LLM, sandbox, dev3000 serve — real processes, started by
:func:`tools.demo.run_demo`) serves the whole module. Only timing is shortened, never the
wiring: the sandbox's health window (4 s instead of 60 s) and the breakers' recovery timeouts
(1 s) so one test's fault has faded before the next one starts; each test first waits until
the check it is about is healthy, so its assertion is about its own fault.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.mcp_client import DiagTools
from guilde_core.errors import ConfigurationError
from servers.browser.capture import find_chromium
from tools.chaos.catalogue import FAULTS
from tools.chaos.client import ChaosClient
from tools.demo import (
    DEFAULT_DEV3000_PORT,
    Component,
    DemoOptions,
    StartedComponent,
    _hints,
    _hold,
    _layout,
    dev3000_settings,
    pick_dev3000_port,
    run_demo,
)
from tools.fakellm.client import FakeLLMControl
from tools.harness import ManagedProcess, free_port, wait_until

#: what the sandbox under the demo may take to answer a request while a fault is on
TIMEOUT = 20.0
LOGS_DIR_WARN_MB = 16


@dataclass
class Demo:
    info: dict[str, Any]
    chaos: ChaosClient
    out: list[str]

    @property
    def sandbox(self) -> str:
        return str(self.info["sandbox"])

    @property
    def dev3000(self) -> str:
        return str(self.info["dev3000"])

    @property
    def logs_dir(self) -> Path:
        return Path(self.info["logs_dir"])

    @property
    def data_dir(self) -> Path:
        return Path(self.info["data_dir"])

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.sandbox + path, timeout=TIMEOUT)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return httpx.post(self.sandbox + path, timeout=TIMEOUT, **kw)

    def check(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.get("/api/v1/health/deep").json()["checks"][name]
        return result

    def log_lines(self, message: str) -> list[dict[str, Any]]:
        path = self.logs_dir / "sandbox.jsonl"
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return [line for line in lines if message in str(line.get("message", ""))]

    def metric(self, metric_name: str, /, **labels: str) -> float:
        total = 0.0
        for line in self.get("/metrics").text.splitlines():
            if line.startswith("#"):
                continue
            head, _, value = line.rpartition(" ")
            metric, _, rest = head.partition("{")
            if metric == metric_name and all(f'{k}="{v}"' in rest for k, v in labels.items()):
                total += float(value)
        return total

    def dev3000_logs(self, text: str) -> list[dict[str, Any]]:
        """What dev3000's log search finds in the demo's logs (it serves them)."""
        response = httpx.get(
            self.dev3000 + "/api/v1/logs/search",
            params={"q": text, "limit": 500},
            timeout=TIMEOUT,
        )
        response.raise_for_status()
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    def dev3000_tool(self, name: str, arguments: dict[str, Any]) -> Any:
        async def call() -> Any:
            async with DiagTools(self.dev3000 + "/mcp") as tools:
                outcome = await tools.call(name, arguments)
            assert outcome.ok, outcome.error
            return outcome.data

        return asyncio.run(call())

    def browser_events(self, after: str | None = None) -> list[dict[str, Any]]:
        """The browser capture's timeline events (oldest first), newer than ``after``."""
        params: dict[str, Any] = {"sources": "browser", "limit": 500}
        if after:
            params["after"] = after
        response = httpx.get(self.dev3000 + "/api/v1/timeline", params=params, timeout=TIMEOUT)
        response.raise_for_status()
        return list(reversed(response.json()["items"]))

    def browser_mark(self) -> str:
        """The newest event's id (what a test waits for comes after it); the capture runs."""
        if find_chromium() is None:
            pytest.skip("no Chromium: the demo's dev3000 runs no browser capture")
        wait_until(
            lambda: (
                httpx.get(self.dev3000 + "/api/v1/browser/status", timeout=TIMEOUT).json()["state"]
                == "running"
            ),
            timeout=60,
            interval=0.3,
        )
        response = httpx.get(self.dev3000 + "/api/v1/timeline", params={"limit": 1}, timeout=9)
        items = response.json()["items"]
        return str(items[0]["id"]) if items else ""

    def wait_browser(self, after: str, kind: str, text: str, timeout: float = 30) -> dict[str, Any]:
        found: list[dict[str, Any]] = []

        def seen() -> bool:
            found[:] = [
                e for e in self.browser_events(after) if e["kind"] == kind and text in json.dumps(e)
            ]
            return bool(found)

        wait_until(seen, timeout=timeout, interval=0.3)
        return found[0]

    def order(self) -> int:
        created = self.post("/api/v1/orders", json={"item": "test-demo"})
        assert created.status_code == 201, created.text
        return int(created.json()["id"])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    root = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as mp:
        for name, value in {
            "DEV3000_PORT": str(free_port()),
            "SANDBOX_HEALTH_WINDOW_S": "4",
            "CB_DATABASE_RECOVERY_TIMEOUT": "1",
            "CB_REDIS_RECOVERY_TIMEOUT": "1",
            "CB_OPENAI_RECOVERY_TIMEOUT": "1",
            "HEALTH_WARN_LOGS_DIR_MB": str(LOGS_DIR_WARN_MB),
            # what the surrounding environment says is not what the demo runs: ignored
            "DEV3000_AGENT_URL": "http://127.0.0.1:9",
            "DEV3000_FRONTEND_URL": "http://127.0.0.1:9",
            "REDIS_URL": "redis://127.0.0.1:9/0",
            "DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none",
        }.items():
            mp.setenv(name, value)
        for name in ("SANDBOX_DATABASE_URL", "SANDBOX_REDIS_URL", "LOGFIRE_CONSOLE_ENABLED"):
            mp.delenv(name, raising=False)
        ready: dict[str, Any] = {}
        out: list[str] = []
        stop = threading.Event()
        thread = threading.Thread(
            target=run_demo,
            args=(DemoOptions(logs_dir=root / "logs", traffic=True),),
            kwargs={"ready_callback": ready.update, "stop_event": stop, "out": out.append},
            daemon=True,
        )
        thread.start()
        try:
            wait_until(lambda: bool(ready) or not thread.is_alive(), timeout=100, interval=0.2)
            assert ready, "the demo did not come up:\n" + "\n".join(out)
            token = Path(ready["token_file"]).read_text(encoding="utf-8")
            yield Demo(ready, ChaosClient(ready["sandbox"], token), out)
        finally:
            stop.set()
            thread.join(30)


@pytest.fixture
def sb(demo: Demo) -> Iterator[Demo]:
    """The demo with no fault on and its breakers closed, before and after the test."""
    calm(demo)
    yield demo
    demo.chaos.clear()


def calm(demo: Demo) -> None:
    demo.chaos.clear()
    orders: list[int] = []

    def closed() -> bool:
        # trial calls close the breakers a fault opened (the traffic does too, more slowly)
        if not orders:
            created = demo.post("/api/v1/orders", json={"item": "calm"})
            if created.status_code != 201:
                return False
            orders.append(int(created.json()["id"]))
        demo.post("/api/v1/checkout", json={"order_id": orders[0]})
        demo.get(f"/api/v1/orders/{orders[0]}")
        not_closed = demo.metric("circuit_breaker_state", state="open") + demo.metric(
            "circuit_breaker_state", state="half-open"
        )
        return not_closed == 0

    wait_until(closed, timeout=30, interval=0.3)


def healthy(demo: Demo, check: str) -> None:
    wait_until(lambda: demo.check(check)["status"] == "healthy", timeout=30, interval=0.5)


# --------------------------------------------------------------------------- the catalogue
def test_every_catalogue_fault_has_a_test_here() -> None:
    tested = {
        name.removeprefix("test_fault_").replace("_", "-")
        for name, value in globals().items()
        if name.startswith("test_fault_") and callable(value)
    }
    assert tested == set(FAULTS)


def test_fault_db_unreachable(sb: Demo) -> None:
    sb.chaos.inject("db-unreachable")
    assert sb.get("/api/v1/health/ready").status_code == 503
    database = sb.check("database")
    assert database["status"] == "unhealthy"
    assert "unable to open database file" in database["error"]
    assert sb.get("/api/v1/health/deep").json()["status"] == "unhealthy"
    failed = sb.get("/api/v1/orders?limit=3")
    assert failed.status_code == 503
    rid = failed.headers["x-request-id"]
    lines = [x for x in sb.log_lines("database call failed") if x.get("request_id") == rid]
    assert lines
    assert lines[0]["level"] == "error"
    assert sb.metric("sandbox_http_requests_total", route="/api/v1/orders", status="503") >= 1

    def breaker_open() -> bool:
        sb.get("/api/v1/orders?limit=3")
        return sb.metric("circuit_breaker_state", name="database", state="open") == 1

    wait_until(breaker_open, timeout=30, interval=0.2)
    assert any(rid in json.dumps(item) for item in sb.dev3000_logs(rid))


def test_fault_redis_unreachable(sb: Demo) -> None:
    order = sb.order()
    sb.chaos.inject("redis-unreachable")
    redis = sb.check("redis")
    assert redis["status"] == "unhealthy"
    assert "connection refused" in redis["error"].lower()
    assert sb.get("/api/v1/health/deep").json()["status"] == "degraded"
    assert sb.get(f"/api/v1/orders/{order}").status_code == 200  # from the database
    warning = sb.log_lines("cache unavailable")[-1]
    assert warning["level"] == "warning"
    assert "ConnectionError" in warning["message"]
    assert sb.metric("sandbox_cache_errors_total") >= 1

    def breaker_open() -> bool:
        sb.get(f"/api/v1/orders/{order}")
        return sb.metric("circuit_breaker_state", name="redis", state="open") == 1

    wait_until(breaker_open, timeout=30, interval=0.2)
    assert sb.dev3000_logs("cache unavailable")


def test_fault_db_latency(sb: Demo) -> None:
    healthy(sb, "database")
    sb.chaos.inject("db-latency")  # the default: 800 ms
    database = sb.check("database")
    assert database["status"] == "degraded"
    assert database["latency_ms"] >= 795
    assert sb.get("/api/v1/health/deep").json()["status"] == "degraded"
    slow_before = sb.metric(
        "sandbox_http_request_duration_seconds_count", route="/api/v1/orders"
    ) - sb.metric("sandbox_http_request_duration_seconds_bucket", route="/api/v1/orders", le="0.5")
    assert sb.post("/api/v1/orders", json={"item": "slow"}).status_code == 201
    assert sb.log_lines("slow database call")[-1]["duration_ms"] >= 795
    slow_after = sb.metric(
        "sandbox_http_request_duration_seconds_count", route="/api/v1/orders"
    ) - sb.metric("sandbox_http_request_duration_seconds_bucket", route="/api/v1/orders", le="0.5")
    assert slow_after > slow_before
    assert sb.dev3000_logs("slow database call")


def test_readme_flow_ask_names_the_database_latency_with_the_chain(sb: Demo) -> None:
    """The README's flow as a new user runs it: the demo, ``dev3000 chaos inject db-latency
    --param delay_ms=800``, ``dev3000 ask "why are orders slow?"`` — the answer names the
    database (latency) with the chain from the question's symptom down to it, not a service
    the demo never started."""
    from typer.testing import CliRunner

    from guilde_diag.cli import app

    healthy(sb, "database")
    sb.chaos.inject("db-latency", delay_ms=800)
    assert sb.post("/api/v1/orders", json={"item": "slow"}).status_code == 201
    url = sb.dev3000 + "/mcp"
    result = CliRunner().invoke(app, ["ask", "--url", url, "--json", "why are orders slow?"])
    assert result.exit_code == 0, result.output
    diagnosis = json.loads(result.output[result.output.index("{") :])
    root = diagnosis["root_cause"]
    assert (root["component"], root["category"]) == ("database", "latency"), root
    assert diagnosis["status"] == "degraded"
    chain = diagnosis["chain"]
    assert chain[0] == "orders slow"
    assert chain[-1].startswith("database: latency ")
    assert "backend" in chain[1]
    assert " ← ".join(chain) in root["summary"]
    cited = {e["id"] for e in diagnosis["evidence"]}
    assert set(root["evidence_ids"]) <= cited
    assert not any(p["component"] in ("agent", "frontend") for p in diagnosis["other_problems"])
    # the readable report shows the chain too
    shown = CliRunner().invoke(app, ["ask", "--url", url, "-q", "why are orders slow?"])
    assert shown.exit_code == 0, shown.output
    assert "Chain:" in shown.output
    assert "orders slow" in shown.output


def test_fault_redis_latency(sb: Demo) -> None:
    healthy(sb, "redis")
    sb.chaos.inject("redis-latency")
    redis = sb.check("redis")
    assert redis["status"] == "degraded"
    assert redis["latency_ms"] >= 795
    assert sb.get("/api/v1/health/deep").json()["status"] == "degraded"
    order = sb.order()
    assert sb.get(f"/api/v1/orders/{order}").status_code == 200
    assert sb.log_lines("slow cache call")[-1]["duration_ms"] >= 795
    assert sb.metric("circuit_breaker_state", name="redis", state="open") == 0


def test_fault_upstream_error_storm(sb: Demo) -> None:
    order = sb.order()
    # the default kinds include "timeout" (5 s per call): the fast ones show the same path
    sb.chaos.inject("upstream-error-storm", kinds=["429", "503"])

    def tripped() -> bool:
        response = sb.post("/api/v1/checkout", json={"order_id": order})
        assert response.status_code == 503
        return bool(response.json()["code"] == "circuit_open")

    wait_until(tripped, timeout=60, interval=0.1)
    openai = sb.check("external_apis")["openai"]
    assert (openai["status"], openai["circuit_state"]) == ("unhealthy", "open")
    assert sb.get("/api/v1/health/deep").json()["status"] == "degraded"
    failures = sb.log_lines("upstream call failed")
    assert any(
        "RateLimitedError" in x["message"] or "ServiceUnavailableError" in x["message"]
        for x in failures
    )
    assert failures[-1]["message"].endswith("[circuit_open]")
    assert sb.metric("sandbox_upstream_requests_total", outcome="circuit_open") >= 1
    assert sb.dev3000_logs("CircuitOpenError")


def test_fault_upstream_bad_credential(sb: Demo) -> None:
    fakellm = str(sb.info["fakellm"])
    # the demo's fake providers check keys: a wrong one is refused …
    wrong = httpx.post(
        fakellm + "/v1/chat/completions",
        headers={"authorization": "Bearer sk-wrong"},
        json={"model": "fake-gpt", "messages": [{"role": "user", "content": "hi"}]},
        timeout=TIMEOUT,
    )
    assert wrong.status_code == 401
    # … and the sandbox's, the demo's own, is accepted
    order = sb.order()
    assert sb.post("/api/v1/checkout", json={"order_id": order}).status_code == 200
    answered = FakeLLMControl(fakellm).count("openai")
    before = sb.metric("sandbox_upstream_requests_total", outcome="authentication")
    sb.chaos.inject("upstream-bad-credential")
    for _ in range(4):  # more than the breaker's threshold: a rejected key is no failure
        failed = sb.post("/api/v1/checkout", json={"order_id": order})
        assert failed.status_code == 502
        assert failed.json()["code"] == "authentication"
    # really asked, 401 each (the demo's own traffic checks out now and then too)
    assert FakeLLMControl(fakellm).count("openai") - answered >= 4
    line = sb.log_lines("upstream call failed")[-1]
    assert line["level"] == "error"
    assert "AuthenticationError: openai answered 401" in line["message"]
    assert line["message"].endswith("[authentication]")
    openai = sb.check("external_apis")["openai"]
    assert (openai["status"], openai["circuit_state"]) == ("healthy", "closed")
    assert sb.metric("sandbox_upstream_requests_total", outcome="authentication") - before >= 4
    assert sb.dev3000_logs("AuthenticationError")


def test_fault_pool_exhaustion(sb: Demo) -> None:
    seen = len(sb.log_lines("database call failed"))
    sb.chaos.inject("pool-exhaustion")
    database = sb.check("database")
    assert database["status"] == "unhealthy"
    assert "pool exhausted" in database["error"]
    pool = database["pool"]
    assert (pool["in_use"], pool["available"]) == (pool["size"], 0)
    assert sb.metric("sandbox_db_pool_in_use") == sb.metric("sandbox_db_pool_size")
    assert sb.post("/api/v1/orders", json={"item": "x"}).status_code == 503
    # the requests that waited for a connection (later ones may meet the opened breaker)
    failures = sb.log_lines("database call failed")[seen:]
    assert any("PoolTimeout" in x["message"] for x in failures)
    assert sb.dev3000_logs("PoolTimeout")


def test_fault_log_flood(sb: Demo) -> None:
    healthy(sb, "log_volume")
    before = sb.metric("sandbox_log_lines_total", level="warning")
    sb.chaos.inject("log-flood", lines_per_second=400, max_lines=2000)
    wait_until(lambda: sb.check("log_volume")["status"] == "degraded", timeout=10)
    wait_until(lambda: len(sb.log_lines("cache warmup retry")) >= 500, timeout=10)
    assert sb.metric("sandbox_log_lines_total", level="warning") - before >= 500
    flood = sb.log_lines("cache warmup retry")[-1]
    assert (flood["level"], flood["logger"]) == ("warning", "sandbox.flood")
    assert sb.dev3000_logs("cache warmup retry")


def test_fault_error_spike(sb: Demo) -> None:
    healthy(sb, "errors")
    before = sb.metric("sandbox_http_requests_total", route="/api/v1/orders", status="500")
    sb.chaos.inject("error-spike")  # the default: half of the order requests fail

    def spiking() -> bool:
        for _ in range(4):
            sb.get("/api/v1/orders")
        return bool(sb.check("errors")["status"] == "degraded")

    wait_until(spiking, timeout=20, interval=0.1)
    errors = sb.log_lines("unhandled error")
    assert {(e["exc_type"], e["exc_message"]) for e in errors[-3:]} == {
        ("KeyError", "'customer_tier'")
    }
    assert "price_orders" in errors[-1]["traceback"]
    assert "pricing.py" in errors[-1]["traceback"]
    assert sb.get("/api/v1/health/deep").json()["metrics"]["error_rate_percent"] > 5
    assert sb.metric("sandbox_http_requests_total", route="/api/v1/orders", status="500") > before
    assert sb.dev3000_logs("customer_tier")


def test_fault_slow_endpoint(sb: Demo) -> None:
    healthy(sb, "latency")
    sb.chaos.inject("slow-endpoint")  # the default: /api/v1/orders, 1500 ms
    assert sb.get("/api/v1/orders").status_code == 200
    latency = sb.check("latency")
    assert latency["status"] == "degraded"
    assert latency["p99_latency_ms"] >= 1500
    assert sb.log_lines("slow request")[-1]["route"] == "/api/v1/orders"
    over = sb.metric(
        "sandbox_http_request_duration_seconds_count", route="/api/v1/orders"
    ) - sb.metric("sandbox_http_request_duration_seconds_bucket", route="/api/v1/orders", le="1.0")
    assert over >= 1
    assert sb.dev3000_logs("slow request")


def test_fault_disk_fill(sb: Demo) -> None:
    healthy(sb, "disk")
    sb.chaos.inject("disk-fill", cap_mb=40, rate_mb_s=80)  # over the default 32 MB budget
    wait_until(lambda: sb.check("disk")["scratch_used_mb"] >= 40, timeout=20)
    disk = sb.check("disk")
    assert disk["status"] == "degraded"
    assert disk["scratch_used_mb"] > disk["budget_mb"]
    assert sb.metric("sandbox_scratch_bytes") >= 40 * 2**20
    assert sb.log_lines("scratch directory over budget")[-1]["used_mb"] > 32
    # the scratch directory is the sandbox's state: beside the logs, never in them
    assert (sb.data_dir / "sandbox" / "scratch").is_dir()
    assert not any(p.name == "scratch" for p in sb.logs_dir.rglob("*"))
    sb.chaos.clear("disk-fill")
    assert sb.check("disk")["status"] == "healthy"


def test_fault_memory_pressure(sb: Demo) -> None:
    healthy(sb, "memory")
    sb.chaos.inject("memory-pressure")  # the default: 96 MB over a 48 MB budget
    wait_until(lambda: sb.metric("sandbox_memory_ballast_bytes") >= 96 * 2**20, timeout=20)
    memory = sb.check("memory")
    assert memory["status"] == "degraded"
    assert memory["grown_mb"] > memory["budget_mb"]
    assert sb.log_lines("memory over budget")
    assert sb.metric("sandbox_process_resident_memory_bytes") > 96 * 2**20
    sb.chaos.clear("memory-pressure")
    assert sb.check("memory")["status"] == "healthy"


def test_fault_bad_config_reload(sb: Demo) -> None:
    healthy(sb, "config")
    before = sb.metric("sandbox_config_reload_failures_total")
    sb.chaos.inject("bad-config-reload")  # upstream_timeout_s = -5
    config = sb.check("config")
    assert config["status"] == "degraded"
    assert "upstream_timeout_s" in config["error"]
    assert sb.get("/api/v1/health/deep").json()["status"] == "degraded"
    assert "upstream_timeout_s" in sb.log_lines("config reload failed")[-1]["message"]
    assert sb.metric("sandbox_config_reload_failures_total") - before == 1
    sb.chaos.clear("bad-config-reload")
    assert sb.check("config")["status"] == "healthy"


# the browser-side faults: the demo's dev3000 watches the sandbox's frontend in a headless
# Chromium, and the page reloads itself when a fault changes the frontend
def test_fault_frontend_js_exception(sb: Demo) -> None:
    mark = sb.browser_mark()
    sb.chaos.inject("frontend-js-exception")  # the default: the landing view (orders)
    error = sb.wait_browser(mark, "browser_exception", "TypeError")
    assert error["severity"] == "error"
    assert "Cannot read properties of undefined" in error["summary"]
    assert "app.js" in error["data"]["stack"]
    sb.wait_browser(mark, "browser_screenshot", error["id"])  # taken for that error
    # the backend is fine: its latency check settles healthy while the page keeps failing (a
    # loaded machine may leave a slow request from before in the check's short window)
    healthy(sb, "latency")
    healthy(sb, "errors")


def test_fault_frontend_failing_fetch(sb: Demo) -> None:
    mark = sb.browser_mark()
    before = sb.metric("sandbox_http_requests_total", route="/api/v1/promotions", status="500")
    sb.chaos.inject("frontend-failing-fetch")
    failed = sb.wait_browser(mark, "browser_request", "/api/v1/promotions")
    assert (failed["severity"], failed["data"]["status"]) == ("error", 500)
    rid = failed["correlation_id"]
    backend = [x for x in sb.log_lines("promotions lookup failed") if x.get("request_id") == rid]
    assert backend  # the backend's ERROR line carries the id the capture gave the fetch
    assert backend[0]["level"] == "error"
    sb.wait_browser(mark, "browser_console", rid)  # the page's own error names the request
    after = sb.metric("sandbox_http_requests_total", route="/api/v1/promotions", status="500")
    assert after > before


def test_fault_frontend_slow_asset(sb: Demo) -> None:
    mark = sb.browser_mark()
    sb.chaos.inject("frontend-slow-asset")  # the default: style.css, 4 s
    slow = sb.wait_browser(mark, "browser_navigation", "slow page load")
    assert slow["severity"] == "warning"
    assert "style.css" in slow["summary"]
    assert slow["data"]["load_ms"] >= 4000
    assert sb.log_lines("slow request")[-1]["path"] == "/app/style.css"
    total = sb.metric("sandbox_http_request_duration_seconds_count", route="/app/{asset}")
    fast = sb.metric("sandbox_http_request_duration_seconds_bucket", route="/app/{asset}", le="2.5")
    assert total - fast >= 1


# --------------------------------------------------------------------------- what dev3000 sees
def test_dev3000_watches_exactly_what_the_demo_runs(demo: Demo) -> None:
    listed = demo.dev3000_tool("health_targets", {})
    targets = {t["name"]: t for t in listed["targets"]}
    # no agent or frontend the demo never starts, no Redis/PostgreSQL from the environment
    assert set(targets) == {"backend", "disk", "memory", "cpu", "external_apis"}
    assert targets["backend"]["url"] == demo.sandbox
    assert listed["errors"] == []


def test_dev3000_disk_check_watches_the_demo_logs_and_data(demo: Demo) -> None:
    def disk() -> dict[str, Any]:
        report = demo.dev3000_tool("health_check", {"include": ["disk"], "fresh": True})
        (result,) = report["checks"]
        assert isinstance(result, dict)
        return result

    dirs = {d["role"]: d for d in disk()["details"]["directories"]}
    assert Path(dirs["logs"]["path"]) == demo.logs_dir
    assert Path(dirs["data"]["path"]) == demo.data_dir / "dev3000"
    assert dirs["logs"]["warn_mb"] == LOGS_DIR_WARN_MB
    assert dirs["logs"]["used_mb"] < LOGS_DIR_WARN_MB
    big = demo.logs_dir / "runaway.log"
    try:
        with big.open("wb") as fh:  # a log file that grew past the warning size
            for _ in range(LOGS_DIR_WARN_MB + 2):
                fh.write(b"x" * 2**20)
        result = disk()
        logs = {d["role"]: d for d in result["details"]["directories"]}["logs"]
        assert logs["status"] == "degraded"
        assert logs["used_mb"] >= LOGS_DIR_WARN_MB
        assert result["status"] == "degraded"
    finally:
        big.unlink()
    assert {d["role"]: d for d in disk()["details"]["directories"]}["logs"]["status"] == "healthy"


def test_logs_root_holds_logs_only(demo: Demo) -> None:
    demo.dev3000_tool("health_stack", {})  # dev3000 has written its state by now
    files = [p.relative_to(demo.logs_dir) for p in demo.logs_dir.rglob("*") if p.is_file()]
    assert files
    for path in files:  # the sandbox's JSON lines and dev3000's timeline (JSON lines)
        assert path.suffix == ".jsonl" or path.parts[0] == "timeline", path
    state = [p.name for p in demo.data_dir.rglob("*") if p.is_file()]
    assert "targets.sqlite3" in state
    assert "sandbox.db" in state
    assert "chaos-token" in state
    assert demo.logs_dir.parent == demo.data_dir.parent  # beside each other


# --------------------------------------------------------------------------- unit parts
def _time_wait_port() -> int:
    """A port a closed connection left in TIME_WAIT (the server side closed first)."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen()
    port: int = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    conn, _ = server.accept()
    conn.close()  # the active close: this side goes to TIME_WAIT
    client.recv(1)
    client.close()
    server.close()
    return port


def test_dev3000_port_is_reused_after_a_previous_run_and_moves_loudly_otherwise(
    tmp_path: Path,
) -> None:
    port = _time_wait_port()
    with socket.socket() as plain, pytest.raises(OSError, match="in use"):
        plain.bind(("127.0.0.1", port))  # what the old probe saw: "in use"
    assert pick_dev3000_port(port) == (port, None)
    # and dev3000 serve (uvicorn) really binds it
    env = {"DEV3000_DATA_DIR": str(tmp_path), "DEV3000_LOG_PATHS": str(tmp_path)}
    argv = [sys.executable, "-m", "guilde_diag.cli", "serve", "--port", str(port)]
    with ManagedProcess(argv, env=env) as proc:
        wait_until(
            lambda: (
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200
                or not proc.alive()
            ),
            timeout=60,
        )
        assert proc.alive()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        moved, warning = pick_dev3000_port(taken)
    assert moved != taken
    assert warning is not None
    assert f"DEV3000 IS ON PORT {moved}, NOT {taken}" in warning
    assert f"--url http://127.0.0.1:{moved}/mcp" in warning


def test_hints_name_the_port_dev3000_got(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEV3000_PORT", raising=False)
    port = int(demo.dev3000.rsplit(":", 1)[1])
    assert port != DEFAULT_DEV3000_PORT
    assert f"dev3000 console --url {demo.dev3000}" in "\n".join(demo.out)
    assert f"dev3000 ask --url {demo.dev3000}/mcp" in "\n".join(demo.out)

    def started(url: str, warnings: list[str] | None = None) -> StartedComponent:
        spec = Component("x", ["true"], url, "/", warnings=warnings or [])
        return StartedComponent(spec, ManagedProcess(["true"]))

    opts = DemoOptions(logs_dir=Path("/l"), data_dir=Path("/d"), token_file=Path("/d/t"))
    sandbox = started("http://s")
    on_3001 = "\n".join(_hints(opts, {"sandbox": sandbox, "dev3000": started("http://h:3001")}))
    assert "  dev3000 console " in on_3001
    assert "--url http://h:3001" not in on_3001
    moved = "\n".join(
        _hints(opts, {"sandbox": sandbox, "dev3000": started("http://h:4000", ["MOVED"])})
    )
    assert "dev3000 ask --url http://h:4000/mcp" in moved
    assert "!! MOVED" in moved


def test_concurrent_demos_never_share_a_chaos_token(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    first = DemoOptions(logs_dir=logs)
    second = DemoOptions(logs_dir=logs)
    _layout(first)
    _layout(second)
    assert first.data_dir != second.data_dir
    assert first.token_file != second.token_file
    assert first.data_dir is not None
    assert first.data_dir.parent == logs.parent
    with (
        _hold(first.data_dir),
        pytest.raises(ConfigurationError, match="another running demo"),
        _hold(first.data_dir),
    ):
        pass
    shared = DemoOptions(logs_dir=logs, data_dir=first.data_dir)
    lines: list[str] = []
    with _hold(first.data_dir):
        assert run_demo(shared, out=lines.append) == 2
    assert any("another running demo" in line for line in lines)


def test_demo_settings_are_one_function() -> None:
    env = dev3000_settings(
        sandbox_url="http://127.0.0.1:1",
        fakellm_url="http://127.0.0.1:2",
        upstream_key="sk-k",
        logs_dir=Path("/logs"),
        data_dir=Path("/data"),
    )
    assert env["DEV3000_BACKEND_URL"] == "http://127.0.0.1:1"
    assert env["DEV3000_AGENT_URL"] == env["DEV3000_FRONTEND_URL"] == ""
    assert env["LOGFIRE_CONSOLE_ENABLED"] == "false"
    assert (env["DEV3000_LOG_PATHS"], env["DEV3000_DATA_DIR"]) == ("/logs", "/data")
    spans = dev3000_settings(
        sandbox_url="s", fakellm_url="f", upstream_key="k", logs_dir=Path(), data_dir=Path(),
        spans=True,
    )  # fmt: skip
    assert spans["LOGFIRE_CONSOLE_ENABLED"] == "true"
