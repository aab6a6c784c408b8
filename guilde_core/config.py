"""Typed configuration for every part of guilde-diag.

One :class:`Settings` model carries every variable of the project (plus the few the
product needs beyond it), with its default, type and range. Values are layered, highest
first::

    process environment  >  .env file  >  profile (DEV3000_MODE)  >  built-in defaults

Per-service circuit-breaker overrides (``CB_<SERVICE>_*``), per-service-type retry and
timeout overrides (``RETRY_<TYPE>_*``, ``TIMEOUT_<TYPE>``) and client-side rate limits
(``CLIENT_RATE_LIMIT_<SERVICE>``) are open-ended families of variables, so they are read by
pattern from the same layers and validated into small models (:class:`BreakerConfig`,
:class:`RetryPolicy`).

Field names are the variable names in lower case: ``HEALTH_CHECK_TIMEOUT`` is
``settings.health_check_timeout``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from dotenv import dotenv_values
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

__all__ = [
    "PROFILES",
    "BreakerConfig",
    "ConfigIssue",
    "ConfigurationInvalid",
    "Mode",
    "RetryPolicy",
    "ServiceType",
    "SettingSource",
    "Settings",
    "check_settings",
    "environment_overrides",
    "explain_settings",
    "get_settings",
    "load_settings",
    "reset_settings_cache",
]

Mode = Literal["development", "staging", "production"]
LogLevel = Literal["debug", "info", "warning", "error"]
SettingSource = Literal["env", ".env", "profile", "default"]

# The values each profile sets. ``.env.<mode>`` files at the repository root
# carry the same values (a test keeps them in step).
PROFILES: dict[str, dict[str, str]] = {
    "development": {
        "DIAGNOSTIC_MODE": "true",
        "DIAGNOSTIC_VERBOSE": "true",
        "DEV3000_ENABLED": "true",
        "DEV3000_LOG_LEVEL": "debug",
        "CIRCUIT_BREAKER_ENABLED": "true",
        "LOGFIRE_DIAGNOSTIC_SPANS": "true",
        "SENTRY_TRACES_SAMPLE_RATE": "1.0",
        "HEALTH_CHECK_INCLUDE_DETAILS": "true",
    },
    "staging": {
        "DIAGNOSTIC_MODE": "true",
        "DIAGNOSTIC_VERBOSE": "false",
        "DEV3000_ENABLED": "true",
        "DEV3000_LOG_LEVEL": "info",
        "CIRCUIT_BREAKER_ENABLED": "true",
        "LOGFIRE_DIAGNOSTIC_SPANS": "true",
        "SENTRY_TRACES_SAMPLE_RATE": "0.5",
        "HEALTH_CHECK_INCLUDE_DETAILS": "true",
    },
    # production: every surface on (agent-web diagnoses through /mcp), every call behind a
    # key, control only with a read+control key (and, over MCP, DIAGNOSTIC_CONTROL_ENABLED),
    # no health details, no verbose errors (docs/operations.md#production-posture)
    "production": {
        "DIAGNOSTIC_MODE": "true",
        "DIAGNOSTIC_VERBOSE": "false",
        "DEV3000_ENABLED": "true",
        "DEV3000_LOG_LEVEL": "info",
        "CIRCUIT_BREAKER_ENABLED": "true",
        "LOGFIRE_DIAGNOSTIC_SPANS": "false",
        "SENTRY_TRACES_SAMPLE_RATE": "0.1",
        "SENTRY_PROFILES_SAMPLE_RATE": "0.01",
        "HEALTH_CHECK_INCLUDE_DETAILS": "false",
        "DIAGNOSTIC_AUTH_REQUIRED": "true",
        "DIAGNOSTIC_CONTROL_ENABLED": "false",
    },
}

CommaList = Annotated[list[str], NoDecode]
#: an allowed host: a name or IPv4 address (``*.`` for subdomains) or a bracketed IPv6 address
_HOST_NAME = re.compile(r"^(?:(?:\*\.)?[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252})|\[[0-9A-Fa-f:.]+\])$")
#: a browser origin: scheme, host, optional port; no path
_ORIGIN = re.compile(r"^https?://(?:[A-Za-z0-9_.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?/?$")


def _http_url(value: str, variable: str) -> str:
    """``value`` when it is an absolute http(s) URL with a host (no fragment); else a
    ValueError that names ``variable`` without echoing the value (it may hold a token)."""
    from urllib.parse import urlsplit

    text = value.strip()
    try:
        parts = urlsplit(text)
        port = parts.port  # a bad port raises here
    except ValueError:
        parts, port = None, None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{variable} must be an http:// or https:// URL with a host")
    if parts.fragment or any(c.isspace() for c in text):
        raise ValueError(f"{variable} must be a plain URL (no spaces, no #fragment)")
    del port
    return text


def _env_file() -> Path:
    return Path(os.environ.get("DEV3000_ENV_FILE", ".env"))


def _read_dotenv() -> dict[str, str]:
    path = _env_file()
    if not path.is_file():
        return {}
    return {k.upper(): v for k, v in dotenv_values(path).items() if v is not None}


def _resolve_mode(environ: Mapping[str, str], dotenv: Mapping[str, str]) -> str:
    for layer in (environ, dotenv):
        for key, value in layer.items():
            if key.upper() == "DEV3000_MODE":
                return value.strip().lower()
    return "development"


class _ProfileSource(PydanticBaseSettingsSource):
    """Values of the profile picked by ``DEV3000_MODE``."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        mode = _resolve_mode(os.environ, _read_dotenv())
        profile = PROFILES.get(mode, {})
        return {
            k.lower(): v for k, v in profile.items() if k.lower() in self.settings_cls.model_fields
        }


