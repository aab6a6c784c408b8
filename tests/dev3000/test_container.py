"""Container files without a Docker engine: hadolint on ``Dockerfile.dev3000``, the
compose overlay against the Compose Specification schema, and the image's exact
ENTRYPOINT + CMD (and HEALTHCHECK) run outside a container."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml

from tools.harness import ManagedProcess, free_port, wait_for_http

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile.dev3000"
COMPOSE = ROOT / "docker-compose.diagnostic.yml"
SCHEMA = Path(__file__).parent / "data" / "compose-spec.json"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined."""
    out: list[tuple[str, str]] = []
    buffer = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        buffer += line[:-1] + " " if line.endswith("\\") else line
        if line.endswith("\\"):
            continue
        word, _, rest = buffer.partition(" ")
        out.append((word.upper(), rest.strip()))
        buffer = ""
    return out


def _runtime_stage() -> list[tuple[str, str]]:
    stages: list[list[tuple[str, str]]] = []
    for ins in _instructions():
        if ins[0] == "FROM":
            stages.append([])
        stages[-1].append(ins)
    return stages[-1]


def _exec_form(stage: list[tuple[str, str]], name: str) -> list[str]:
    (args,) = [a for i, a in stage if i == name]
    value = json.loads(args)
    assert isinstance(value, list)
    return [str(v) for v in value]


