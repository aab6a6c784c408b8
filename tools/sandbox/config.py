"""Configuration of the sandbox service.

:class:`SandboxConfig` is fixed at start (``SANDBOX_*`` environment variables through
:meth:`SandboxConfig.from_env`, or arguments). :class:`RuntimeConfig` is the part that is
re-read from a JSON file on ``POST /_chaos/reload`` (the ``bad-config-reload`` fault writes a
bad value there): a failed reload keeps the last good values and says so in health.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from guilde_core.errors import ConfigurationError

__all__ = ["RuntimeConfig", "SandboxConfig", "load_runtime_config"]


class RuntimeConfig(BaseModel):
    """Reloadable values (the runtime config file)."""

    model_config = ConfigDict(extra="forbid")

    upstream_timeout_s: float = Field(5.0, gt=0, le=120)
    cache_ttl_s: float = Field(30.0, gt=0, le=3600)
    pool_timeout_s: float = Field(1.0, gt=0, le=60)
    slow_request_ms: float = Field(1000.0, gt=0, le=60_000)


class SandboxConfig(BaseModel):
    """Where the sandbox keeps its state and whom it calls."""

    model_config = ConfigDict(extra="forbid")

    service_name: str = "sandbox"
    database_url: str | None = Field(
        None, description="postgresql://… DSN; SQLite in the data dir when unset."
    )
    pg_schema: str | None = Field(None, description="PostgreSQL schema for the sandbox's tables.")
    sqlite_path: Path | None = None
    pool_size: int = Field(5, ge=1, le=100)
    redis_url: str | None = Field(None, description="Redis cache; in-memory when unset.")
    redis_prefix: str = "sandbox:"
    llm_base_url: str | None = Field(
        None, description="OpenAI-compatible base URL (…/v1) of the LLM upstream."
    )
    llm_provider: str = "openai"
    llm_api_key: str = "sk-sandbox-fake"
    llm_model: str = "fake-gpt"
    logs_dir: Path = Field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="sandbox-logs-")))
    data_dir: Path | None = Field(None, description="SQLite file, scratch dir, runtime config.")
    chaos_token: str | None = Field(None, description="Token of /_chaos; generated when unset.")
    chaos_token_file: Path | None = Field(None, description="Write the token here (mode 0600).")
    disk_budget_mb: float = Field(32, gt=0)
    memory_budget_mb: float = Field(48, gt=0)
    log_flood_threshold: float = Field(100, gt=0, description="Lines/s that count as a flood.")
    error_rate_threshold: float = Field(5.0, gt=0, le=100, description="Percent, last window.")
    health_window_s: float = Field(
        60.0, gt=0, le=3600, description="Window of the error-rate and latency checks (s)."
    )

    def resolved_data_dir(self) -> Path:
        return self.data_dir or self.logs_dir.parent / f"{self.logs_dir.name}-data"

    @classmethod
    def from_env(cls, **overrides: Any) -> SandboxConfig:
        """Read ``SANDBOX_<FIELD>`` variables (e.g. ``SANDBOX_DATABASE_URL``), then overrides."""
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            raw = os.environ.get(f"SANDBOX_{name.upper()}")
            if raw:
                values[name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            raise ConfigurationError(
                f"invalid sandbox setting SANDBOX_{field.upper()}: {first['msg']}"
            ) from None


def load_runtime_config(path: Path) -> RuntimeConfig:
    """Read and validate the runtime config file; :class:`ConfigurationError` naming the key."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path.name}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ConfigurationError(
            f"{path.name} is not JSON: {exc.msg} at line {exc.lineno}"
        ) from None
    try:
        return RuntimeConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigurationError(f"{path.name}: {problems}") from None
