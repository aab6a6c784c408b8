"""Schemathesis over ``/openapi.json``: every read operation answers as documented.

Runs in-process against the ASGI app with bounded examples. Mutating operations (targets,
circuit control) are covered by their own tests: generated target URLs would make the
immediate check resolve arbitrary host names, and these tests never reach the internet.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from dev3000.app import create_app
from guilde_core.config import Settings

_DATA = tempfile.mkdtemp(prefix="dev3000-schema-")
APP = create_app(
    Settings(
        dev3000_data_dir=_DATA,
        dev3000_log_paths=[_DATA + "/logs"],
        diagnostic_rate_limit=1_000_000,
        health_check_cache_ttl=60,
        dev3000_allowed_hosts=["testserver"],  # the in-process client's Host
    ),
    mcp=False,
    timeline_sources=False,
)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP).include(method="GET")


@pytest.fixture(scope="module", autouse=True)
def _lifespan() -> Iterator[None]:
    from fastapi.testclient import TestClient

    with TestClient(APP):
        yield
    shutil.rmtree(_DATA, ignore_errors=True)


@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_read_operations_conform(case: Any) -> None:
    response = case.call(headers={"X-Request-ID": "schemathesis"})
    case.validate_response(
        response,
        checks=[
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
            response_headers_conformance,
        ],
    )
    headers = {k.lower(): v[0] for k, v in response.headers.items()}
    assert headers["x-request-id"] == "schemathesis"
    assert response.status_code != 500, response.text
    status_body = case.operation.path.startswith("/api/v1/health") or (
        case.operation.path == "/api/v1/diag/status" and response.status_code == 503
    )
    if response.status_code >= 400 and not status_body:
        # health and status bodies keep their own shape with 503; other errors are problems
        assert headers["content-type"].startswith("application/problem+json")
