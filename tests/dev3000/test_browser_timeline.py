"""The /timeline page in headless Chromium: a new event appears after the page loaded."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from guilde_core.events import make_event
from tools.harness import ManagedProcess, free_port, wait_until

from .conftest import StreamFactory

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


class DevTools:
    """The few DevTools-protocol calls the test needs, over the page's websocket."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        msg_id = next(self.ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self.ws.recv(timeout=15))
            if reply.get("id") == msg_id:
                assert "error" not in reply, reply
                result: dict[str, Any] = reply["result"]
                return result

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")


@pytest.fixture
def browser() -> Iterator[DevTools]:
    if not shutil.which(CHROMIUM):
        pytest.skip("chromium is not installed (.ci/run installs it: apt-get install chromium)")
    port = free_port()
    profile = tempfile.mkdtemp(prefix="d2-chromium-")
    argv = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-background-networking",
        "--disable-gpu", "--no-first-run", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", f"--remote-debugging-port={port}",
        "--remote-debugging-address=127.0.0.1", "about:blank",
    ]  # fmt: skip
    process = ManagedProcess(argv, stderr=subprocess.DEVNULL).start()
    try:

        def page_ws() -> str | None:
            pages = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=2).json()
            urls = [p["webSocketDebuggerUrl"] for p in pages if p.get("type") == "page"]
            return urls[0] if urls else None

        wait_until(lambda: page_ws() is not None, timeout=30, interval=0.1)
        url = page_ws()
        assert url is not None
        with connect(url, open_timeout=10, proxy=None, max_size=2**24) as ws:
            tools = DevTools(ws)
            tools.call("Page.enable")
            yield tools
    finally:
        process.stop()
        shutil.rmtree(profile, ignore_errors=True)


def test_timeline_page_shows_new_events_live_with_filters(
    stream_server: StreamFactory, browser: DevTools
) -> None:
    srv = stream_server()
    old = make_event(source="health", kind="health_transition", severity="error",
                     subject="redis", summary="redis: healthy → unhealthy")  # fmt: skip
    srv.bus.publish(old)
    browser.call("Page.navigate", url=f"{srv.url}/timeline?severity=warning")

    def rows() -> list[str]:
        value = browser.evaluate(
            "Array.from(document.querySelectorAll('#events tr[data-id]')).map(r => r.dataset.id)"
        )
        return list(value or [])

    wait_until(lambda: browser.evaluate("document.body && document.body.dataset.stream") == "open",
               timeout=20, interval=0.1)  # fmt: skip
    assert rows() == [old.id]  # rendered by the server
    quiet = make_event(source="test", kind="notice", severity="info", subject="x",
                       summary="below the page's severity filter")  # fmt: skip
    new = make_event(source="circuits", kind="circuit_transition", severity="error",
                     subject="openai", summary="openai: closed → open <b>not html</b>")  # fmt: skip
    srv.bus.publish(quiet)
    srv.bus.publish(new)
    wait_until(lambda: new.id in rows(), timeout=20, interval=0.1)
    assert rows() == [new.id, old.id]  # newest first; the info event was filtered out
    summary = browser.evaluate(
        f"document.querySelector('tr[data-id=\"{new.id}\"] td:last-child').textContent"
    )
    assert summary == "openai: closed → open <b>not html</b>"  # text, never markup
    assert browser.evaluate("document.querySelector('#events b')") is None
    selected = browser.evaluate("document.querySelector('select[name=severity]').value")
    assert selected == "warning"
