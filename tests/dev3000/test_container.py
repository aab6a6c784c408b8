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
