"""The shipped alert rules with the real tools: ``promtool`` checks them and runs their unit
tests, a real Prometheus evaluates them against the real sandbox's /metrics, and fired alerts
travel through a real Alertmanager to dev3000's webhook, which opens, diagnoses and closes
investigations."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from dev3000.app import create_app
from guilde_core.config import Settings, reset_settings_cache
from guilde_core.resilience import BreakerRegistry, reset_dead_letter_store
from guilde_diag.cli import diagnose_tool
from tests.metrics.conftest import ALERT_RULES
from tests.tools.conftest import Sandbox, SandboxFactory
from tools.harness import ServerThread, wait_until
from tools.observability_harness import (
    AlertmanagerServer,
    PrometheusServer,
    alertmanager_binary,
    promtool_binary,
    resolve_after,
)

READ_KEY = "am-read-key-0123456789"


@pytest.fixture(autouse=True)
def _retrying_upstream(
    llm_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """The sandbox's LLM calls retry once, quickly, and its breaker stays closed: an upstream
    storm then exhausts retries (``retry_calls_total{kind="failed_with_retry"}``)."""
    for name, value in {
        "RETRY_LLM_MAX_ATTEMPTS": "2",
        "RETRY_LLM_BASE_DELAY": "0.01",
        "RETRY_LLM_MAX_DELAY": "0.02",
        "CB_OPENAI_FAILURE_THRESHOLD": "1000",
        "DEV3000_DATA_DIR": str(tmp_path / "data"),
    }.items():
        monkeypatch.setenv(name, value)
    reset_settings_cache()
    reset_dead_letter_store()
    yield
    reset_dead_letter_store()
    reset_settings_cache()


def _exhaust_retries(sandbox: Sandbox, prom: PrometheusServer, calls: int = 3) -> None:
    order = sandbox.post("/api/v1/orders", json={"item": "widget"}).json()
    assert sandbox.post("/api/v1/checkout", json={"order_id": order["id"]}).status_code == 200
    # the counter's 0 must be scraped before it grows: increase() needs two samples
    series = 'retry_calls_total{service="openai",kind="failed_with_retry"}'
    wait_until(
        lambda: bool(prom.api("/api/v1/query", query=series)["result"]), timeout=20, interval=0.3
    )
    sandbox.chaos.inject("upstream-error-storm", kinds=["503"])
    for _ in range(calls):
        assert sandbox.post("/api/v1/checkout", json={"order_id": order["id"]}).status_code == 503
    assert sandbox.metric("retry_calls_total", service="openai", kind="failed_with_retry") >= 1


def test_promtool_checks_the_rules_and_runs_their_unit_tests() -> None:
    promtool = promtool_binary()
    assert promtool, "promtool is not installed (apt-get install prometheus)"
    check = subprocess.run(
        [promtool, "check", "rules", str(ALERT_RULES)], capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stdout + check.stderr
    unit = subprocess.run(
        [promtool, "test", "rules", str(ALERT_RULES.with_name("alerts_test.yml"))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unit.returncode == 0, unit.stdout + unit.stderr
    rules = {
        r["alert"]: r for g in yaml.safe_load(ALERT_RULES.read_text())["groups"] for r in g["rules"]
    }
    assert "retry_calls_total" in rules["RetriesExhausted"]["expr"]


def test_prometheus_evaluates_the_shipped_rules_against_the_sandbox(
    sandbox: Sandbox, prometheus: PrometheusServer
) -> None:
    rules = [rule for group in prometheus.api("/api/v1/rules")["groups"] for rule in group["rules"]]
    assert {r["name"] for r in rules} >= {"RetriesExhausted", "CircuitBreakerNotClosed"}
    assert all(r["health"] == "ok" for r in rules), [r for r in rules if r["health"] != "ok"]
    _exhaust_retries(sandbox, prometheus)

    def pending() -> bool:
        return any(
            a["labels"]["alertname"] == "RetriesExhausted"
            and a["labels"].get("service") == "openai"
            and a["state"] in ("pending", "firing")
            for a in prometheus.alerts()
        )

    wait_until(pending, timeout=30, interval=0.5)


@pytest.fixture
def dev3000_with_key(make_settings: Callable[..., Settings]) -> Iterator[ServerThread]:
    """dev3000 over HTTP, keys required, Alertmanager's key read-only, with the agent's
    diagnose tool (as the ``dev3000`` command serves it)."""
    from guilde_core.resilience import reset_registry

    reset_registry(BreakerRegistry())
    app = create_app(
        make_settings(diagnostic_auth_required=True, diagnostic_api_keys=f"{READ_KEY}:read"),
        redis_prefix=f"am-{uuid.uuid4().hex[:8]}:",
        mcp=True,
        timeline_sources=False,
        extra_tools=[diagnose_tool],
    )
    with ServerThread(app) as server:
        yield server
    reset_registry()


def _investigations(dev3000: ServerThread) -> list[dict[str, Any]]:
    r = httpx.get(
        dev3000.url + "/api/v1/investigations", headers={"X-API-Key": READ_KEY}, timeout=10
    )
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()["investigations"]
    return found


def test_alertmanager_opens_and_closes_an_investigation(dev3000_with_key: ServerThread) -> None:
    assert alertmanager_binary(), "prometheus-alertmanager is not installed"
    with AlertmanagerServer(
        webhook_url=dev3000_with_key.url + "/api/v1/alerts", bearer=READ_KEY
    ) as am:
        firing = {
            "labels": {"alertname": "DatabasePoolExhausted", "severity": "critical"},
            "annotations": {"summary": "PostgreSQL has no connection available"},
        }
        am.post_alerts([firing])
        wait_until(lambda: bool(_investigations(dev3000_with_key)), timeout=30, interval=0.3)
        (inv,) = _investigations(dev3000_with_key)
        assert inv["alertname"] == "DatabasePoolExhausted"
        assert inv["status"] == "open"
        assert inv["fingerprint"]  # Alertmanager's own
        am.post_alerts([resolve_after(firing, -1)])
        wait_until(
            lambda: _investigations(dev3000_with_key)[0]["status"] == "resolved",
            timeout=30,
            interval=0.3,
        )
        assert len(_investigations(dev3000_with_key)) == 1


def test_alertmanager_without_the_key_is_refused(dev3000_with_key: ServerThread) -> None:
    with AlertmanagerServer(webhook_url=dev3000_with_key.url + "/api/v1/alerts") as am:
        am.post_alerts([{"labels": {"alertname": "NoKey"}}])
        # Alertmanager reports the refused notification in its own metrics
        wait_until(
            lambda: (
                "alertmanager_notifications_failed_total" in httpx.get(am.url + "/metrics").text
                and _failed(am) >= 1
            ),
            timeout=30,
            interval=0.3,
        )
    assert _investigations(dev3000_with_key) == []


def _failed(am: AlertmanagerServer) -> float:
    total = 0.0
    for line in httpx.get(am.url + "/metrics", timeout=5).text.splitlines():
        if line.startswith('alertmanager_notifications_failed_total{integration="webhook"'):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_a_rule_firing_on_the_sandbox_reaches_dev3000_through_alertmanager(
    make_sandbox: SandboxFactory, dev3000_with_key: ServerThread, tmp_path: Path
) -> None:
    """Sandbox → Prometheus (the shipped rules, their ``for`` set to 0 s so the test needs
    no minute of waiting) → Alertmanager → dev3000 → a diagnosed investigation."""
    sandbox = make_sandbox()
    doc = yaml.safe_load(ALERT_RULES.read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            rule["for"] = "0s"
    fast_rules = tmp_path / "alerts-now.yml"
    fast_rules.write_text(yaml.safe_dump(doc))
    with (
        AlertmanagerServer(
            webhook_url=dev3000_with_key.url + "/api/v1/alerts", bearer=READ_KEY
        ) as am,
        PrometheusServer(
            scrape={"backend": sandbox.url}, rule_files=[fast_rules], alertmanager=am.url
        ) as prom,
    ):
        prom.wait_for_scrape("backend")
        _exhaust_retries(sandbox, prom)

        def opened() -> list[dict[str, Any]]:
            return [
                i for i in _investigations(dev3000_with_key) if i["alertname"] == "RetriesExhausted"
            ]

        wait_until(lambda: bool(opened()), timeout=60, interval=0.5)
        (inv,) = opened()
        assert inv["labels"]["service"] == "openai"
        assert inv["focus"] == "openai"
        wait_until(
            lambda: opened()[0]["diagnosis_status"] not in ("pending", "running"),
            timeout=60,
            interval=0.5,
        )
        detail = httpx.get(
            dev3000_with_key.url + f"/api/v1/investigations/{inv['id']}",
            headers={"X-API-Key": READ_KEY},
        ).json()
        assert detail["diagnosis_status"] == "done", detail
        assert detail["diagnosis"]["root_cause"]["summary"]
