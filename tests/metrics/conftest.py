"""Fixtures of the metrics and alert-intake tests: the real sandbox (tests/tools), a real
Prometheus scraping it, and a skip when the Debian packages are not installed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dev3000.conftest import make_settings, stack_service
from tests.tools.conftest import Sandbox, llm_env, make_sandbox, sandbox
from tools.observability_harness import PrometheusServer, prometheus_binary

__all__ = [
    "ALERT_RULES",
    "llm_env",
    "make_sandbox",
    "make_settings",
    "prometheus",
    "sandbox",
    "stack_service",
]

ALERT_RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"


@pytest.fixture
def prometheus(sandbox: Sandbox) -> Iterator[PrometheusServer]:
    """A real Prometheus scraping the sandbox as job ``backend`` every second and
    evaluating the shipped alert rules."""
    assert prometheus_binary(), "prometheus is not installed (bash .ci/run installs it)"
    with PrometheusServer(scrape={"backend": sandbox.url}, rule_files=[ALERT_RULES]) as prom:
        prom.wait_for_scrape("backend")
        yield prom
