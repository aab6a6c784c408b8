"""``dev3000 breakers list | set``: the command line is one more surface of the one decision
(the local operator on ``cli``) in front of the breaker adapter, audited like every other."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from dev3000.cli_breakers import set_breaker
from guilde_core.config import Settings
from guilde_core.resilience import BreakerRegistry, reset_registry
from guilde_diag.cli import app
from tools.harness import wait_until

from .conftest import StreamFactory, recv_json
from .test_stream_fanout import _start_fanout, _stop_fanout

runner = CliRunner()


@pytest.fixture
def shared_registry(
    redis_url: str, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """The CLI's process-wide registry on the real Redis under the test's prefix, and
    ``payments`` a configured service (the adapter controls only known breakers)."""
    monkeypatch.setenv("CB_PAYMENTS_FAILURE_THRESHOLD", "5")
    reset_registry(BreakerRegistry(redis_url=redis_url, prefix=redis_prefix))
    yield redis_prefix
    reset_registry()


def test_set_is_refused_to_the_local_operator_unless_control_is_enabled(
    shared_registry: str,
) -> None:
    refused = runner.invoke(app, ["breakers", "set", "payments", "open", "--reason", "drill"])
    assert refused.exit_code == 1
    assert "DIAGNOSTIC_CONTROL_ENABLED=true" in refused.output
    assert "recorded:" not in refused.output


def test_set_goes_through_the_adapter_rules_and_is_recorded(
    shared_registry: str, redis_url: str, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIAGNOSTIC_CONTROL_ENABLED", "true")
    opened = runner.invoke(app, ["breakers", "set", "payments", "open", "--reason", " drill "])
    assert opened.exit_code == 0, opened.output
    body = opened.stdout[opened.stdout.index("{") :]
    assert json.loads(body)["state"] == "open"
    record = json.loads(opened.stderr.split("recorded: ", 1)[1])
    assert record["kind"] == "control_action"
    assert record["data"] == {
        "action": "circuit_open",
        "key_id": "local",
        "surface": "cli",
        "reason": "drill",
        "ok": True,
        "state": "open",
    }
    # the same registry, read back by another process through Redis
    reset_registry(BreakerRegistry(redis_url=redis_url, prefix=redis_prefix))
    listed = runner.invoke(app, ["breakers", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    breakers = json.loads(listed.output)
    assert breakers["store"]["backend"] == "redis"
    assert [b["state"] for b in breakers["breakers"] if b["name"] == "payments"] == ["open"]
    # the adapter's rules hold here too: known names, a reason, the actions it knows
    for argv, code, says in (
        (["ghost", "open", "--reason", "drill"], 1, "no circuit breaker named"),
        (["payments", "close", "--reason", "  "], 2, "reason of 3-500"),
        (["payments", "explode", "--reason", "drill"], 2, "unknown action"),
    ):
        result = runner.invoke(app, ["breakers", "set", *argv])
        assert result.exit_code == code, result.output
        assert says in result.output
    disabled = runner.invoke(app, ["breakers", "set", "payments", "disable", "-r", "noisy probe"])
    assert disabled.exit_code == 0, disabled.output
    assert json.loads(disabled.stdout[disabled.stdout.index("{") :])["disabled"] is True


def test_a_recorded_action_reaches_running_instances_through_the_shared_timeline(
    shared_registry: str, stream_server: StreamFactory, redis_url: str, redis_prefix: str
) -> None:
    running = stream_server()
    with running.ws() as ws:
        recv_json(ws)  # hello: the instance's loop is bound
        fanout = _start_fanout(running, redis_url, redis_prefix)
        try:
            settings = Settings(diagnostic_control_enabled=True, redis_url=redis_url)
            result, (event,) = asyncio.run(
                set_breaker(
                    settings, "payments", "open", "maintenance", timeline_prefix=redis_prefix
                )
            )
            assert result.actor == "local"
            wait_until(lambda: any(e.id == event.id for e in running.bus.events()))
            (seen,) = [e for e in running.bus.events() if e.id == event.id]
            assert (seen.kind, seen.data["surface"], seen.data["reason"]) == (
                "control_action",
                "cli",
                "maintenance",
            )
        finally:
            _stop_fanout(running, fanout)
