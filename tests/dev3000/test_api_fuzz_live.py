"""Schemathesis against a live ``dev3000 serve`` with auth on: no 5xx but the documented ones.

The server is a real process (auth required, a read and a control key, circuit control on,
a small search budget); every operation of ``/openapi.json`` is called with generated valid
and invalid input and the control key. A 5xx passes only where the operation documents that
very status (a readiness or health 503 whose body is the health report); any other 5xx, or
an error that is not a problem document, fails. Bounded: a few examples per operation and
mode, no shrinking.

Left out: adding or replacing targets (POST/PUT/PATCH ``/api/v1/targets``): each is checked at
once, and a generated URL would make the server resolve arbitrary host names (tests never
reach the internet); ``test_targets.py`` covers them.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.generation import GenerationMode

from tools.harness import ManagedProcess, free_port, wait_for_http

READ_KEY = "fuzz-read-key-0001"
CONTROL_KEY = "fuzz-control-key-0002"
EXAMPLES = 50


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("fuzz")
    logs = tmp / "logs"
    logs.mkdir()
    (logs / "app.log").write_text(
        "2026-01-22 10:00:00,000 ERROR app: order 1 failed\nINFO ok\n", encoding="utf-8"
    )
    port = free_port()
    nowhere = f"http://127.0.0.1:{free_port()}"  # refused at once: nothing listens
    env = {
        "DEV3000_DATA_DIR": str(tmp / "data"),
        "DEV3000_LOG_PATHS": str(logs),
        "DEV3000_LOG_LEVEL": "warning",
        "DEV3000_BACKEND_URL": nowhere,
        "DEV3000_AGENT_URL": nowhere,
        "DEV3000_FRONTEND_URL": nowhere,
        "DIAGNOSTIC_AUTH_REQUIRED": "true",
        "DIAGNOSTIC_API_KEYS": f"{READ_KEY}:read,{CONTROL_KEY}:read+control",
        "DIAGNOSTIC_CONTROL_ENABLED": "true",
        "DIAGNOSTIC_RATE_LIMIT": "1000000",
        "DIAGNOSTIC_SEARCH_TIME_BUDGET": "0.5",
        "HEALTH_CHECK_TIMEOUT": "1",
    }
    argv = [sys.executable, "-m", "guilde_diag.cli", "serve", "--port", str(port)]
    base = f"http://127.0.0.1:{port}"
    log = (tmp / "serve.log").open("wb")
    with ManagedProcess(argv, env=env, cwd=tmp, stdout=log, stderr=log):
        wait_for_http(base + "/api/v1/health/ready", timeout=60, status=200)
        yield base
    log.close()


@pytest.fixture(scope="module")
def live_schema(live: str) -> Any:
    schema = schemathesis.openapi.from_url(live + "/openapi.json")
    # valid and invalid input; the key is sent by the test, never generated
    schema.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], with_security_parameters=False
    )
    return schema.exclude(path_regex=r"^/api/v1/targets(/bulk)?$", method="POST").exclude(
        path_regex=r"^/api/v1/targets/\{name\}$", method=["PUT", "PATCH"]
    )


schema = schemathesis.pytest.from_fixture("live_schema")
SESSION = requests.Session()
SESSION.trust_env = False  # never a proxy: the server is on loopback


@pytest.mark.timeout(600)
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_undocumented_5xx_with_auth_on(case: Any) -> None:
    response = case.call(session=SESSION, headers={"X-API-Key": CONTROL_KEY}, timeout=30)
    status = response.status_code
    where = f"{case.method} {case.formatted_path} {case.query or ''} -> {status}"
    documented = str(status) in (case.operation.definition.raw.get("responses") or {})
    assert status < 500 or documented, f"{where}: {response.text[:300]}"
    content_type = (response.headers.get("content-type") or [""])[0]  # header: its values
    if 400 <= status < 500:
        assert content_type.startswith("application/problem+json"), where


def test_openapi_declares_the_key_schemes_and_the_decision_still_applies(live: str) -> None:
    spec = requests.get(live + "/openapi.json", timeout=10).json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": schemes["ApiKey"]["description"],
    }
    assert schemes["Bearer"]["scheme"] == "bearer"
    timeline = spec["paths"]["/api/v1/timeline"]["get"]
    assert {"ApiKey": []} in timeline["security"]
    assert {"Bearer": []} in timeline["security"]
    control = spec["paths"]["/api/v1/diag/circuits/{name}/{action}"]["post"]
    assert {"ApiKey": []} in control["security"]
    assert "security" not in spec["paths"]["/api/v1/health/live"]["get"]
    # the target URL rules are stated
    url = spec["components"]["schemas"]["TargetCreate"]["properties"]["url"]
    assert url["pattern"].startswith("^(https?|tcp")
    assert "postgresql" in url["description"]
    # declaring the schemes changed no answer: the one decision still decides
    get = requests.Session()
    get.trust_env = False
    assert get.get(live + "/api/v1/timeline", timeout=10).status_code == 401
    assert (
        get.get(
            live + "/api/v1/timeline", headers={"Authorization": f"Bearer {READ_KEY}"}, timeout=10
        ).status_code
        == 200
    )
    refused = get.post(
        live + "/api/v1/diag/circuits/openai/open",
        json={"reason": "test"},
        headers={"X-API-Key": READ_KEY},
        timeout=10,
    )
    assert refused.status_code == 403