def test_hadolint_passes() -> None:
    binary = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run(
        [binary, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_shape() -> None:
    froms = [a for i, a in _instructions() if i == "FROM"]
    assert len(froms) == 2
    assert froms[0].endswith("AS builder")
    assert any("uv sync --frozen --no-dev" in a for i, a in _instructions() if i == "RUN")
    runtime = _runtime_stage()
    (user,) = [a for i, a in runtime if i == "USER"]
    assert user.split(":")[0] not in ("0", "root")
    (health,) = [a for i, a in runtime if i == "HEALTHCHECK"]
    assert "CMD" in health
    assert "dev3000.healthcheck" in health
    assert not any(i == "RUN" and "uv " in a for i, a in runtime), "no build tools at runtime"


def test_the_image_copies_every_package_of_the_wheel() -> None:
    import tomllib

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    copied = {a.split()[0] for i, a in _instructions() if i == "COPY" and "--from" not in a}
    assert set(packages) <= copied, f"COPY missing for {sorted(set(packages) - copied)}"


def test_compose_overlay_matches_the_compose_schema() -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    jsonschema.validate(document, schema)
    services = document["services"]
    assert {"dev3000", "agent-web", "circuit-state"} <= set(services)
    assert services["dev3000"]["build"]["dockerfile"] == "Dockerfile.dev3000"
    assert "3001:3001" in services["dev3000"]["ports"]
    for name in ("dev3000", "agent-web", "circuit-state"):
        assert "healthcheck" in services[name], name
    assert "--appendonly" in services["circuit-state"]["command"]
    assert (
        services["circuit-state"]["command"][
            services["circuit-state"]["command"].index("--appendonly") + 1
        ]
        == "yes"
    )
    assert document["networks"]["diagnostic"]["name"] == "guilde_diagnostic"
    assert {"dev3000_data", "circuit_state_data"} <= set(document["volumes"])
    env = dict(e.split("=", 1) for e in services["dev3000"]["environment"])
    assert env["CIRCUIT_BREAKER_REDIS_URL"] == "redis://circuit-state:6379/0"


def test_schema_rejects_a_broken_compose_file() -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    bad = {"services": {"dev3000": {"ports": "3001:3001", "healthcheck": {"retries": "x"}}}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_image_entrypoint_runs_outside_a_container(tmp_path: Path) -> None:
    runtime = _runtime_stage()
    argv = _exec_form(runtime, "ENTRYPOINT") + _exec_form(runtime, "CMD")
    (health,) = [a for i, a in runtime if i == "HEALTHCHECK"]
    health_argv = json.loads(health.split("CMD", 1)[1].strip())
    image_env: dict[str, str] = {}
    for instruction, args in runtime:
        if instruction == "ENV":
            for pair in args.split():
                key, _, value = pair.partition("=")
                image_env[key] = value.strip('"')
    port = free_port()
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **{k: v for k, v in image_env.items() if k.startswith(("DEV3000_", "PYTHON"))},
        # what `docker run -e …` would override on this machine
        "DEV3000_HOST": "127.0.0.1",
        "DEV3000_PORT": str(port),
        "DEV3000_DATA_DIR": str(tmp_path / "data"),
        "DEV3000_LOG_PATHS": str(tmp_path / "logs"),
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
    }
    assert argv[0] == "dev3000"
    log = (tmp_path / "out.log").open("wb")
    with ManagedProcess(argv, env=env, cwd=tmp_path, stdout=log, stderr=log) as proc:
        wait_for_http(f"http://127.0.0.1:{port}/health", timeout=60, status=200)
        check = subprocess.run(
            [sys.executable if health_argv[0] == "python" else health_argv[0], *health_argv[1:]],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert check.returncode == 0, check.stdout + check.stderr
        assert proc.alive()
    log.close()
    dead = subprocess.run(
        [sys.executable, *health_argv[1:]],
        env={**os.environ, **env, "DEV3000_PORT": str(free_port())},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert dead.returncode == 1


# --------------------------------------------------------------------------------------
# docker-compose.dev.yml: the example stack the README's compose command starts with
# --------------------------------------------------------------------------------------

DEV_COMPOSE = ROOT / "docker-compose.dev.yml"


def _compose(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return document


def _merged() -> dict[str, Any]:
    """``-f docker-compose.dev.yml -f docker-compose.diagnostic.yml`` as Compose merges the
    top-level maps (the two files name different services)."""
    dev, diag = _compose(DEV_COMPOSE), _compose(COMPOSE)
    assert not set(dev["services"]) & set(diag["services"]), "the files must not override"
    return {
        key: {**dev.get(key, {}), **diag.get(key, {})}
        for key in ("services", "networks", "volumes")
    }


def _env_list(service: dict[str, Any]) -> dict[str, str]:
    return dict(e.split("=", 1) for e in service.get("environment", []))


def test_dev_stack_completes_the_overlay() -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.validate(_compose(DEV_COMPOSE), schema)
    merged = _merged()
    services = merged["services"]
    assert {"app", "fakellm", "db", "redis"} <= set(services)
    for name, service in services.items():
        assert "healthcheck" in service, name
        for dep in service.get("depends_on", {}):
            assert dep in services, f"{name} depends on {dep}, which no file defines"
        for network in service.get("networks", []):
            assert network in merged["networks"], f"{name}: network {network} is not defined"
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if not source.startswith((".", "/")):
                assert source in merged["volumes"], f"{name}: volume {source} is not defined"
    published = [p.split(":")[0] for s in services.values() for p in s.get("ports", [])]
    assert len(published) == len(set(published)), f"a host port is published twice: {published}"
    # dev3000 diagnoses the app where the dev file serves it
    backend = _env_list(services["dev3000"])["DEV3000_BACKEND_URL"]
    app_port = services["app"]["command"][services["app"]["command"].index("--port") + 1]
    assert backend == f"http://app:{app_port}"
    assert f"{app_port}:{app_port}" in services["app"]["ports"]
    # the sandbox calls the fake LLM, and stores in db and redis, by their service names
    app_env = _env_list(services["app"])
    assert app_env["SANDBOX_LLM_BASE_URL"].startswith("http://fakellm:")
    assert "@db:" in app_env["SANDBOX_DATABASE_URL"]
    assert app_env["SANDBOX_REDIS_URL"].startswith("redis://redis:")
    # no file the checkout lacks is required: .env is optional
    for name, service in services.items():
        for entry in service.get("env_file", []):
            assert isinstance(entry, dict), (name, entry)
            assert entry["required"] is False, (name, entry)


def _local_argv(command: list[str], port: int) -> list[str]:
    """A compose ``command`` for the image's ENTRYPOINT, bound to loopback on ``port``."""
    argv = ["dev3000", *command]
    argv[argv.index("--host") + 1] = "127.0.0.1"
    argv[argv.index("--port") + 1] = str(port)
    return argv


def _healthcheck(service: dict[str, Any], port: int, env: dict[str, str]) -> int:
    test = service["healthcheck"]["test"]
    assert test[:4] == ["CMD", "python", "-m", "dev3000.healthcheck"]
    url = test[test.index("--url") + 1]
    old_port = url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1]
    done = subprocess.run(
        [sys.executable, "-m", "dev3000.healthcheck", "--url", url.replace(old_port, str(port))],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return done.returncode


def test_dev_stack_commands_run_and_pass_their_healthchecks(
    tmp_path: Path, pg_dsn: str, pg_schema: str
) -> None:
    """The sandbox and fake LLM services' exact commands, run outside a container, with the
    compose environment's service names pointed at this machine's PostgreSQL and Redis."""
    from tools.harness import PrivateRedis

    services = _compose(DEV_COMPOSE)["services"]
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "DEV3000_ENV_FILE": str(tmp_path / "none.env"),
    }
    llm_port, app_port = free_port(), free_port()
    logs = (tmp_path / "logs").open("wb")
    with PrivateRedis() as redis:
        app_env = _env_list(services["app"])
        local_names = {
            "SANDBOX_DATABASE_URL": pg_dsn,
            "SANDBOX_REDIS_URL": redis.url,
            "SANDBOX_LLM_BASE_URL": f"http://127.0.0.1:{llm_port}/v1",
            "SANDBOX_DATA_DIR": str(tmp_path / "sandbox"),
        }
        assert set(app_env) == set(local_names), "a new variable: map it here"
        app_env = {**env, **local_names, "SANDBOX_PG_SCHEMA": pg_schema}
        llm_argv = _local_argv(services["fakellm"]["command"], llm_port)
        app_argv = _local_argv(services["app"]["command"], app_port)
        app_argv[app_argv.index("--logs-dir") + 1] = str(tmp_path / "app-logs")
        with (
            ManagedProcess(llm_argv, env=env, cwd=tmp_path, stdout=logs, stderr=logs),
            ManagedProcess(app_argv, env=app_env, cwd=tmp_path, stdout=logs, stderr=logs),
        ):
            wait_for_http(f"http://127.0.0.1:{llm_port}/healthz", timeout=60)
            wait_for_http(f"http://127.0.0.1:{app_port}/health", timeout=60)
            assert _healthcheck(services["fakellm"], llm_port, env) == 0
            assert _healthcheck(services["app"], app_port, env) == 0, (tmp_path / "logs").read_text(
                errors="replace"
            )[-3000:]
    logs.close()
