"""The production posture as shipped: dev3000 and agent-web run with the production overlay's
ConfigMap and the Secret's key arrangement (``deploy/k8s/secrets.example.env``), both read
from the files, and an agent question is answered end to end.

Only addresses change (this machine has no ``redis``, ``app`` or ``dev3000`` hosts and no
``/data``): bind address and ports, directories, and the URLs of Redis and the stack. Every
other ConfigMap value reaches the processes as the overlay writes it."""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from string import Template
from typing import Any

import httpx
import pytest
from dotenv import dotenv_values
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from guilde_core.config import PROFILES, Settings
from tests.docs.kustomize_lite import build
from tools.harness import ManagedProcess, PrivateRedis, ServerThread, free_port, wait_for_http

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
SECRETS = K8S / "secrets.example.env"
BIN = Path(sys.executable).parent

#: what a laptop cannot take from the overlay as written: where things listen and live
ADDRESSES = {
    "DEV3000_HOST",
    "DEV3000_PORT",
    "DEV3000_DATA_DIR",
    "DEV3000_LOG_PATHS",
    "DEV3000_BACKEND_URL",
    "DEV3000_AGENT_URL",
    "DEV3000_FRONTEND_URL",
    "REDIS_URL",
    "CIRCUIT_BREAKER_REDIS_URL",
}


def _production() -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["kind"], r["metadata"]["name"]): r for r in build(K8S / "overlays" / "production")}


def _args(resources: dict[tuple[str, str], dict[str, Any]], app: str) -> list[str]:
    args: list[str] = resources[("Deployment", app)]["spec"]["template"]["spec"]["containers"][0][
        "args"
    ]
    return list(args)


def _replace_option(args: list[str], option: str, value: str) -> list[str]:
    out = list(args)
    out[out.index(option) + 1] = value
    return out


def _own_environment() -> dict[str, str]:
    """This process's environment without any guilde-diag setting (the overlay decides)."""
    fields = {name.upper() for name in Settings.model_fields}
    families = ("CB_", "RETRY_", "TIMEOUT_", "CLIENT_RATE_LIMIT_", "DEV3000_", "DIAGNOSTIC_")
    return {
        k: v
        for k, v in os.environ.items()
        if k.upper() not in fields and not k.startswith(families)
    }


def _stack_app() -> Starlette:
    """The watched service: up, but its database dependency reports failure."""

    async def health(_: Request) -> Response:
        return JSONResponse(
            {"status": "unhealthy", "checks": {"database": {"status": "unhealthy"}}},
            status_code=503,
        )

    async def ok(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[Route("/health", health), Route("/api/v1/health", health), Route("/", ok)]
    )


@pytest.fixture
def stack() -> Iterator[str]:
    with ServerThread(_stack_app()) as server:
        yield server.url


def test_the_production_overlay_and_profile_agree_on_the_posture() -> None:
    """Every surface on behind required keys; control needs a key (and MCP the switch)."""
    data = _production()[("ConfigMap", "guilde-diag-config")]["data"]
    profile = PROFILES["production"]
    for name in (
        "DIAGNOSTIC_MODE",
        "DEV3000_ENABLED",
        "DIAGNOSTIC_AUTH_REQUIRED",
        "DIAGNOSTIC_CONTROL_ENABLED",
    ):
        assert data[name] == profile[name], name
    assert (data["DIAGNOSTIC_MODE"], data["DEV3000_ENABLED"]) == ("true", "true")
    assert data["DIAGNOSTIC_AUTH_REQUIRED"] == "true"
    assert data["DIAGNOSTIC_CONTROL_ENABLED"] == "false"
    assert data["HEALTH_CHECK_INCLUDE_DETAILS"] == "false"


