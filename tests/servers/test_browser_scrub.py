"""What the browser capture keeps of URLs and texts, its configuration, and a capture that
cannot find a Chromium (a typed failure, no retry loop)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from guilde_core.config import Settings
from guilde_core.errors import ConfigurationError, ServiceUnavailableError
from guilde_core.events import TimelineEvent
from guilde_core.http.authz import Caller, Posture, Principal, authorize_control
from guilde_core.http.hosts import origin_of
from servers.browser import logic
from servers.browser.capture import BrowserCapture, CaptureConfig, find_chromium
from servers.browser.scrub import clean_text, scrub_url


def test_urls_keep_no_credentials_query_tokens_or_secret_fragments() -> None:
    url = "https://user:hunter2@shop.example:8443/api/v1/orders?limit=20&access_token=abc&q=a%20b#/orders"
    assert scrub_url(url) == (
        "https://shop.example:8443/api/v1/orders?limit=20&access_token=***REDACTED***&"
        "q=***REDACTED***#/orders"
    )
    long_plain = scrub_url("http://h/p?t=0123456789abcdef0123")
    assert long_plain == "http://h/p?t=***REDACTED***"  # a long value may be a token
    assert scrub_url("http://h/cb#access_token=eyJraWQ") == "http://h/cb#***REDACTED***"
    assert scrub_url("data:text/html,<script>x</script>") == "data:…"
    assert scrub_url(None) is None


def test_texts_are_bounded_and_redacted() -> None:
    text = "failed: GET http://h/x?api_key=s3cr3tvalue Authorization: Bearer abcdefghijklmnop"
    cleaned = clean_text(text)
    assert "s3cr3tvalue" not in cleaned
    assert "abcdefghijklmnop" not in cleaned
    assert clean_text("x" * 5000, 100).endswith("[4900 more]")


def test_origins() -> None:
    assert origin_of("HTTP://Shop.Example:8080/a") == "http://shop.example:8080"
    assert origin_of("ftp://x/") is None
    with pytest.raises(ConfigurationError, match="DEV3000_BROWSER_URL"):
        CaptureConfig(url="not a url")
    settings = Settings(dev3000_backend_url="http://127.0.0.1:8000")
    config = CaptureConfig.from_settings(settings, url="http://127.0.0.1:3000/app")
    assert config.origins == ("http://127.0.0.1:3000", "http://127.0.0.1:8000")
    with pytest.raises(ConfigurationError, match="DEV3000_BROWSER_URL"):
        CaptureConfig.from_settings(settings)


def test_page_actions_pass_the_one_gate() -> None:
    """A page action asks the one decision (here with no capture running: the refusal
    comes before the missing capture)."""
    off, on = Posture(), Posture(control_enabled=True)
    with pytest.raises(Exception, match="DIAGNOSTIC_CONTROL_ENABLED"):
        asyncio.run(logic.page_action(None, Caller.local(off), "reload", "because"))
    reader = Caller(Principal("abcd1234", frozenset({"read"})), "mcp", on)
    with pytest.raises(Exception, match="'control' scope"):
        asyncio.run(logic.page_action(None, reader, "reload", "because"))
    with pytest.raises(Exception, match="reason"):
        authorize_control(Caller.local(on), " ")
    admin = Caller(Principal("abcd1234", frozenset({"read", "control"})), "mcp", on)
    assert authorize_control(admin, " why ") == "why"
    with pytest.raises(ServiceUnavailableError, match="no browser capture"):
        asyncio.run(logic.page_action(None, admin, "reload", "because"))


def test_missing_chromium_is_one_error_event_and_no_restart_loop(tmp_path: Path) -> None:
    assert find_chromium(str(tmp_path / "no-such-chromium")) is None
    events: list[TimelineEvent] = []

    async def run() -> BrowserCapture:
        capture = BrowserCapture(
            CaptureConfig(
                url="http://127.0.0.1:9/app",
                executable=str(tmp_path / "no-such-chromium"),
                log_dir=tmp_path,
                initial_backoff=0.01,
            ),
            sink=events.append,
        )
        capture.start()
        with pytest.raises(ServiceUnavailableError, match="no Chromium found"):
            await capture.wait_running(1.0)
        with pytest.raises(ServiceUnavailableError):
            await logic.take_screenshot(capture)
        await capture.stop()
        return capture

    capture = asyncio.run(run())
    assert capture.launches == 0
    assert [e.kind for e in events] == ["browser_lifecycle"]
    assert events[0].severity == "error"
    assert "DEV3000_BROWSER_EXECUTABLE" in events[0].summary
    assert (tmp_path / "browser" / "browser.jsonl").read_text().count("no Chromium found") == 1


def test_page_status_without_a_capture_is_off() -> None:
    status = asyncio.run(logic.page_status(None))
    assert status.state == "off"
    with pytest.raises(ServiceUnavailableError, match="--browser"):
        asyncio.run(logic.recent_errors(None))
