"""Typed configuration: defaults, ranges, profiles, precedence, families, CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from guilde_core.config import (
    PROFILES,
    ConfigurationInvalid,
    ServiceType,
    Settings,
    check_settings,
    explain_settings,
    load_settings,
)
from guilde_diag.cli import app

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT.parent / "shared" / "seeds"


def _seed_variables() -> dict[str, str]:
    """Every VAR=value of seed 000 §5.1 (when the seed is beside the checkout)."""
    seed = next(SEED.glob("000_*.txt"), None) if SEED.is_dir() else None
    if seed is None:
        pytest.skip("seed 000 not beside this checkout")
    text = seed.read_text(encoding="utf-8")
    section = text.split("### 5.1", 1)[1].split("### 5.2", 1)[0]
    found = re.findall(r"^([A-Z][A-Z0-9_]+)=(\S*)", section, re.MULTILINE)
    return dict(found)


def test_every_seed_variable_is_a_setting_or_family() -> None:
    fields = {name.upper() for name in Settings.model_fields}
    for name in _seed_variables():
        assert name in fields or name.startswith("CB_"), name


def test_seed_defaults_are_the_embedded_defaults() -> None:
    defaults = Settings.model_construct()  # field defaults, no profile or environment
    # embedded defaults differ from the seed only where the seed points at a server we must
    # not need (CIRCUIT_BREAKER_REDIS_URL: in-memory by default), at a shell expansion, or
    # where an issue decided otherwise (LOGFIRE_CONSOLE_ENABLED: Logfire's console exporter
    # printed every span of every call into the user's terminal; it is off unless asked;
    # MCP_PROMPTS_ENABLED: the prompts are on and useful, or not advertised at all).
    allowed_to_differ = {
        "CIRCUIT_BREAKER_REDIS_URL",
        "SENTRY_RELEASE",
        "LOGFIRE_CONSOLE_ENABLED",
        "MCP_PROMPTS_ENABLED",
    }
    for name, value in _seed_variables().items():
        if name.startswith("CB_") or name in allowed_to_differ:
            continue
        got = getattr(defaults, name.lower())
        if isinstance(got, bool):
            assert str(got).lower() == value, name
        elif isinstance(got, int | float):
            assert float(got) == float(value), name
        else:
            assert str(got) == value, name


def test_bad_values_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEV3000_PORT", "70000")
    monkeypatch.setenv("SENTRY_TRACES_SAMPLE_RATE", "1.5")
    monkeypatch.setenv("DEV3000_MODE", "qa")
    monkeypatch.setenv("CB_PAYMENTS_FAILURE_THRESHOLD", "0")
    monkeypatch.setenv("RETRY_DATABASE_MAX_ATTEMPTS", "many")
    monkeypatch.setenv("CLIENT_RATE_LIMIT_OPENAI", "-3")
    with pytest.raises(ConfigurationInvalid) as info:
        load_settings()
    names = {issue.variable for issue in info.value.issues}
    assert {
        "DEV3000_PORT",
        "SENTRY_TRACES_SAMPLE_RATE",
        "DEV3000_MODE",
        "CB_PAYMENTS_FAILURE_THRESHOLD",
        "RETRY_DATABASE_MAX_ATTEMPTS",
        "CLIENT_RATE_LIMIT_OPENAI",
    } <= names
    assert "DEV3000_PORT" in str(info.value)


def test_metrics_and_alert_urls_are_checked_without_echoing_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PROMETHEUS_URL", "prometheus:9090")
    monkeypatch.setenv("ALERT_WEBHOOK_URL", "ftp://hooks.example/T0/B0/s3cr3t-hook-path")
    monkeypatch.setenv("ALERT_WEBHOOK_FORMAT", "teams")
    result = CliRunner().invoke(app, ["config", "check"])
    assert result.exit_code != 0
    for variable in ("PROMETHEUS_URL", "ALERT_WEBHOOK_URL", "ALERT_WEBHOOK_FORMAT"):
        assert variable in result.output
    assert "must be an http:// or https:// URL with a host" in " ".join(result.output.split())
    assert "s3cr3t-hook-path" not in result.output
    monkeypatch.setenv("PROMETHEUS_URL", "http://prometheus:9090/")
    monkeypatch.setenv("ALERT_WEBHOOK_URL", "https://hooks.example/T0/B0/s3cr3t-hook-path")
    monkeypatch.setenv("ALERT_WEBHOOK_FORMAT", "slack")
    settings = load_settings()
    assert settings.prometheus_url == "http://prometheus:9090"
    shown = CliRunner().invoke(app, ["config", "show"])
    assert shown.exit_code == 0
    assert "s3cr3t-hook-path" not in shown.output


@pytest.mark.parametrize("mode", sorted(PROFILES))
def test_profiles_apply_seed_values(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEV3000_MODE", mode)
    settings = load_settings()
    for name, value in PROFILES[mode].items():
        got = getattr(settings, name.lower())
        if isinstance(got, bool):
            assert str(got).lower() == value
        elif isinstance(got, float | int):
            assert float(got) == float(value)
        else:
            assert got == value


def test_production_profile_matches_seed() -> None:
    prod = PROFILES["production"]
    assert prod["DIAGNOSTIC_AUTH_REQUIRED"] == "true"
    assert prod["HEALTH_CHECK_INCLUDE_DETAILS"] == "false"
    assert prod["SENTRY_PROFILES_SAMPLE_RATE"] == "0.01"


def test_precedence_env_over_dotenv_over_profile_over_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "DEV3000_MODE=production\nSENTRY_TRACES_SAMPLE_RATE=0.3\nHEALTH_CHECK_TIMEOUT=7\n"
    )
    monkeypatch.setenv("DEV3000_ENV_FILE", str(env_file))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HEALTH_CHECK_TIMEOUT", "9")
    settings = load_settings()
    sources = {name: (value, src) for name, value, src in explain_settings(settings)}
    assert sources["HEALTH_CHECK_TIMEOUT"] == (9.0, "env")  # env beats .env
    assert sources["SENTRY_TRACES_SAMPLE_RATE"] == (0.3, ".env")  # .env beats profile (0.1)
    assert sources["DIAGNOSTIC_AUTH_REQUIRED"] == (True, "profile")  # production profile
    assert sources["DEV3000_PORT"] == (3001, "default")
    assert sources["DEV3000_MODE"] == ("production", ".env")


def test_breaker_defaults_and_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings.breaker_config("openai").failure_threshold == 3
    assert settings.breaker_config("openai").recovery_timeout == 60
    assert settings.breaker_config("openrouter").failure_threshold == 5
    assert settings.breaker_config("webhooks").recovery_timeout == 15
    assert settings.breaker_config("logfire_export").failure_threshold == 5
    assert settings.breaker_config("anything-else").failure_threshold == 5
    monkeypatch.setenv("CIRCUIT_BREAKER_HALF_OPEN_REQUESTS", "7")
    monkeypatch.setenv("CB_PAYMENTS_API_FAILURE_THRESHOLD", "11")
    monkeypatch.setenv("CB_PAYMENTS_API_SUCCESS_THRESHOLD", "4")
    monkeypatch.setenv("CB_OPENAI_RECOVERY_TIMEOUT", "5")
    settings = load_settings()
    payments = settings.breaker_config("payments-api")
    assert (payments.failure_threshold, payments.success_threshold) == (11, 4)
    assert payments.half_open_requests == 7
    assert settings.breaker_config("openai").recovery_timeout == 5
    assert settings.breaker_config("openai").failure_threshold == 3
    assert "payments_api" in settings.breaker_services()


def test_retry_policy_per_type_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    dev = load_settings()
    monkeypatch.setenv("DEV3000_MODE", "production")
    prod = load_settings()
    assert dev.retry_policy(ServiceType.LLM).max_attempts < prod.retry_policy("llm").max_attempts
    assert dev.retry_policy("database").timeout < dev.retry_policy("llm").timeout
    monkeypatch.setenv("RETRY_LLM_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("TIMEOUT_LLM", "12.5")
    monkeypatch.setenv("TIMEOUT_LLM_MULTIPLIER", "2")
    policy = load_settings().retry_policy(ServiceType.LLM)
    assert (policy.max_attempts, policy.timeout, policy.timeout_multiplier) == (2, 12.5, 2.0)


def test_feature_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    for flag in ("CIRCUIT_BREAKER_ENABLED", "RETRY_ENABLED", "RETRY_BUDGET_ENABLED", "TIMEOUTS_ENABLED",
                 "RATE_LIMIT_ENABLED", "DEAD_LETTER_ENABLED"):  # fmt: skip
        monkeypatch.setenv(flag, "false")
        assert getattr(load_settings(), flag.lower()) is False


def test_client_rate_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLIENT_RATE_LIMIT_OPENAI", "2.5")
    settings = load_settings()
    assert settings.client_rate_limit("openai") == 2.5
    assert settings.client_rate_limit("anthropic") is None


def test_check_settings_reports_all_ok() -> None:
    settings, issues = check_settings()
    assert issues == []
    assert settings is not None


runner = CliRunner()


def test_cli_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert "dev3000" in result.stdout


def test_cli_config_show_redacts_and_gives_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-live-abcdefghijklmnopqrstuvwx")
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:hunter2hunter2@db:5432/app")
    monkeypatch.setenv("CB_OPENAI_FAILURE_THRESHOLD", "4")
    result = runner.invoke(app, ["config", "show", "--json"])
    assert result.exit_code == 0, result.output
    assert "abcdefghijklmnop" not in result.stdout
    assert "hunter2" not in result.stdout
    rows = {row["variable"]: row for row in json.loads(result.stdout)}
    assert rows["OPENAI_API_KEY"]["source"] == "env"
    assert rows["OPENAI_API_KEY"]["value"] == "***REDACTED***"
    assert rows["DEV3000_PORT"] == {"variable": "DEV3000_PORT", "value": 3001, "source": "default"}
    assert rows["CB_OPENAI_FAILURE_THRESHOLD"]["value"] == "4"


def test_cli_config_check_exit_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    assert runner.invoke(app, ["config", "check"]).exit_code == 0
    monkeypatch.setenv("HEALTH_WARN_CPU_PERCENT", "170")
    monkeypatch.setenv("DIAGNOSTIC_RATE_LIMIT", "zero")
    result = runner.invoke(app, ["config", "check"])
    assert result.exit_code == 1
    assert "HEALTH_WARN_CPU_PERCENT" in result.output
    assert "DIAGNOSTIC_RATE_LIMIT" in result.output


def test_console_script_runs() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "guilde_diag.cli", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.startswith("dev3000")


def test_env_file_variable_names_the_dotenv_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    custom = tmp_path / "custom.env"
    custom.write_text("HEALTH_CHECK_TIMEOUT=11\nCB_WEBHOOKS_FAILURE_THRESHOLD=12\n")
    (tmp_path / ".env").write_text("HEALTH_CHECK_TIMEOUT=3\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DEV3000_ENV_FILE", str(custom))
    settings = load_settings()
    assert settings.health_check_timeout == 11
    assert settings.breaker_config("webhooks").failure_threshold == 12


@pytest.mark.parametrize("name", ["Prod Stack", "guilde:prod", "", "-x", "a" * 64])
def test_a_deployment_name_that_would_break_the_key_layout_is_refused(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DEV3000_DEPLOYMENT starts every shared Redis key (``guilde:<name>:``): a name with a
    separator, a space or an upper-case letter is refused, naming the variable."""
    monkeypatch.setenv("DEV3000_DEPLOYMENT", name)
    settings, issues = check_settings()
    assert settings is None
    assert [i.variable for i in issues] == ["DEV3000_DEPLOYMENT"]


def test_the_deployment_name_starts_the_redis_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEV3000_DEPLOYMENT", "staging-eu.2")
    settings, issues = check_settings()
    assert issues == []
    assert settings is not None
    assert settings.redis_namespace == "guilde:staging-eu.2:"
