"""Prometheus metrics of the resilience layer (importing this module registers them).

The core keeps plain integer counters (no per-call metric objects) and this collector reads
them at scrape time from the process-wide registry:

* ``circuit_breaker_state{name,state}`` — one series per state, 1 for the current one;
* ``circuit_breaker_calls_total{name,kind}`` — kind: successful | failed | ignored |
  not_permitted;
* ``retry_calls_total{service,kind}`` — kind: successful_without_retry |
  successful_with_retry | failed_without_retry | failed_with_retry.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from guilde_core.resilience._breaker import CALL_KINDS, BreakerRegistry
from guilde_core.resilience._call import RETRY_KINDS
from guilde_core.resilience._machine import BreakerState
from guilde_core.resilience._registry import get_registry

__all__ = ["ResilienceCollector", "install"]


class ResilienceCollector(Collector):
    """Reads breaker and retry counters of a registry (default: the process-wide one)."""

    def __init__(self, registry: BreakerRegistry | None = None) -> None:
        self._registry = registry

    def collect(self) -> Iterable[GaugeMetricFamily | CounterMetricFamily]:
        reg = self._registry or get_registry()
        state = GaugeMetricFamily(
            "circuit_breaker_state",
            "Circuit breaker state (1 for the current state).",
            labels=["name", "state"],
        )
        calls = CounterMetricFamily(
            "circuit_breaker_calls",
            "Calls through circuit breakers by outcome.",
            labels=["name", "kind"],
        )
        for name in reg.names():
            brk = reg.breaker(name)
            current = brk.state
            for s in BreakerState:
                state.add_metric([name, s.value], 1.0 if s is current else 0.0)
            for kind, value in zip(CALL_KINDS, brk.calls, strict=True):
                calls.add_metric([name, kind], float(value))
        retries = CounterMetricFamily(
            "retry_calls",
            "Resilient calls by retry outcome.",
            labels=["service", "kind"],
        )
        totals: dict[str, list[int]] = {}
        for (service, _stype), svc in list(reg.services.items()):
            acc = totals.setdefault(service, [0, 0, 0, 0])
            for i, value in enumerate(svc.stats):
                acc[i] += value
        for service, values in sorted(totals.items()):
            for kind, value in zip(RETRY_KINDS, values, strict=True):
                retries.add_metric([service, kind], float(value))
        return [state, calls, retries]

    def describe(self) -> Iterable[GaugeMetricFamily | CounterMetricFamily]:
        return []


_installed: set[int] = set()


def install(registry: CollectorRegistry = REGISTRY) -> None:
    """Register the collector with ``registry`` (idempotent)."""
    if id(registry) in _installed:
        return
    registry.register(ResilienceCollector())
    _installed.add(id(registry))


install()
