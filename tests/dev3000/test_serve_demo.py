"""The dev3000 component for ``dev3000 demo``: pointed at the demo's parts, and it serves."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import httpx

from servers.browser.capture import find_chromium
from tools.demo import DemoOptions, dev3000_component
from tools.harness import ManagedProcess, ServerThread, wait_for_http, wait_until


def test_component_serves_pointed_at_the_demo_stack(
    tmp_path: Path, stack_service: ServerThread
) -> None:
    options = DemoOptions(
        logs_dir=tmp_path / "logs", data_dir=tmp_path / "data", token_file=tmp_path / "token"
    )
    (tmp_path / "logs").mkdir()
    started = {
        "sandbox": SimpleNamespace(url=stack_service.url),
        "fakellm": SimpleNamespace(url="http://127.0.0.1:9"),
    }
    component = dev3000_component(options, started)
    assert component is not None
    assert dev3000_component(DemoOptions(dev3000=False), started) is None
    assert component.env["DEV3000_BACKEND_URL"] == stack_service.url
    assert component.env["DEV3000_LOG_PATHS"] == str(tmp_path / "logs")
    assert component.env["DEV3000_DATA_DIR"] == str(tmp_path / "data" / "dev3000")
    assert component.env["OPENAI_BASE_URL"] == "http://127.0.0.1:9/v1"
    assert component.env["OPENAI_API_KEY"] == options.upstream_key
    hints = " ".join(component.hints)
    assert "/mcp" in hints
    assert "/api/v1/diag/stream" in hints
    with ManagedProcess(component.argv, env=component.env, cwd=tmp_path) as proc:
        wait_for_http(component.url + component.health_path, timeout=60, status=200)
        deep = httpx.get(component.url + "/api/v1/health/deep", timeout=30).json()
        if find_chromium() is not None:  # the capture watches the demo's frontend
            assert component.env["DEV3000_BROWSER_URL"] == stack_service.url + "/app"

            def watching() -> bool:
                status = httpx.get(component.url + "/api/v1/browser/status", timeout=10)
                return bool(status.json()["state"] == "running")

            wait_until(watching, timeout=60)
        assert proc.alive()
    assert deep["status"] in ("healthy", "degraded")  # the critical backend (sandbox) is up
    assert options.upstream_key not in str(deep)
