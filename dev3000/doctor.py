"""``dev3000 doctor``: a preflight of everything dev3000 depends on, with fixes.

Checks the configuration (every bad variable named), the API keys, the data directory,
the port, Redis, PostgreSQL, the configured and runtime targets, the LLM providers of
``AGENT_PROVIDERS``, the Prometheus of ``PROMETHEUS_URL`` (its API answers) and the alert
write-back of ``ALERT_WEBHOOK_URL`` (reachable; only its host is shown). Network checks are TCP connects (Redis PING and PostgreSQL
``SELECT 1`` where the client can) with a short budget; nothing is sent to an LLM.
A finding is ``ok``, ``warn`` or ``fail``; a ``fail`` that is ``critical`` makes the
command exit 1.
"""

from __future__ import annotations

import asyncio
import glob
import os
import socket
import tempfile
from collections.abc import Awaitable
from dataclasses import asdict, dataclass
from typing import IO, Any, Literal
from urllib.parse import urlsplit

from guilde_core.config import Settings, check_settings
from guilde_core.redaction import redact_text

__all__ = ["Finding", "render", "run_doctor"]

Status = Literal["ok", "warn", "fail"]
_DEFAULT_PORTS = {"http": 80, "https": 443, "redis": 6379, "rediss": 6379, "postgresql": 5432}
_PROVIDER_URLS = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
    "openrouter": "https://openrouter.ai/api/v1",
}


@dataclass
class Finding:
    """One line of the doctor's table."""

    check: str
    status: Status
    detail: str
    fix: str = ""
    critical: bool = False

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["detail"] = redact_text(self.detail)
        return data


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower().split("+")[0]
    if scheme == "postgres":
        scheme = "postgresql"
    port = parts.port or _DEFAULT_PORTS.get(scheme, 80)
    return parts.hostname or "127.0.0.1", port


async def _tcp(url: str, budget: float) -> str | None:
    """None when ``url``'s host:port accepts a TCP connection, else why not."""
    host, port = _host_port(url)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), budget)
    except TimeoutError:
        return f"no answer from {host}:{port} within {budget:g}s"
    except OSError as exc:
        return f"{host}:{port}: {exc.strerror or type(exc).__name__}"
    writer.close()
    return None


async def _redis(url: str, budget: float) -> str | None:
    from guilde_core.shared_redis import probe

    try:
        async with probe(url, budget) as client:
            await asyncio.wait_for(client.ping(), budget + 0.5)
    except Exception as exc:
        return redact_text(f"{type(exc).__name__}: {exc}")
    return None


async def _postgres(dsn: str, budget: float) -> str | None:
    import psycopg

    try:
        conn = await asyncio.wait_for(
            psycopg.AsyncConnection.connect(dsn, connect_timeout=max(1, int(budget))),
            budget + 0.5,
        )
    except Exception as exc:
        return redact_text(f"{type(exc).__name__}: {exc}".strip())
    try:
        await conn.execute("SELECT 1")
    finally:
        await conn.close()
    return None


def _config() -> tuple[Settings | None, list[Finding]]:
    settings, issues = check_settings()
    if issues:
        return None, [
            Finding(
                f"config {i.variable}",
                "fail",
                i.message,
                f"set a valid {i.variable} (see .env.example / dev3000 config show)",
                critical=True,
            )
            for i in issues
        ]
    return settings, [Finding("configuration", "ok", "all variables valid")]


