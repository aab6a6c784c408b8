"""Smoke test: the resilience benchmark runs with minimal sizes and prints its goals."""

from __future__ import annotations

import pytest

from tools.bench import bench_resilience


def test_benchmark_runs_with_minimal_sizes(
    redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert bench_resilience.main(["--calls", "200", "--repeat", "1", "--redis-url", redis_url]) == 0
    out = capsys.readouterr().out
    for row in ("guilde breaker, memory", "purgatory 3.0.1", "pybreaker", "stamina.retry",
                "guilde resilient_call", "round trips/call", "B/rej", "goals (issue 2)"):  # fmt: skip
        assert row in out