class Settings(BaseSettings):
    """Every setting of guilde-diag. Field name == lower-cased environment variable."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        case_sensitive=False,
        extra="ignore",
        validate_default=True,
    )

    # === dev3000 debug server ===
    dev3000_enabled: bool = Field(
        True,
        description="dev3000's debug surfaces (/mcp, /sse, timeline, logs, targets); false: 404.",
    )
    dev3000_host: str = Field("127.0.0.1", description="Address dev3000 binds to.")
    dev3000_port: int = Field(3001, ge=1, le=65535, description="dev3000 HTTP/MCP port.")
    dev3000_mode: Mode = Field(
        "development", description="Profile: development|staging|production."
    )
    dev3000_log_level: LogLevel = Field("debug", description="debug|info|warning|error.")
    dev3000_allowed_hosts: CommaList = Field(
        default_factory=list,
        description="Host names dev3000 and agent-web answer to besides localhost, 127.0.0.1, "
        "[::1] and their bind address (any port; '*.example.com' matches subdomains); other "
        "Host headers get 421, other Origins 403. Probes and /metrics are not checked.",
    )
    dev3000_cors_origins: CommaList = Field(
        default_factory=list,
        description="Browser origins (scheme://host[:port]) allowed to call dev3000 "
        "cross-origin (CORS); empty: none.",
    )
    dev3000_backend_url: str = Field(
        "http://localhost:8000",
        description="Backend under diagnosis (a critical target); empty: none declared here "
        "(the watched services come from the targets file or the registry).",
    )
    dev3000_agent_url: str = Field(
        "http://localhost:8001",
        description="Agent-web service; empty: not deployed (no health target).",
    )
    dev3000_frontend_url: str = Field(
        "http://localhost:3000",
        description="Frontend under diagnosis; empty: not deployed (no health target).",
    )
    dev3000_log_paths: CommaList = Field(
        default_factory=lambda: ["./logs"],
        description="Comma-separated log directories or globs the logs server may read.",
    )
    dev3000_data_dir: str = Field(
        ".dev3000", description="Where dev3000 keeps its own state (SQLite, dead letters)."
    )
    dev3000_deployment: str = Field(
        "default",
        pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$",
        description="Name of this stack in a shared Redis: every shared key and channel "
        "(breakers, rate limits, timeline, targets, dead letters) starts with "
        "guilde:<name>:, so stacks sharing one Redis never see each other's state. Every "
        "process and instance of one stack uses the same name.",
    )
    dev3000_targets_file: str | None = Field(
        None,
        description="Optional YAML/JSON file listing more health-check targets (each may "
        "name what it depends_on and be critical).",
    )
    dev3000_compose_file: str | None = Field(
        None,
        description="Optional Compose file: its services' depends_on become edges of the "
        "stack model (nothing is started or probed from it).",
    )
    dev3000_browser_url: str | None = Field(
        None,
        description="Page a headless Chromium watches (console, errors, failed requests, "
        "screenshots → timeline source browser); empty: no browser capture.",
    )
    dev3000_browser_executable: str | None = Field(
        None, description="Chromium/Chrome binary for the capture (empty: chromium on PATH)."
    )
    dev3000_browser_correlate: bool = Field(
        True,
        description="Add X-Request-ID and traceparent to the page's fetch/XHR requests to the "
        "watched origins, so browser errors share an id with backend log lines.",
    )
    dev3000_browser_origins: CommaList = Field(
        default_factory=list,
        description="Origins whose requests get correlation ids (empty: the page's origin "
        "and DEV3000_BACKEND_URL's).",
    )
    dev3000_browser_screenshot_on_error: bool = Field(
        True, description="Take a screenshot when the page logs an error (at most one per 2 s)."
    )
    dev3000_browser_buffer_size: int = Field(
        500, ge=10, le=100_000, description="Browser records kept in memory (oldest dropped)."
    )
    dev3000_browser_slow_load_ms: float = Field(
        3000, gt=0, le=600_000, description="A page load slower than this is a warning event."
    )
    dev3000_logfire_token: SecretStr | None = Field(None, description="Logfire write token.")
    dev3000_sentry_dsn: SecretStr | None = Field(None, description="Sentry DSN.")
    redis_url: str | None = Field(
        None, description="Redis to health-check and share state through (empty: in-memory)."
    )
    redis_max_connections: int = Field(
        16,
        ge=1,
        le=1000,
        description="Connections at most in each Redis pool (one per use — breakers, rate "
        "limits, timeline, targets, dead letters — per process); more callers wait for one.",
    )
    database_url: SecretStr | None = Field(
        None, description="PostgreSQL to health-check (postgresql://user:pass@host/db)."
    )

    # === MCP ===
    mcp_server_name: str = Field("guilde-diag", min_length=1, description="MCP server name.")
    mcp_transport: Literal["stdio", "sse", "websocket", "http"] = Field(
        "stdio",
        description="Default transport of `dev3000 mcp`: stdio|sse|http (streamable HTTP). "
        "websocket is refused: MCP has no WebSocket transport dev3000 serves (ADR 0001).",
    )
    mcp_tools_enabled: bool = Field(True, description="Expose MCP tools.")
    mcp_resources_enabled: bool = Field(True, description="Expose MCP resources.")
    mcp_prompts_enabled: bool = Field(
        True,
        description="Expose MCP prompts (triage the stack, investigate errors, explain "
        "circuits, resource pressure); false: not advertised at all.",
    )
    dev3000_mcp_remotes: str | None = Field(
        None,
        description="Remote MCP servers the aggregate mounts: ';'-separated name=<url> "
        "(streamable HTTP, or SSE when the path ends in /sse) or name=<stdio command line>.",
    )

    # === Circuit breakers ===
    circuit_breaker_enabled: bool = Field(True, description="Feature flag: circuit breakers.")
    circuit_breaker_redis_url: str | None = Field(
        None, description="Redis for shared breaker state (empty: in-process memory)."
    )
    circuit_breaker_failure_threshold: int = Field(
        5, ge=1, le=1000, description="Failures before opening."
    )
    circuit_breaker_recovery_timeout: float = Field(
        30, gt=0, le=86400, description="Seconds before half-open."
    )
    circuit_breaker_half_open_requests: int = Field(
        3, ge=1, le=1000, description="Trial calls in half-open."
    )
    circuit_breaker_success_threshold: int = Field(
        2, ge=1, le=1000, description="Successes to close."
    )

    # === Retries, budgets, timeouts, rate limits, dead letters ===
    retry_enabled: bool = Field(True, description="Feature flag: retries.")
    retry_budget_enabled: bool = Field(True, description="Feature flag: retry budget.")
    retry_budget_ratio: float = Field(
        0.2, ge=0, le=1, description="Retries allowed per call over the window."
    )
    retry_budget_window_seconds: float = Field(
        10, gt=0, le=3600, description="Retry-budget window."
    )
    retry_budget_min_retries: int = Field(
        3, ge=0, le=10000, description="Retries always allowed per window."
    )
    timeouts_enabled: bool = Field(True, description="Feature flag: per-call timeouts.")
    rate_limit_enabled: bool = Field(True, description="Feature flag: client-side rate limits.")
    dead_letter_enabled: bool = Field(True, description="Feature flag: dead-letter recording.")

    # === Logfire ===
    logfire_token: SecretStr | None = Field(None, description="Logfire write token.")
    logfire_diagnostic_spans: bool = Field(
        True,
        description="Spans of dev3000's own work (each HTTP request it serves, each outbound "
        "HTTP call: health probes, MCP, LLMs) sent to Logfire; false: logs only.",
    )
    logfire_span_processor_batch_size: int = Field(
        512,
        ge=1,
        le=2048,
        description="Most spans in one export request to Logfire (the span queue holds 2048).",
    )
    logfire_span_processor_timeout: int = Field(
        5000,
        ge=100,
        le=600000,
        description="Timeout of one span export request to Logfire (ms); a slower answer "
        "counts as an export error.",
    )
    logfire_resource_attributes: str = Field(
        "service.namespace=guilde,deployment.environment=development",
        description="Comma-separated key=value resource attributes.",
    )
    logfire_console_enabled: bool = Field(
        False,
        description="Local console output of spans (stderr). Off unless asked: printing "
        "every span costs each call; without it and without a token Logfire is not set up.",
    )
    logfire_console_colors: bool = Field(
        True, description="Colours in console output (true|false; Logfire's auto|always|never too)."
    )
    logfire_console_include_timestamps: bool = Field(
        True, description="Timestamps in console output."
    )
    logfire_console_verbose: bool = Field(False, description="Verbose console output.")

    # === Sentry ===
    sentry_dsn: SecretStr | None = Field(None, description="Sentry DSN.")
    sentry_traces_sample_rate: float = Field(
        1.0, ge=0, le=1, description="0.0-1.0 traces sample rate."
    )
    sentry_profiles_sample_rate: float = Field(
        0.1, ge=0, le=1, description="0.0-1.0 profiling sample rate."
    )
    sentry_environment: str = Field("development", description="Sentry environment.")
    sentry_release: str = Field("local", description="Sentry release (e.g. the git SHA).")
    sentry_debug: bool = Field(False, description="Sentry SDK debug output.")
    sentry_attach_stacktrace: bool = Field(True, description="Attach stack traces to messages.")
    sentry_send_default_pii: bool = Field(
        False,
        description="Let Sentry attach personal data (the user, client IP, request headers "
        "and cookies); off for GDPR. Secrets are redacted either way.",
    )

    # === Diagnostic API ===
    diagnostic_mode: bool = Field(
        True,
        description="The diagnostic API (/api/v1/diag/*: status, circuits, stream; the alert "
        "intake /api/v1/alerts, /api/v1/investigations); false: 404.",
    )
    diagnostic_verbose: bool = Field(
        False,
        description="An internal error's problem document (500) names the exception "
        "(type and redacted message) besides the request id; false: the request id only.",
    )
    diagnostic_auth_required: bool = Field(
        False, description="Require an API key for diag endpoints."
    )
    diagnostic_api_keys: SecretStr | None = Field(
        None, description="Comma-separated <key>:<read|read+control>; key plain or sha256:<hex>."
    )
    diagnostic_control_enabled: bool = Field(
        False,
        description="Allow control through MCP tools (circuits, page actions, restarts) and "
        "give the local operator (stdio, the command line) the control scope.",
    )
    diagnostic_rate_limit: int = Field(
        100, ge=1, le=1_000_000, description="Requests per minute per key."
    )
    diagnostic_search_time_budget: float = Field(
        5.0,
        gt=0,
        le=60,
        description="Longest a log search, trace or error grouping runs (seconds); an MCP "
        "caller's time_budget is capped by it.",
    )
    diagnostic_search_concurrency: int = Field(
        2, ge=1, le=64, description="Log searches one key may run at once; one more: 429."
    )
    diagnostic_websocket_enabled: bool = Field(True, description="Enable the WebSocket stream.")
    diagnostic_stream_buffer_size: int = Field(
        1000, ge=1, le=1_000_000, description="Events kept for resume."
    )

    # === Health checks ===
    health_check_timeout: float = Field(5, gt=0, le=300, description="Per-check timeout (seconds).")
    health_check_include_details: bool = Field(True, description="Include check details.")
    health_check_external_services: bool = Field(
        True, description="Check external API connectivity."
    )
    health_check_cache_ttl: float = Field(
        2.0, ge=0, le=3600, description="Seconds results are cached."
    )
    health_deep_check_enabled: bool = Field(True, description="Enable deep checks.")
    health_deep_check_interval: float = Field(
        60, gt=0, le=86400, description="Seconds between deep checks."
    )
    health_deep_check_deadline: float = Field(
        4.5,
        gt=0,
        le=300,
        description="Seconds one deep check may take in all; checks still running then are "
        "reported as timed out (each check's timeout is capped by what is left).",
    )
    health_warn_db_latency_ms: float = Field(100, gt=0, description="DB latency warning (ms).")
    health_warn_redis_latency_ms: float = Field(50, gt=0, description="Redis latency warning (ms).")
    health_warn_api_latency_ms: float = Field(500, gt=0, description="API latency warning (ms).")
    health_warn_memory_percent: float = Field(80, gt=0, le=100, description="Memory warning (%).")
    health_warn_cpu_percent: float = Field(70, gt=0, le=100, description="CPU warning (%).")
    health_warn_logs_dir_mb: float = Field(
        1024, gt=0, description="Size of a DEV3000_LOG_PATHS directory that degrades disk (MB)."
    )
    health_warn_data_dir_mb: float = Field(
        1024, gt=0, description="Size of DEV3000_DATA_DIR that degrades disk (MB)."
    )

    # === Metrics (Prometheus) ===
    prometheus_url: str | None = Field(
        None,
        description="Prometheus the metrics area queries (instant and range PromQL) and the "
        "agent reads error-rate and latency series from; empty: no metrics source.",
    )
    prometheus_timeout: float = Field(
        5.0, gt=0, le=60, description="Longest one PromQL query may take (seconds)."
    )
    prometheus_max_series: int = Field(
        50, ge=1, le=1000, description="Series one query returns at most (the rest: truncated)."
    )
    prometheus_max_points: int = Field(
        2000,
        ge=10,
        le=100_000,
        description="Points one range query returns at most, all series together (its step "
        "is widened to fit).",
    )

    # === Alert intake ===
    alert_intake_rate_limit: int = Field(
        10,
        ge=1,
        le=10_000,
        description="Investigations firing alerts may open per minute (POST /api/v1/alerts); "
        "more are recorded on the timeline as rate limited, not diagnosed.",
    )
    alert_webhook_url: SecretStr | None = Field(
        None,
        description="Where each alert's diagnosis is also posted (http or https URL); empty: "
        "the timeline and stream only.",
    )
    alert_webhook_format: Literal["json", "slack"] = Field(
        "json",
        description="Payload of ALERT_WEBHOOK_URL: json (the investigation) or slack "
        "(an incoming-webhook message).",
    )

    # === Agent ===
    agent_providers: CommaList = Field(
        default_factory=lambda: ["offline"],
        description="Ordered provider chain, e.g. anthropic:<model>,openai:<model>,offline.",
    )
    openai_api_key: SecretStr | None = Field(None, description="OpenAI API key.")
    openai_base_url: str | None = Field(None, description="OpenAI-compatible base URL.")
    anthropic_api_key: SecretStr | None = Field(None, description="Anthropic API key.")
    anthropic_base_url: str | None = Field(None, description="Anthropic base URL.")
    openrouter_api_key: SecretStr | None = Field(None, description="OpenRouter API key.")
    openrouter_base_url: str | None = Field(
        None, description="OpenRouter (OpenAI-compatible) base URL; empty: OpenRouter's own."
    )
    agent_max_steps: int = Field(8, ge=1, le=100, description="LLM tool-loop step budget.")
    agent_token_budget: int = Field(
        40000, ge=100, le=10_000_000, description="LLM token budget per run."
    )
    agent_checkpointer: Literal["memory", "sqlite", "postgres", "redis"] = Field(
        "sqlite", description="Session store: memory|sqlite|postgres|redis."
    )
    agent_checkpoint_url: SecretStr | None = Field(
        None, description="DSN/URL/path for the session store (default under DEV3000_DATA_DIR)."
    )
    agent_web_port: int = Field(8001, ge=1, le=65535, description="agent-web port.")

    @field_validator(
        "dev3000_log_paths",
        "agent_providers",
        "dev3000_browser_origins",
        "dev3000_allowed_hosts",
        "dev3000_cors_origins",
        mode="before",
    )
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("dev3000_allowed_hosts")
    @classmethod
    def _host_names(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if not _HOST_NAME.match(v)]
        if bad:
            raise ValueError(
                f"not a host name: {', '.join(bad)} (a name or address without scheme or "
                "port, e.g. dev3000, 10.0.0.5, [fd00::1] or *.example.com)"
            )
        return [v.lower() for v in value]

    @field_validator("dev3000_cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if not _ORIGIN.match(v)]
        if bad:
            raise ValueError(
                f"not an origin: {', '.join(bad)} (scheme://host[:port], no path, "
                "e.g. https://console.example.com)"
            )
        return [v.lower().rstrip("/") for v in value]

    @field_validator("logfire_console_colors", mode="before")
    @classmethod
    def _logfire_colors(cls, value: object) -> object:
        # Logfire reads this variable too and spells it auto|always|never: accept its words
        if isinstance(value, str) and value.strip().lower() in ("auto", "always", "never"):
            return value.strip().lower() != "never"
        return value

    @field_validator("mcp_transport")
    @classmethod
    def _served_transport(cls, value: str) -> str:
        if value == "websocket":
            raise ValueError(
                "websocket is not a transport dev3000 serves MCP over (MCP defines stdio and "
                "streamable HTTP; dev3000 adds the legacy SSE one, ADR 0001): use http "
                "(dev3000 serve's /mcp), sse or stdio"
            )
        return value

    @field_validator("prometheus_url")
    @classmethod
    def _prometheus_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return _http_url(value, "PROMETHEUS_URL").rstrip("/")

    @field_validator("alert_webhook_url")
    @classmethod
    def _webhook_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        return SecretStr(_http_url(value.get_secret_value(), "ALERT_WEBHOOK_URL"))

    @field_validator("dev3000_mode", "dev3000_log_level", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator(
        "redis_url",
        "database_url",
        "circuit_breaker_redis_url",
        "dev3000_targets_file",
        "dev3000_compose_file",
        "dev3000_browser_url",
        "dev3000_browser_executable",
        "openai_base_url",
        "anthropic_base_url",
        "openrouter_base_url",
        "prometheus_url",
        "alert_webhook_url",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # the .env layer honours DEV3000_ENV_FILE like the profile and family readers do
        dotenv = DotEnvSettingsSource(settings_cls, env_file=_env_file(), env_file_encoding="utf-8")
        del dotenv_settings
        return (init_settings, env_settings, dotenv, _ProfileSource(settings_cls))

    # --- derived views -------------------------------------------------------------
    @property
    def logfire_write_token(self) -> SecretStr | None:
        return self.dev3000_logfire_token or self.logfire_token

    @property
    def sentry_dsn_value(self) -> SecretStr | None:
        return self.dev3000_sentry_dsn or self.sentry_dsn

    @property
    def data_dir(self) -> Path:
        return Path(self.dev3000_data_dir)

    @property
    def redis_namespace(self) -> str:
        """``guilde:<DEV3000_DEPLOYMENT>:`` — the start of every key and channel this stack
        shares through Redis (see :mod:`guilde_core.shared_redis`)."""
        return f"guilde:{self.dev3000_deployment}:"

    @property
    def shared_redis_url(self) -> str | None:
        """The Redis the stack shares state through: ``REDIS_URL``, else
        ``CIRCUIT_BREAKER_REDIS_URL`` (None: in-process state only)."""
        return self.redis_url or self.circuit_breaker_redis_url

    def resource_attributes(self) -> dict[str, str]:
        pairs = (p.split("=", 1) for p in self.logfire_resource_attributes.split(",") if "=" in p)
        return {k.strip(): v.strip() for k, v in pairs}

    def breaker_config(self, service: str) -> BreakerConfig:
        """Effective breaker settings for ``service`` (``CB_<SERVICE>_*`` over defaults)."""
        return _families().breaker(service, self)

    def breaker_services(self) -> list[str]:
        """Services with built-in or configured per-service breaker settings."""
        return sorted(set(BUILTIN_BREAKERS) | set(_families().breakers))

    def retry_policy(self, service_type: ServiceType | str) -> RetryPolicy:
        """Effective retry/timeout policy for a service type in this profile."""
        return _families().retry(ServiceType(service_type), self.dev3000_mode)

    def client_rate_limit(self, service: str) -> float | None:
        """Client-side requests/second allowed to ``service`` (None: unlimited)."""
        return _families().rate_limits.get(_service_key(service))


# --------------------------------------------------------------------------------------
# Families of variables read by pattern
# --------------------------------------------------------------------------------------


class BreakerConfig(BaseModel):
    """Settings of one circuit breaker."""

    model_config = ConfigDict(frozen=True)

    failure_threshold: int = Field(ge=1, le=1000)
    recovery_timeout: float = Field(gt=0, le=86400)
    half_open_requests: int = Field(ge=1, le=1000)
    success_threshold: int = Field(ge=1, le=1000)


# Built-in breaker settings per service type.
BUILTIN_BREAKERS: dict[str, dict[str, float]] = {
    "openai": {"failure_threshold": 3, "recovery_timeout": 60},
    "anthropic": {"failure_threshold": 3, "recovery_timeout": 60},
    "openrouter": {"failure_threshold": 5, "recovery_timeout": 30},
    "webhooks": {"failure_threshold": 10, "recovery_timeout": 15},
    "logfire_export": {"failure_threshold": 5, "recovery_timeout": 30},
    "external_api": {"failure_threshold": 5, "recovery_timeout": 30},
}


class ServiceType(StrEnum):
    """Kinds of outbound dependency, each with its own retry/timeout policy."""

    LLM = "llm"
    DATABASE = "database"
    THIRD_PARTY_API = "third_party_api"
    FILE_STORAGE = "file_storage"
    MESSAGE_QUEUE = "message_queue"


class RetryPolicy(BaseModel):
    """Retry and timeout policy for one service type."""

    model_config = ConfigDict(frozen=True)

    max_attempts: int = Field(ge=1, le=50, description="Attempts including the first.")
    base_delay: float = Field(ge=0, le=600, description="First backoff delay (s).")
    multiplier: float = Field(ge=1, le=10, description="Backoff growth per attempt.")
    max_delay: float = Field(ge=0, le=3600, description="Cap on one backoff delay (s).")
    timeout: float = Field(gt=0, le=3600, description="Timeout of the first attempt (s).")
    timeout_multiplier: float = Field(ge=1, le=10, description="Timeout growth after a timeout.")
    max_timeout: float = Field(gt=0, le=3600, description="Cap on one attempt's timeout (s).")
    deadline: float = Field(gt=0, le=86400, description="Overall deadline, retries included (s).")


_RETRY_DEFAULTS: dict[ServiceType, dict[str, float]] = {
    # LLM APIs: rate limits and slow models; long timeouts, a few patient retries.
    ServiceType.LLM: {
        "max_attempts": 4, "base_delay": 1.0, "multiplier": 2, "max_delay": 30,
        "timeout": 60, "timeout_multiplier": 1.5, "max_timeout": 120, "deadline": 180,
    },
    # Databases: connection resets, deadlocks; short and quick.
    ServiceType.DATABASE: {
        "max_attempts": 3, "base_delay": 0.05, "multiplier": 2, "max_delay": 1,
        "timeout": 5, "timeout_multiplier": 1.5, "max_timeout": 15, "deadline": 20,
    },
    # Third-party HTTP APIs: 429/502/503; honour Retry-After.
    ServiceType.THIRD_PARTY_API: {
        "max_attempts": 4, "base_delay": 0.5, "multiplier": 2, "max_delay": 10,
        "timeout": 10, "timeout_multiplier": 1.5, "max_timeout": 30, "deadline": 45,
    },
    # File storage: network blips; quota errors are permanent.
    ServiceType.FILE_STORAGE: {
        "max_attempts": 3, "base_delay": 0.5, "multiplier": 2, "max_delay": 8,
        "timeout": 30, "timeout_multiplier": 1.5, "max_timeout": 90, "deadline": 120,
    },
    # Message queues: broker restarts; more attempts, short delays.
    ServiceType.MESSAGE_QUEUE: {
        "max_attempts": 5, "base_delay": 0.2, "multiplier": 2, "max_delay": 5,
        "timeout": 5, "timeout_multiplier": 1.5, "max_timeout": 15, "deadline": 30,
    },
}  # fmt: skip

# Per-environment adjustments: development fails fast, production is patient.
_RETRY_MODE_OVERRIDES: dict[str, dict[ServiceType, dict[str, float]]] = {
    "development": {
        ServiceType.LLM: {"max_attempts": 3, "deadline": 90},
        ServiceType.THIRD_PARTY_API: {"max_attempts": 3, "deadline": 30},
    },
    "staging": {},
    "production": {
        ServiceType.LLM: {"max_attempts": 5, "deadline": 240},
        ServiceType.DATABASE: {"max_attempts": 4},
    },
}

_CB_RE = re.compile(
    r"^CB_(?P<svc>[A-Z0-9_]+?)_(?P<key>FAILURE_THRESHOLD|RECOVERY_TIMEOUT|HALF_OPEN_REQUESTS|SUCCESS_THRESHOLD)$"
)
_RETRY_RE = re.compile(
    r"^RETRY_(?P<type>LLM|DATABASE|THIRD_PARTY_API|FILE_STORAGE|MESSAGE_QUEUE)_"
    r"(?P<key>MAX_ATTEMPTS|BASE_DELAY|MULTIPLIER|MAX_DELAY|DEADLINE)$"
)
_TIMEOUT_RE = re.compile(
    r"^TIMEOUT_(?P<type>LLM|DATABASE|THIRD_PARTY_API|FILE_STORAGE|MESSAGE_QUEUE)(?:_(?P<key>MULTIPLIER|MAX))?$"
)
_RATE_RE = re.compile(r"^CLIENT_RATE_LIMIT_(?P<svc>[A-Z0-9_]+)$")


def _service_key(service: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", service.lower()).strip("_")


@dataclass
class _Families:
    """Pattern-named variables, with the variable name each value came from."""

    breakers: dict[str, dict[str, tuple[str, str]]]
    retries: dict[ServiceType, dict[str, tuple[str, str]]]
    rate_limits: dict[str, float]

    def breaker(self, service: str, settings: Settings) -> BreakerConfig:
        key = _service_key(service)
        values: dict[str, Any] = {
            "failure_threshold": settings.circuit_breaker_failure_threshold,
            "recovery_timeout": settings.circuit_breaker_recovery_timeout,
            "half_open_requests": settings.circuit_breaker_half_open_requests,
            "success_threshold": settings.circuit_breaker_success_threshold,
        }
        values.update(BUILTIN_BREAKERS.get(key, {}))
        values.update({k: v for k, (_, v) in self.breakers.get(key, {}).items()})
        return BreakerConfig.model_validate(values)

    def retry(self, service_type: ServiceType, mode: str) -> RetryPolicy:
        values: dict[str, Any] = dict(_RETRY_DEFAULTS[service_type])
        values.update(_RETRY_MODE_OVERRIDES.get(mode, {}).get(service_type, {}))
        values.update({k: v for k, (_, v) in self.retries.get(service_type, {}).items()})
        return RetryPolicy.model_validate(values)


def _pattern_layers() -> dict[str, str]:
    merged = dict(_read_dotenv())
    merged.update({k.upper(): v for k, v in os.environ.items()})
    return merged


def _families() -> _Families:
    breakers: dict[str, dict[str, tuple[str, str]]] = {}
    retries: dict[ServiceType, dict[str, tuple[str, str]]] = {}
    rate_limits: dict[str, float] = {}
    for name, value in _pattern_layers().items():
        if m := _CB_RE.match(name):
            breakers.setdefault(m["svc"].lower(), {})[m["key"].lower()] = (name, value)
        elif m := _RETRY_RE.match(name):
            retries.setdefault(ServiceType(m["type"].lower()), {})[m["key"].lower()] = (name, value)
        elif m := _TIMEOUT_RE.match(name):
            field = {None: "timeout", "MULTIPLIER": "timeout_multiplier", "MAX": "max_timeout"}[
                m["key"]
            ]
            retries.setdefault(ServiceType(m["type"].lower()), {})[field] = (name, value)
        elif m := _RATE_RE.match(name):
            try:
                rate_limits[m["svc"].lower()] = float(value)
            except ValueError:
                rate_limits[m["svc"].lower()] = -1.0  # reported by check_settings
    return _Families(breakers, retries, rate_limits)


# --------------------------------------------------------------------------------------
# Loading, checking, explaining
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigIssue:
    """One bad variable: its name, the value given (redacted by callers) and why."""

    variable: str
    message: str


class ConfigurationInvalid(ValueError):
    """Raised at start-up when one or more variables are invalid; names every one."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = issues
        lines = "\n".join(f"  {i.variable}: {i.message}" for i in issues)
        super().__init__(f"invalid configuration ({len(issues)} problem(s)):\n{lines}")