def _keys(settings: Settings) -> list[Finding]:
    from guilde_core.errors import ConfigurationError
    from guilde_core.http.auth import parse_api_keys

    spec = settings.diagnostic_api_keys
    try:
        entries = parse_api_keys(spec.get_secret_value() if spec else None)
    except ConfigurationError as exc:
        return [
            Finding(
                "api keys",
                "fail",
                exc.message,
                "DIAGNOSTIC_API_KEYS=<key>:read,<key2>:read+control (key plain or sha256:<hex>)",
                critical=True,
            )
        ]
    if settings.diagnostic_auth_required and not entries:
        return [
            Finding(
                "api keys",
                "fail",
                "DIAGNOSTIC_AUTH_REQUIRED=true but DIAGNOSTIC_API_KEYS is empty: no one can call",
                "add keys to DIAGNOSTIC_API_KEYS or set DIAGNOSTIC_AUTH_REQUIRED=false",
                critical=True,
            )
        ]
    mode = "required" if settings.diagnostic_auth_required else "optional"
    status: Status = "ok"
    fix = ""
    if settings.dev3000_mode == "production" and not settings.diagnostic_auth_required:
        status, fix = "warn", "set DIAGNOSTIC_AUTH_REQUIRED=true in production"
    return [
        Finding("api keys", status, f"{len(entries)} key(s), auth {mode}", fix),
        _control(settings),
    ]


def _control(settings: Settings) -> Finding:
    """Who may control (open breakers, drive the page, restart processes) as configured."""
    from guilde_core.http.auth import control_posture_issue
    from guilde_core.http.authz import Posture

    issue = control_posture_issue(settings)
    if issue is not None:
        problem, fix = issue
        return Finding("control", "fail", problem, fix, critical=True)
    posture = Posture.from_settings(settings)
    who = (
        "a key with the control scope"
        if posture.exposed or posture.auth_required
        else "a control key, or anyone on this machine without a key (development, loopback)"
    )
    mcp = "on" if posture.control_enabled else "off (DIAGNOSTIC_CONTROL_ENABLED=false)"
    return Finding("control", "ok", f"control needs {who}; through MCP/stdio: {mcp}")


def _data_dir(settings: Settings) -> Finding:
    path = settings.data_dir
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".doctor-"):
            pass
    except OSError as exc:
        return Finding(
            "data directory",
            "fail",
            f"{path}: {exc.strerror or exc}",
            "point DEV3000_DATA_DIR at a writable directory",
            critical=True,
        )
    return Finding("data directory", "ok", f"{path} is writable")


def _port(settings: Settings) -> Finding:
    host, port = settings.dev3000_host, settings.dev3000_port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host if host not in ("", "0.0.0.0") else "0.0.0.0", port))
        except OSError as exc:
            return Finding(
                "port",
                "warn",
                f"{host}:{port} is not free ({exc.strerror}); is dev3000 already running?",
                "stop the other process or set DEV3000_PORT",
            )
    return Finding("port", "ok", f"{host}:{port} is free")


def _surfaces(settings: Settings) -> Finding:
    """What ``dev3000 serve`` will expose under the two master switches."""
    from dev3000.switches import switches_off

    off = [
        f"{s.variable}=false ({', '.join(p + '/*' for p in s.prefixes)} answer 404)"
        for s in switches_off(settings)
    ]
    if not off:
        return Finding("surfaces", "ok", "diagnostic API and debug surfaces on")
    return Finding(
        "surfaces",
        "warn",
        "; ".join(off) + "; probes and /metrics stay",
        "set the switch to true (environment beats the DEV3000_MODE profile) if you mean to "
        "diagnose through this dev3000",
    )


def _log_paths(settings: Settings) -> Finding:
    missing = [p for p in settings.dev3000_log_paths if not glob.glob(p)]
    if missing:
        return Finding(
            "log sources",
            "warn",
            f"not found: {', '.join(missing)}",
            "create them or set DEV3000_LOG_PATHS to your log directories",
        )
    return Finding("log sources", "ok", ", ".join(settings.dev3000_log_paths))


