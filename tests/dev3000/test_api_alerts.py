"""The alert rules: well formed, the right levels, and every metric they use is
really exposed by dev3000's /metrics."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient

from guilde_core.resilience import BreakerRegistry, get_registry, reset_registry

ALERTS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"
SEED_ROWS = {  # seed metric → (rule, level)
    "circuit_breaker_state": ("CircuitBreakerNotClosed", "warning"),
    "health_check_latency_ms": ("HealthCheckSlow", "warning"),
    "error_rate_percent": ("HighErrorRate", "critical"),
    "db_connection_pool_exhausted": ("DatabasePoolExhausted", "critical"),
    "logfire_export_errors": ("LogfireExportErrors", "warning"),
    "sentry_rate_limited": ("SentryRateLimited", "warning"),
}


def _rules() -> dict[str, dict[str, Any]]:
    doc = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return {r["alert"]: r for g in doc["groups"] for r in g["rules"]}


def test_rules_are_well_formed_and_cover_the_seed_table() -> None:
    rules = _rules()
    for rule in rules.values():
        assert rule["expr"].strip()
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"]
        assert re.fullmatch(r"\d+[smh]", str(rule.get("for", "0m")))
    for seed_metric, (name, level) in SEED_ROWS.items():
        assert name in rules, seed_metric
        assert rules[name]["labels"]["severity"] == level, name
        assert seed_metric.split("_")[0] in rules[name]["expr"], name


def test_every_metric_in_the_rules_is_exposed(
    make_app: Callable[..., FastAPI], pg_dsn: str
) -> None:
    reset_registry(BreakerRegistry())
    try:
        get_registry().breaker("alerts-probe")
        with TestClient(make_app(database_url=pg_dsn)) as client:
            client.get("/api/v1/health/deep")
            exposition = client.get("/metrics").text
    finally:
        reset_registry()
    names = set()
    for rule in _rules().values():
        names |= set(re.findall(r"\b(circuit_breaker_state|dev3000_[a-z_]+)\b", rule["expr"]))
    assert names
    for name in sorted(names):
        assert re.search(rf"^{name}(\{{| )", exposition, re.M), f"{name} is not exposed"
    assert 'circuit_breaker_state{name="alerts-probe",state="closed"} 1.0' in exposition
    assert "dev3000_db_connection_pool_exhausted 0.0" in exposition
    assert re.search(r'^dev3000_health_check_latency_ms\{check="database"\} ', exposition, re.M)