def _issues_from_validation(
    error: ValidationError, names: Mapping[str, str] | None = None
) -> list[ConfigIssue]:
    issues = []
    for err in error.errors():
        field = str(err["loc"][0]) if err["loc"] else "?"
        variable = (names or {}).get(field, field.upper())
        issues.append(ConfigIssue(variable, err["msg"]))
    return issues


def check_settings() -> tuple[Settings | None, list[ConfigIssue]]:
    """Validate everything; return the settings (if the core model is valid) and all issues."""
    issues: list[ConfigIssue] = []
    settings: Settings | None = None
    try:
        settings = Settings()
    except ValidationError as exc:
        issues.extend(_issues_from_validation(exc))
    mode = _resolve_mode(os.environ, _read_dotenv())
    if mode not in PROFILES and not any(i.variable == "DEV3000_MODE" for i in issues):
        issues.append(ConfigIssue("DEV3000_MODE", f"unknown profile {mode!r}"))
    fam = _families()
    base = settings or Settings.model_construct()
    for svc, entries in fam.breakers.items():
        try:
            fam.breaker(svc, base)
        except ValidationError as exc:
            names = {k: var for k, (var, _) in entries.items()}
            issues.extend(_issues_from_validation(exc, names))
    for stype, entries in fam.retries.items():
        try:
            fam.retry(stype, mode if mode in PROFILES else "development")
        except ValidationError as exc:
            names = {k: var for k, (var, _) in entries.items()}
            issues.extend(_issues_from_validation(exc, names))
    for svc, rate in fam.rate_limits.items():
        if rate <= 0:
            issues.append(
                ConfigIssue(
                    f"CLIENT_RATE_LIMIT_{svc.upper()}",
                    "must be a positive number (requests/second)",
                )
            )
    return (settings if not issues else None), issues


