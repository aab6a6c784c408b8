"""Prometheus gauges for the alert rules (deploy/prometheus/alerts.yml), read from the latest deep report.

Registered once in the default registry (importing this module); every dev3000 app in the
process records its latest deep report with :func:`record_deep_report` and a scrape of
``/metrics`` reads it:

* ``dev3000_deep_health_status`` — 0 healthy, 1 degraded, 2 unhealthy;
* ``dev3000_health_check_status{check}`` / ``dev3000_health_check_latency_ms{check}``;
* ``dev3000_db_connection_pool_exhausted`` — 1 when PostgreSQL has no free connection;
* ``dev3000_stack_error_rate_percent`` — the deep report's ``metrics.error_rate_percent``;
* ``dev3000_logfire_export_errors_total`` and ``dev3000_sentry_rate_limited``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["DeepReportCollector", "record_deep_report"]

_LEVEL = {"healthy": 0.0, "degraded": 1.0, "unhealthy": 2.0}
_lock = threading.Lock()
_latest: dict[str, Any] | None = None


def record_deep_report(report: Mapping[str, Any]) -> None:
    """Remember ``report`` (the deep report's body) for the next scrape."""
    global _latest
    with _lock:
        _latest = dict(report)


def _checks(report: Mapping[str, Any]) -> Iterable[tuple[str, Mapping[str, Any]]]:
    def walk(prefix: str, node: Any) -> Iterable[tuple[str, Mapping[str, Any]]]:
        if not isinstance(node, Mapping):
            return
        if node.get("status") in _LEVEL and prefix:
            yield prefix, node
            return
        for key, value in node.items():
            yield from walk(f"{prefix}.{key}" if prefix else str(key), value)

    yield from walk("", report.get("checks") or {})


class DeepReportCollector(Collector):
    """Reads the latest recorded deep report at scrape time."""

    def collect(self) -> Iterable[GaugeMetricFamily | CounterMetricFamily]:
        with _lock:
            report = _latest
        overall = GaugeMetricFamily(
            "dev3000_deep_health_status", "Deep health: 0 healthy, 1 degraded, 2 unhealthy."
        )
        status = GaugeMetricFamily(
            "dev3000_health_check_status",
            "Status of each deep-health check: 0 healthy, 1 degraded, 2 unhealthy.",
            labels=["check"],
        )
        latency = GaugeMetricFamily(
            "dev3000_health_check_latency_ms",
            "Latency of each deep-health check (milliseconds).",
            labels=["check"],
        )
        pool = GaugeMetricFamily(
            "dev3000_db_connection_pool_exhausted",
            "1 when the PostgreSQL connection pool has no connection available.",
        )
        error_rate = GaugeMetricFamily(
            "dev3000_stack_error_rate_percent", "Error rate of the stack (deep report metrics)."
        )
        export_errors = CounterMetricFamily(
            "dev3000_logfire_export_errors", "Logfire span export errors."
        )
        sentry = GaugeMetricFamily(
            "dev3000_sentry_rate_limited", "1 when Sentry is rate limiting this process."
        )
        if report is not None:
            overall.add_metric([], _LEVEL.get(str(report.get("status")), 2.0))
            for name, check in _checks(report):
                status.add_metric([name], _LEVEL[str(check["status"])])
                if isinstance(check.get("latency_ms"), int | float):
                    latency.add_metric([name], float(check["latency_ms"]))
            checks = report.get("checks") or {}
            db = checks.get("database") or {}
            available = (db.get("pool") or {}).get("available")
            pool.add_metric([], 1.0 if available == 0 else 0.0)
            rate = (report.get("metrics") or {}).get("error_rate_percent")
            error_rate.add_metric([], float(rate or 0.0))
            obs = checks.get("observability") or {}
            export_errors.add_metric([], float((obs.get("logfire") or {}).get("export_errors", 0)))
            limited = (obs.get("sentry") or {}).get("rate_limited")
            sentry.add_metric([], 1.0 if limited else 0.0)
        return [overall, status, latency, pool, error_rate, export_errors, sentry]

    def describe(self) -> Iterable[GaugeMetricFamily | CounterMetricFamily]:
        return []


REGISTRY.register(DeepReportCollector())