async def _network(settings: Settings, budget: float) -> list[Finding]:
    jobs: list[tuple[str, Awaitable[str | None], str, bool, str]] = []
    if settings.redis_url:
        jobs.append(
            (
                "redis",
                _redis(settings.redis_url, budget),
                "start Redis or fix REDIS_URL",
                True,
                settings.redis_url,
            )
        )
    if settings.circuit_breaker_redis_url:
        jobs.append(
            (
                "circuit-state redis",
                _redis(settings.circuit_breaker_redis_url, budget),
                "start it or fix CIRCUIT_BREAKER_REDIS_URL (breakers fall back to memory)",
                False,
                settings.circuit_breaker_redis_url,
            )
        )
    if settings.database_url is not None:
        dsn = settings.database_url.get_secret_value()
        jobs.append(
            (
                "postgresql",
                _postgres(dsn, budget),
                "start PostgreSQL or fix DATABASE_URL",
                True,
                dsn,
            )
        )
    for name, url in (
        ("backend", settings.dev3000_backend_url),
        ("agent", settings.dev3000_agent_url),
        ("frontend", settings.dev3000_frontend_url),
    ):
        if not url.strip():  # not deployed
            continue
        var = f"DEV3000_{name.upper()}_URL"
        jobs.append((f"target {name}", _tcp(url, budget), f"start it or fix {var}", False, url))
    jobs.extend(await _runtime_targets(settings, budget))
    for entry in settings.agent_providers:
        provider = entry.split(":", 1)[0].strip().lower()
        if provider in ("offline", ""):
            continue
        base = {
            "openai": settings.openai_base_url,
            "anthropic": settings.anthropic_base_url,
        }.get(provider) or _PROVIDER_URLS.get(provider)
        if base is None:
            continue
        jobs.append(
            (
                f"llm {provider}",
                _tcp(base, budget),
                f"check network access to {provider} or its base URL",
                False,
                base,
            )
        )
    results = await asyncio.gather(*(job[1] for job in jobs))
    findings: list[Finding] = []
    for (name, _, fix, critical, url), error in zip(jobs, results, strict=True):
        where = redact_text(url)
        if error is None:
            findings.append(Finding(name, "ok", f"reachable: {where}"))
        else:
            findings.append(
                Finding(name, "fail" if critical else "warn", f"{where}: {error}", fix, critical)
            )
    findings.extend(_provider_keys(settings))
    return findings


def _provider_keys(settings: Settings) -> list[Finding]:
    out: list[Finding] = []
    keys = {
        "openai": settings.openai_api_key,
        "anthropic": settings.anthropic_api_key,
        "openrouter": settings.openrouter_api_key,
    }
    for entry in settings.agent_providers:
        provider = entry.split(":", 1)[0].strip().lower()
        if provider in keys and keys[provider] is None:
            out.append(
                Finding(
                    f"llm {provider} key",
                    "warn",
                    f"{provider.upper()}_API_KEY is not set; the agent will skip {provider}",
                    f"set {provider.upper()}_API_KEY or remove it from AGENT_PROVIDERS",
                )
            )
    return out


async def _runtime_targets(
    settings: Settings, budget: float
) -> list[tuple[str, Awaitable[str | None], str, bool, str]]:
    from dev3000.targets_store import open_targets_store

    shared = settings.redis_url or settings.circuit_breaker_redis_url
    if not shared and not (settings.data_dir / "targets.sqlite3").exists():
        return []
    try:
        store = open_targets_store(settings)
        try:
            targets = await asyncio.wait_for(store.all(), budget + 1)
        finally:
            await store.aclose()
    except Exception:
        return []
    return [
        (
            f"target {t.name}",
            _tcp(t.url, budget),
            f"start {t.name} or update it: PATCH /api/v1/targets/{t.name}",
            t.critical,
            t.url,
        )
        for t in targets
    ]