def load_settings() -> Settings:
    """Load and fully validate the configuration, raising :class:`ConfigurationInvalid`."""
    settings, issues = check_settings()
    if issues or settings is None:
        raise ConfigurationInvalid(issues)
    return settings


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (validated once; see :func:`reset_settings_cache`)."""
    return load_settings()


def reset_settings_cache() -> None:
    """Forget the cached settings (tests, configuration reload)."""
    get_settings.cache_clear()


@contextmanager
def environment_overrides(values: Mapping[str, str], unset: Iterable[str] = ()) -> Iterator[None]:
    """Set (and unset) environment variables for a block and read the settings anew inside
    and after it."""
    unset = tuple(unset)
    saved = {key: os.environ.get(key) for key in (*values, *unset)}
    for key in unset:
        os.environ.pop(key, None)
    os.environ.update(values)
    reset_settings_cache()
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
        reset_settings_cache()


def explain_settings(settings: Settings) -> list[tuple[str, Any, SettingSource]]:
    """Each variable with its effective value and the layer it came from."""
    environ = {k.lower() for k in os.environ}
    dotenv = {k.lower() for k in _read_dotenv()}
    mode = _resolve_mode(os.environ, _read_dotenv())
    profile = {k.lower() for k in PROFILES.get(mode, {})}
    rows: list[tuple[str, Any, SettingSource]] = []
    for field in Settings.model_fields:
        source: SettingSource
        if field in environ:
            source = "env"
        elif field in dotenv:
            source = ".env"
        elif field in profile:
            source = "profile"
        else:
            source = "default"
        rows.append((field.upper(), getattr(settings, field), source))
    fam = _families()
    env_upper = {k.upper() for k in os.environ}
    for entries in [*fam.breakers.values(), *fam.retries.values()]:
        for var, value in entries.values():
            rows.append((var, value, "env" if var in env_upper else ".env"))
    return rows
