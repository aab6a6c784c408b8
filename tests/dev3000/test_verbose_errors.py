"""DIAGNOSTIC_VERBOSE: an internal error's problem document names the exception (redacted)
when it is on, and only the request id when it is off (the production value)."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.dev3000.conftest import AppFactory

SECRET = "sk-live-abcdefghijklmnopqrstuvwxyz0123"


def _with_failing_route(app: FastAPI) -> FastAPI:
    async def boom() -> None:
        raise RuntimeError(f"pool exhausted while calling with api_key={SECRET}")

    app.add_api_route("/api/v1/boom", boom)
    return app


@pytest.mark.parametrize("verbose", [True, False])
def test_internal_error_problem_follows_diagnostic_verbose(
    verbose: bool, make_app: AppFactory
) -> None:
    app = _with_failing_route(make_app(diagnostic_verbose=verbose))
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/api/v1/boom")
    assert response.status_code == 500
    body = response.json()
    assert body["type"].endswith("internal")
    assert body["request_id"]
    assert SECRET not in response.text
    if verbose:
        assert body["exception"].startswith("RuntimeError: pool exhausted")
    else:
        assert "exception" not in body
        assert "pool exhausted" not in response.text
