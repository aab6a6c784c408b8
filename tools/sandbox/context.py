"""Everything one sandbox instance holds: stores, clients, metrics, logs, runtime config."""

from __future__ import annotations

import json
import os
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

from guilde_core.config import Settings
from guilde_core.errors import ConfigurationError
from guilde_core.resilience import BreakerRegistry
from tools.sandbox.cache import Cache
from tools.sandbox.config import RuntimeConfig, SandboxConfig, load_runtime_config
from tools.sandbox.db import OrderStore, PostgresStore, SQLiteStore
from tools.sandbox.frontend import FrontendFaults
from tools.sandbox.logs import SandboxLog
from tools.sandbox.upstream import Upstream

__all__ = ["Metrics", "SandboxContext"]

VERSION = "0.1.0"


class Metrics:
    """The sandbox's Prometheus collectors, in a registry of its own: the sandbox's series,
    the process and platform ones, and (:meth:`watch_breakers`) its breakers' states."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self.requests = Counter(
            "sandbox_http_requests",
            "HTTP requests by method, route and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "sandbox_http_request_duration_seconds",
            "HTTP request latency by method, route and status.",
            ["method", "route", "status"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.pool_size = Gauge("sandbox_db_pool_size", "Database pool size.", registry=r)
        self.pool_in_use = Gauge(
            "sandbox_db_pool_in_use", "Database pool connections in use.", registry=r
        )
        self.upstream = Counter(
            "sandbox_upstream_requests",
            "Outbound LLM calls by provider and outcome.",
            ["provider", "outcome"],
            registry=r,
        )
        self.cache_errors = Counter("sandbox_cache_errors", "Failed cache calls.", registry=r)
        self.db_errors = Counter("sandbox_db_errors", "Failed database calls.", registry=r)
        self.log_lines = Counter(
            "sandbox_log_lines", "Log lines written, by level.", ["level"], registry=r
        )
        self.fault_active = Gauge(
            "sandbox_chaos_fault_active", "1 while a chaos fault is active.", ["fault"], registry=r
        )
        self.reload_failures = Counter(
            "sandbox_config_reload_failures", "Failed runtime config reloads.", registry=r
        )
        self.scratch_bytes = Gauge(
            "sandbox_scratch_bytes", "Bytes in the scratch directory.", registry=r
        )
        self.ballast_bytes = Gauge(
            "sandbox_memory_ballast_bytes", "Bytes held by memory-pressure.", registry=r
        )
        self.rss_bytes = Gauge(
            "sandbox_process_resident_memory_bytes", "Resident memory of the process.", registry=r
        )

    def watch_breakers(self, breakers: Any) -> None:
        """Export the states and calls of ``breakers`` (a ``BreakerRegistry``):
        ``circuit_breaker_state{name,state}``, ``circuit_breaker_calls``, ``retry_calls``."""
        from guilde_core.resilience.metrics import ResilienceCollector

        self.registry.register(ResilienceCollector(breakers))


@dataclass
class SandboxContext:
    """State of one sandbox app (``app.state.sandbox``)."""

    config: SandboxConfig
    registry: BreakerRegistry
    settings: Settings
    metrics: Metrics = field(default_factory=Metrics)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    config_error: str | None = None
    last_reload: float | None = None
    started: float = field(default_factory=time.time)
    window: deque[tuple[float, float, int]] = field(default_factory=lambda: deque(maxlen=20_000))
    requests_total: int = 0
    slow_routes: dict[str, float] = field(default_factory=dict)
    spike: dict[str, Any] | None = None
    frontend: FrontendFaults = field(default_factory=FrontendFaults)
    baseline_rss: float = field(default_factory=lambda: psutil.Process().memory_info().rss)

    def __post_init__(self) -> None:
        cfg = self.config
        self.data_dir = cfg.resolved_data_dir()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.scratch_dir = self.data_dir / "scratch"
        self.scratch_dir.mkdir(exist_ok=True)
        self.runtime_path = self.data_dir / "runtime.json"
        if not self.runtime_path.exists():
            self.runtime_path.write_text(json.dumps(RuntimeConfig().model_dump(), indent=2))
        self.log = SandboxLog(cfg.logs_dir, cfg.service_name)
        self.log.on_line.append(lambda level: self.metrics.log_lines.labels(level).inc())
        self.store: OrderStore = (
            PostgresStore(cfg.database_url, cfg.pool_size, cfg.pg_schema)
            if cfg.database_url
            else SQLiteStore(cfg.sqlite_path or self.data_dir / "sandbox.db", cfg.pool_size)
        )
        self.cache = Cache(cfg.redis_url, cfg.redis_prefix)
        self.upstream = Upstream(
            cfg.llm_base_url, cfg.llm_provider, cfg.llm_api_key, cfg.llm_model, self.registry
        )
        self.chaos_token = cfg.chaos_token or secrets.token_urlsafe(32)
        if cfg.chaos_token_file is not None:
            write_secret_file(cfg.chaos_token_file, self.chaos_token)
        self.metrics.pool_size.set(cfg.pool_size)

    def reload_runtime(self) -> RuntimeConfig:
        """Re-read the runtime config file; keep the last good one when it is invalid."""
        log = self.log.logger("config")
        self.last_reload = time.time()
        try:
            runtime = load_runtime_config(self.runtime_path)
        except ConfigurationError as exc:
            self.config_error = str(exc)
            self.metrics.reload_failures.inc()
            log.error("config reload failed: %s", exc, extra={"file": self.runtime_path.name})
            return self.runtime
        self.runtime = runtime
        self.config_error = None
        self.apply_runtime()
        log.info("config reloaded", extra={"config": runtime.model_dump()})
        return runtime

    def apply_runtime(self) -> None:
        self.store.pool_timeout_s = self.runtime.pool_timeout_s
        self.upstream.timeout_s = self.runtime.upstream_timeout_s

    def record(self, duration_s: float, status: int) -> None:
        self.requests_total += 1
        self.window.append((time.time(), duration_s, status))

    def recent(self) -> list[tuple[float, float, int]]:
        cutoff = time.time() - self.config.health_window_s
        return [row for row in self.window if row[0] >= cutoff]


def write_secret_file(path: Path, value: str) -> None:
    """Write ``value`` to ``path`` readable by the owner only (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value)
    os.chmod(path, 0o600)