def test_production_as_shipped_answers_an_agent_question(
    tmp_path: Path, stack: str, pg_dsn: str, pg_schema: str
) -> None:
    resources = _production()
    config: dict[str, str] = dict(resources[("ConfigMap", "guilde-diag-config")]["data"])
    assert config["DEV3000_MODE"] == "production"

    oncall_key, agent_key = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    sep = "&" if "?" in pg_dsn else "?"
    lines = SECRETS.read_text(encoding="utf-8").splitlines()
    assignments = "\n".join(line for line in lines if line and not line.startswith("#"))
    filled = Template(assignments).substitute(
        ONCALL_KEY_SHA256=hashlib.sha256(oncall_key.encode()).hexdigest(),
        AGENT_WEB_KEY_SHA256=hashlib.sha256(agent_key.encode()).hexdigest(),
        AGENT_WEB_KEY=agent_key,
        AGENT_CHECKPOINT_URL=f"{pg_dsn}{sep}options=-c%20search_path%3D{pg_schema}",
        DATABASE_URL=pg_dsn,
    )
    secret = {k: v for k, v in dotenv_values(stream=io.StringIO(filled)).items() if v}
    assert oncall_key not in secret["DIAGNOSTIC_API_KEYS"], "keys are stored as digests"

    dev_port, web_port = free_port(), free_port()
    with PrivateRedis() as redis:
        local = {
            "DEV3000_HOST": "127.0.0.1",
            "DEV3000_PORT": str(dev_port),
            "DEV3000_DATA_DIR": str(tmp_path / "data"),
            "DEV3000_LOG_PATHS": str(tmp_path / "logs"),
            "DEV3000_BACKEND_URL": stack,
            "DEV3000_AGENT_URL": f"http://127.0.0.1:{web_port}",
            "DEV3000_FRONTEND_URL": "",
            "REDIS_URL": redis.url,
            "CIRCUIT_BREAKER_REDIS_URL": redis.url,
        }
        assert set(local) == ADDRESSES
        (tmp_path / "logs").mkdir()
        env = {
            **_own_environment(),
            **config,
            **secret,
            **local,
            "DEV3000_ENV_FILE": str(tmp_path / "no.env"),
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        for key, value in config.items():  # nothing but the addresses differs
            assert key in ADDRESSES or env[key] == value, key

        serve = [str(BIN / "dev3000"), *_args(resources, "dev3000")]
        web_args = _args(resources, "agent-web")
        web_args = _replace_option(web_args, "--host", "127.0.0.1")
        web_args = _replace_option(web_args, "--port", str(web_port))
        web_args = _replace_option(web_args, "--url", f"http://127.0.0.1:{dev_port}/mcp")
        dev_log = (tmp_path / "dev3000.log").open("wb")
        web_log = (tmp_path / "agent-web.log").open("wb")
        check = ManagedProcess(
            [str(BIN / "dev3000"), "config", "check"], env=env, cwd=tmp_path, stdout=dev_log
        )
        with check:
            assert check.proc is not None
            assert check.proc.wait(60) == 0, "config check refuses the production overlay"
        with (
            ManagedProcess(serve, env=env, cwd=tmp_path, stdout=dev_log, stderr=dev_log),
            ManagedProcess(
                [str(BIN / "dev3000"), *web_args],
                env=env,
                cwd=tmp_path,
                stdout=web_log,
                stderr=web_log,
            ),
        ):
            dev = f"http://127.0.0.1:{dev_port}"
            web = f"http://127.0.0.1:{web_port}"
            wait_for_http(f"{dev}/api/v1/health/ready", timeout=90, status=200)
            wait_for_http(f"{web}/health", timeout=90, status=200)
            try:
                # the post-deploy checks the deploy docs prescribe pass as shipped
                verified = subprocess.run(
                    [str(BIN / "dev3000"), "verify", "--url", dev, "--api-key", oncall_key],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=120,
                    check=False,
                )
                assert verified.returncode == 0, verified.stdout + verified.stderr
                _check_posture(dev, web, oncall_key=oncall_key, agent_key=agent_key)
                # and `dev3000 ask` in a pod: DEV3000_HOST/PORT name the server, the Secret's
                # DEV3000_API_KEY (agent-web's read key) authenticates
                asked = subprocess.run(
                    [str(BIN / "dev3000"), "ask", "why is the backend unhealthy?", "--json"],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=180,
                    check=False,
                )
                assert asked.returncode == 0, asked.stdout[-2000:] + asked.stderr[-2000:]
                assert json.loads(asked.stdout)["root_cause"]["component"]
                dev_log.flush()
                started = (tmp_path / "dev3000.log").read_text(errors="replace")
                assert "set-up failed" not in started, "observability refused the overlay"
            except AssertionError:
                dev_log.flush()
                web_log.flush()
                print((tmp_path / "dev3000.log").read_text(errors="replace")[-4000:])
                print((tmp_path / "agent-web.log").read_text(errors="replace")[-4000:])
                raise


def _check_posture(dev: str, web: str, *, oncall_key: str, agent_key: str) -> None:
    oncall = {"X-API-Key": oncall_key}
    agent = {"X-API-Key": agent_key}
    with httpx.Client(timeout=120) as http:
        # every surface is on, and every one needs a key
        for path in ("/api/v1/diag/circuits", "/api/v1/timeline", "/api/v1/targets"):
            assert http.get(dev + path).status_code == 401, path
            assert http.get(dev + path, headers=agent).status_code == 200, path
        initialize = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "posture-test", "version": "1"},
            },
        }
        mcp_headers = {"Accept": "application/json, text/event-stream"}
        assert http.post(dev + "/mcp", json=initialize, headers=mcp_headers).status_code == 401
        opened = http.post(dev + "/mcp", json=initialize, headers={**mcp_headers, **agent})
        assert opened.status_code == 200, opened.text
        # control: agent-web's read key may not; the on-call key may, with a reason
        body = {"reason": "posture drill"}
        refused = http.post(dev + "/api/v1/diag/circuits/openai/open", json=body, headers=agent)
        assert refused.status_code == 403, refused.text
        done = http.post(dev + "/api/v1/diag/circuits/openai/open", json=body, headers=oncall)
        assert done.status_code == 200, done.text
        reset = http.post(dev + "/api/v1/diag/circuits/openai/reset", json=body, headers=oncall)
        assert reset.status_code == 200, reset.text
        # no health details in production
        deep = http.get(dev + "/api/v1/health/deep", headers=agent).json()
        assert "diagnostics" not in deep

        # the agent question, through agent-web, as the on-call person asks it
        assert http.post(web + "/api/v1/sessions", json={"title": "x"}).status_code == 401
        created = http.post(
            web + "/api/v1/sessions", json={"title": "production check"}, headers=oncall
        )
        assert created.status_code == 201, created.text
        answer = http.post(
            web + created.headers["Location"] + "/messages",
            params={"wait": "true"},
            json={"content": "why is the backend unhealthy?"},
            headers=oncall,
        )
        assert answer.status_code == 200, answer.text
        diagnosis = answer.json()
        assert diagnosis["evidence"], diagnosis
        assert diagnosis["root_cause"]["component"], diagnosis
        failed = [e for e in diagnosis["evidence"] if e["error"]]
        assert not failed, f"tool calls refused or failed in production: {failed}"
        assert {e["tool"].split("_")[0] for e in diagnosis["evidence"]} >= {"health"}
