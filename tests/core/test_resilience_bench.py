"""Smoke test: the resilience benchmark runs with minimal sizes and prints its goals."""

from __future__ import annotations

import pytest

from tools.bench import bench_resilience


def test_benchmark_runs_with_minimal_sizes(
    redis_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # what an in-process Logfire set-up leaves in the environment (the baseline tree's settings
    # refused it): the A/B workers must run without it
    monkeypatch.setenv("LOGFIRE_CONSOLE_COLORS", "auto")
    argv = ["--calls", "200", "--repeat", "1", "--redis-url", redis_url, "--ab-calls", "2000"]
    assert bench_resilience.main(argv) == 0
    out = capsys.readouterr().out
    for row in ("guilde breaker, memory", "purgatory 3.0.1", "pybreaker", "stamina.retry",
                "guilde resilient_call", "round trips/call", "B/rej", "goals (issue 2)",
                "5 alternating rounds; load average", "before (166818e)",
                "cyclic GC per rejection: after 0,", "goals (issue 15, item 5)"):  # fmt: skip
        assert row in out
