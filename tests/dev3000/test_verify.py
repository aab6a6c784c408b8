"""``dev3000 verify --url``: post-deploy checks against a live ``dev3000 serve``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.harness import ManagedProcess, free_port, wait_for_http

BIN = Path(sys.executable).parent
KEY = "verify-key-0123456789"
CHECKS = ["health", "live", "ready", "deep report", "circuits", "mcp", "stream"]


def _env(tmp_path: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DEV3000_", "DIAGNOSTIC_"))}
    return {
        **base,
        "DEV3000_ENV_FILE": str(tmp_path / "none.env"),
        "DEV3000_DATA_DIR": str(tmp_path / "data"),
        "DEV3000_LOG_PATHS": str(tmp_path / "logs"),
        "DEV3000_BACKEND_URL": "",
        "DEV3000_AGENT_URL": "",
        "DEV3000_FRONTEND_URL": "",
        "DIAGNOSTIC_AUTH_REQUIRED": "true",
        "DIAGNOSTIC_API_KEYS": f"{KEY}:read",
    }


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("verify")
    port = free_port()
    env = _env(tmp)
    log = (tmp / "serve.log").open("wb")
    argv = [str(BIN / "dev3000"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    with ManagedProcess(argv, env=env, cwd=tmp, stdout=log, stderr=log):
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/api/v1/health/ready", timeout=60, status=200)
        yield url, env
    log.close()


def _verify(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "dev3000"), "verify", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_every_check_passes_with_a_key(live: tuple[str, dict[str, str]]) -> None:
    url, env = live
    done = _verify({**env, "DEV3000_API_KEY": KEY}, "--url", url)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines[:-1]] == ["ok"] * len(CHECKS)
    assert lines[-1] == f"verify: {len(CHECKS)}/{len(CHECKS)} checks passed"
    assert "initialize →" in done.stdout
    assert "WebSocket hello received" in done.stdout
    assert KEY not in done.stdout + done.stderr
    as_json = json.loads(_verify(env, "--url", url, "--api-key", KEY, "--json").stdout)
    assert as_json["ok"] is True
    assert [c["name"] for c in as_json["checks"]] == CHECKS


def test_without_the_key_the_guarded_checks_fail_readably(
    live: tuple[str, dict[str, str]],
) -> None:
    url, env = live
    done = _verify(env, "--url", url, "--json")
    assert done.returncode == 1
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    assert all(checks[name]["ok"] for name in ("health", "live", "ready"))
    for name in ("deep report", "circuits", "mcp", "stream"):
        assert not checks[name]["ok"], name
    assert "401" in checks["circuits"]["detail"]
    assert "Traceback" not in done.stdout + done.stderr


def test_nothing_listening_fails_every_check(tmp_path: Path) -> None:
    done = _verify(_env(tmp_path), "--url", f"http://127.0.0.1:{free_port()}", "--timeout", "3")
    assert done.returncode == 1
    assert done.stdout.count("FAIL") == len(CHECKS)
    assert f"verify: 0/{len(CHECKS)} checks passed" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_bad_url_is_a_usage_error(tmp_path: Path) -> None:
    done = _verify(_env(tmp_path), "--url", "dev3000:3001")
    assert done.returncode == 2
    assert "http(s) URL" in done.stderr


def test_the_summary_form_is_checked_too() -> None:
    """Where details are hidden (production) the report's checks are summaries: still
    checked, so a summary with a status outside the schema fails."""
    from dev3000.verify import _check_deep

    summary = {
        "status": "degraded",
        "timestamp": "2026-01-01T00:00:00Z",
        "service": "dev3000",
        "version": "0.1.0",
        "environment": "production",
        "uptime_seconds": 3.0,
        "metrics": {},
        "checks": {
            "database": {"status": "healthy"},
            "redis": {"status": "healthy"},
            "external_apis": {"openai": {"status": "healthy"}},
            "observability": {"logfire": {"status": "healthy"}, "sentry": {"status": "healthy"}},
            "targets": {"backend": {"status": "degraded", "reasons": [{"category": "slow"}]}},
        },
    }
    ok, detail = _check_deep(summary)
    assert ok, detail
    assert "details hidden" in detail
    summary["checks"]["targets"]["backend"]["status"] = "on fire"  # type: ignore[index]
    ok, detail = _check_deep(summary)
    assert not ok
    assert "checks.targets.backend" in detail
    del summary["timestamp"]
    with pytest.raises(ValueError, match="timestamp"):
        _check_deep(summary)