async def _prometheus(settings: Settings, budget: float) -> Finding:
    """``PROMETHEUS_URL``: not set (the metrics area is off), or a Prometheus that answers
    its API (its version), or what is wrong with it."""
    url = settings.prometheus_url
    if not url:
        return Finding(
            "prometheus",
            "ok",
            "PROMETHEUS_URL not set: no metrics tools or metrics evidence",
        )
    import httpx

    where = redact_text(url)
    fix = "start Prometheus or fix PROMETHEUS_URL (its base URL, e.g. http://prometheus:9090)"
    try:
        async with httpx.AsyncClient(timeout=budget, follow_redirects=False) as client:
            response = await client.get(url + "/api/v1/status/buildinfo")
        body = response.json() if response.status_code == 200 else None
    except httpx.HTTPError as exc:
        return Finding("prometheus", "warn", f"{where}: {type(exc).__name__}", fix)
    except ValueError:
        body = None
    if not isinstance(body, dict) or body.get("status") != "success":
        return Finding(
            "prometheus",
            "warn",
            f"{where} answered HTTP {response.status_code}, not the Prometheus API",
            fix,
        )
    version = str((body.get("data") or {}).get("version", "?"))[:40]
    return Finding("prometheus", "ok", f"Prometheus {version} at {where}")


async def _alert_webhook(settings: Settings, budget: float) -> Finding:
    """``ALERT_WEBHOOK_URL``: off, or reachable (its host only: the URL is a credential)."""
    secret = settings.alert_webhook_url
    fmt = settings.alert_webhook_format
    if secret is None:
        if fmt != "json":
            return Finding(
                "alert webhook",
                "warn",
                f"ALERT_WEBHOOK_FORMAT={fmt} without ALERT_WEBHOOK_URL: diagnoses go to the "
                "timeline only",
                "set ALERT_WEBHOOK_URL or drop ALERT_WEBHOOK_FORMAT",
            )
        return Finding("alert webhook", "ok", "off: alert diagnoses go to the timeline only")
    url = secret.get_secret_value()
    parts = urlsplit(url)
    host = parts.hostname or "?"
    where = f"{parts.scheme}://{host} ({fmt})"
    error = await _tcp(url, budget)
    if error is not None:
        return Finding(
            "alert webhook",
            "warn",
            f"{where}: {error}",
            "check network access to the webhook or fix ALERT_WEBHOOK_URL (failed "
            "deliveries are retried, then kept as dead letters)",
        )
    from guilde_core.http.authz import is_loopback

    if parts.scheme == "http" and not is_loopback(host):
        return Finding(
            "alert webhook",
            "warn",
            f"{where}: plain http, diagnoses cross the network unencrypted",
            "use an https:// ALERT_WEBHOOK_URL",
        )
    return Finding("alert webhook", "ok", f"reachable: {where}")


def run_doctor(*, timeout: float = 2.0) -> list[Finding]:
    """Every check, in order; never raises."""
    settings, findings = _config()
    if settings is None:
        return findings
    findings.extend(_keys(settings))
    findings.append(_data_dir(settings))
    findings.append(_port(settings))
    findings.append(_surfaces(settings))
    findings.append(_log_paths(settings))
    findings.extend(asyncio.run(_network(settings, timeout)))
    findings.append(asyncio.run(_prometheus(settings, timeout)))
    findings.append(asyncio.run(_alert_webhook(settings, timeout)))
    return findings


def render(findings: list[Finding], out: IO[str]) -> None:
    """A table of findings (rich), then a one-line verdict."""
    from rich.console import Console
    from rich.table import Table

    console = Console(file=out, width=int(os.environ.get("COLUMNS", "120")), soft_wrap=False)
    table = Table(title="dev3000 doctor", show_lines=False)
    for column in ("check", "status", "detail", "how to fix"):
        table.add_column(column, overflow="fold")
    style = {"ok": "green", "warn": "yellow", "fail": "bold red"}
    for f in findings:
        label = f.status.upper() + (" (critical)" if f.critical and f.status == "fail" else "")
        table.add_row(f.check, f"[{style[f.status]}]{label}[/]", redact_text(f.detail), f.fix)
    console.print(table)
    critical = sum(1 for f in findings if f.status == "fail" and f.critical)
    warnings = sum(1 for f in findings if f.status != "ok") - critical
    verdict = "critical problems: fix them first" if critical else "ready to serve"
    console.print(f"{critical} critical, {warnings} other finding(s): {verdict}")
