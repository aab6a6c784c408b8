"""``dev3000 doctor``: findings, fixes, and the exit code (1 only on critical problems)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from guilde_diag.cli import app
from tools.harness import ServerThread, free_port


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, stack_service: ServerThread) -> Any:
    (tmp_path / "logs").mkdir()
    values = {
        "DEV3000_DATA_DIR": str(tmp_path / "data"),
        "DEV3000_LOG_PATHS": str(tmp_path / "logs"),
        "DEV3000_PORT": str(free_port()),
        "DEV3000_BACKEND_URL": stack_service.url,
        "DEV3000_AGENT_URL": stack_service.url,
        "DEV3000_FRONTEND_URL": stack_service.url,
        "AGENT_PROVIDERS": "offline",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return monkeypatch


def _run(*args: str) -> tuple[int, list[dict[str, Any]], str]:
    result = CliRunner().invoke(app, ["doctor", "--json", "--timeout", "1", *args])
    findings = json.loads(result.output) if result.output.strip().startswith("[") else []
    return result.exit_code, findings, result.output


def _by_check(findings: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f["check"]: f for f in findings}


def test_all_reachable_exits_zero(env: Any, redis_url: str, pg_dsn: str) -> None:
    env.setenv("REDIS_URL", redis_url)
    env.setenv("DATABASE_URL", pg_dsn)
    code, findings, output = _run()
    assert code == 0, output
    checks = _by_check(findings)
    for name in ("configuration", "api keys", "data directory", "redis", "postgresql"):
        assert checks[name]["status"] == "ok", checks[name]
    assert checks["target backend"]["status"] == "ok"


def test_unreachable_database_is_critical(env: Any) -> None:
    env.setenv("DATABASE_URL", f"postgresql://postgres:s3cretpw@127.0.0.1:{free_port()}/test")
    code, findings, output = _run()
    assert code == 1
    pg = _by_check(findings)["postgresql"]
    assert pg["status"] == "fail"
    assert pg["critical"] is True
    assert "DATABASE_URL" in pg["fix"]
    assert "s3cretpw" not in output


def test_unreachable_llm_provider_and_target_only_warn(env: Any) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    env.setenv("AGENT_PROVIDERS", "openai:gpt-test,offline")
    env.setenv("OPENAI_BASE_URL", dead + "/v1")
    env.setenv("DEV3000_FRONTEND_URL", dead)
    code, findings, _ = _run()
    assert code == 0
    checks = _by_check(findings)
    assert checks["llm openai"]["status"] == "warn"
    assert checks["llm openai key"]["status"] == "warn"
    assert "OPENAI_API_KEY" in checks["llm openai key"]["fix"]
    assert checks["target frontend"]["status"] == "warn"
    assert "DEV3000_FRONTEND_URL" in checks["target frontend"]["fix"]


def test_invalid_configuration_names_the_variable(env: Any) -> None:
    env.setenv("DIAGNOSTIC_RATE_LIMIT", "0")
    code, findings, _ = _run()
    assert code == 1
    bad = _by_check(findings)["config DIAGNOSTIC_RATE_LIMIT"]
    assert bad["status"] == "fail"
    assert bad["critical"] is True


def test_bad_api_keys_and_required_auth_without_keys(env: Any) -> None:
    env.setenv("DIAGNOSTIC_API_KEYS", "nokey")
    code, findings, _ = _run()
    assert code == 1
    assert "DIAGNOSTIC_API_KEYS" in _by_check(findings)["api keys"]["detail"]
    env.setenv("DIAGNOSTIC_API_KEYS", "")
    env.setenv("DIAGNOSTIC_AUTH_REQUIRED", "true")
    code, findings, _ = _run()
    assert code == 1
    assert "no one can call" in _by_check(findings)["api keys"]["detail"]


def test_table_output_says_how_to_fix(env: Any) -> None:
    env.setenv("DATABASE_URL", f"postgresql://postgres@127.0.0.1:{free_port()}/test")
    env.setenv("COLUMNS", "200")
    result = CliRunner().invoke(app, ["doctor", "--timeout", "1"])
    assert result.exit_code == 1
    assert "how to fix" in result.output
    assert "start PostgreSQL or fix DATABASE_URL" in result.output
    assert "1 critical" in result.output


def test_master_switches_off_are_a_warning_not_a_failure(env: Any) -> None:
    _, findings, _ = _run()
    assert _by_check(findings)["surfaces"]["status"] == "ok"
    env.setenv("DEV3000_MODE", "staging")
    env.setenv("DEV3000_ENABLED", "false")  # the debug server turned off deliberately
    env.setenv("DIAGNOSTIC_API_KEYS", "ops-key-0123456789:read+control")
    code, findings, output = _run()
    surfaces = _by_check(findings)["surfaces"]
    assert code == 0, output  # a deliberate profile, not a broken setup
    assert surfaces["status"] == "warn", output
    assert "DEV3000_ENABLED=false" in surfaces["detail"]
    assert "DIAGNOSTIC_MODE" not in surfaces["detail"]
    assert surfaces["fix"]


@pytest.mark.parametrize(
    ("overrides", "exposed_by"),
    [
        ({"DEV3000_MODE": "staging"}, "DEV3000_MODE=staging"),
        ({"DEV3000_HOST": "0.0.0.0"}, "bound to 0.0.0.0"),
    ],
)
def test_exposed_without_a_control_key_fails(
    env: Any, overrides: dict[str, str], exposed_by: str
) -> None:
    """Outside development or off loopback, with anonymous callers accepted and no control
    key, nobody may control: the doctor and ``config check`` fail and name the fix (staging
    said OK before, and anonymous callers could open breakers)."""
    for key, value in overrides.items():
        env.setenv(key, value)
    env.setenv("COLUMNS", "300")  # config check's lines unwrapped
    code, findings, output = _run()
    control = _by_check(findings)["control"]
    assert code == 1, output
    assert (control["status"], control["critical"]) == ("fail", True)
    assert exposed_by in control["detail"]
    assert "read+control" in control["fix"]
    check = CliRunner().invoke(app, ["config", "check"])
    assert check.exit_code == 1
    assert "DIAGNOSTIC_API_KEYS" in check.output
    assert exposed_by in check.output

    # a control key (or required auth) is the fix
    env.setenv("DIAGNOSTIC_API_KEYS", "ops-key-0123456789:read+control")
    code, findings, output = _run()
    assert _by_check(findings)["control"]["status"] == "ok", output
    assert "a key with the control scope" in _by_check(findings)["control"]["detail"]
    assert CliRunner().invoke(app, ["config", "check"]).exit_code == 0


def test_development_on_loopback_may_control_without_a_key(env: Any) -> None:
    _code, findings, output = _run()
    control = _by_check(findings)["control"]
    assert control["status"] == "ok", output
    assert "without a key (development, loopback)" in control["detail"]
    assert "DIAGNOSTIC_CONTROL_ENABLED=false" in control["detail"]


def test_prometheus_and_the_alert_webhook(env: Any, stack_service: ServerThread) -> None:
    from tools.observability_harness import PrometheusServer

    code, findings, _ = _run()
    checks = _by_check(findings)
    assert checks["prometheus"]["status"] == "ok"
    assert "PROMETHEUS_URL not set" in checks["prometheus"]["detail"]
    assert checks["alert webhook"]["status"] == "ok"

    with PrometheusServer() as prom:
        env.setenv("PROMETHEUS_URL", prom.url)
        env.setenv("ALERT_WEBHOOK_URL", stack_service.url + "/services/T0/B0/s3cr3t-hook")
        env.setenv("ALERT_WEBHOOK_FORMAT", "slack")
        code, findings, output = _run()
    assert code == 0, output
    checks = _by_check(findings)
    assert checks["prometheus"]["status"] == "ok", checks["prometheus"]
    assert checks["prometheus"]["detail"].startswith("Prometheus 2.")
    assert checks["alert webhook"]["status"] == "ok", checks["alert webhook"]
    assert "(slack)" in checks["alert webhook"]["detail"]
    assert "s3cr3t-hook" not in output

    # not a Prometheus, nothing listening, a URL without a scheme, a format without a URL
    env.setenv("PROMETHEUS_URL", stack_service.url)
    env.setenv("ALERT_WEBHOOK_URL", f"http://127.0.0.1:{free_port()}/hook")
    code, findings, _ = _run()
    assert code == 0  # warnings, not failures: the stack can be diagnosed without them
    checks = _by_check(findings)
    assert checks["prometheus"]["status"] == "warn"
    assert "not the Prometheus API" in checks["prometheus"]["detail"]
    assert "PROMETHEUS_URL" in checks["prometheus"]["fix"]
    assert checks["alert webhook"]["status"] == "warn"
    env.setenv("PROMETHEUS_URL", "localhost:9090")
    code, findings, output = _run()
    assert code == 1
    assert "PROMETHEUS_URL must be an http:// or https:// URL" in output
    env.delenv("PROMETHEUS_URL")
    env.delenv("ALERT_WEBHOOK_URL")
    code, findings, _ = _run()
    assert _by_check(findings)["alert webhook"]["status"] == "warn"
    assert "ALERT_WEBHOOK_FORMAT=slack" in _by_check(findings)["alert webhook"]["detail"]
