"""Secrets are masked where the text is made (breaker, retry, timeline events), before it is
cut or normalised, with no help from the process-wide log redaction."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from guilde_core.config import Settings
from guilde_core.errors import ServiceUnavailableError
from guilde_core.events import make_event
from guilde_core.resilience import BreakerRegistry, add_retry_hook, resilient_call
from tests.core.conftest import FakeTime, small_config
from tests.planted import leaks, one_of_each

SECRETS = one_of_each()
DSN = next(p for p in SECRETS if p.kind == "dsn")
#: an error text cut at 300 characters ("ServiceUnavailableError: " + text) in the middle of
#: the DSN's password: cut first, the password's start no longer looks like a URL credential
LONG_ERROR = "x" * 245 + " " + DSN.text + " " + " ".join(p.text for p in SECRETS)


@pytest.fixture(autouse=True)
def _plain_record_factory() -> Any:
    """No process-wide redaction (another test may have installed it): the sources alone."""
    previous = logging.getLogRecordFactory()
    logging.setLogRecordFactory(logging.LogRecord)
    yield
    logging.setLogRecordFactory(previous)


def _captured(caplog: pytest.LogCaptureFixture) -> str:
    """Every record as its handler would print it (no process-wide factory installed)."""
    formatter = logging.Formatter("%(levelname)s %(name)s: %(message)s")
    return "\n".join(formatter.format(r) for r in caplog.records)


def test_breaker_transitions_last_error_and_control_reasons_are_redacted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def down() -> str:
        raise ServiceUnavailableError(LONG_ERROR)

    async def run() -> tuple[Any, list[Any], Any]:
        reg = BreakerRegistry(settings=Settings())
        seen: list[Any] = []
        reg.subscribe(seen.append)
        brk = reg.breaker("payments", small_config(recovery_timeout=30))
        for _ in range(3):
            with pytest.raises(ServiceUnavailableError):
                await brk.call(down)
        snap = await reg.snapshot("payments")
        reason = "rotating " + SECRETS[0].text + "\nCRITICAL root: forged"
        forced = await reg.force_open("payments", reason=reason)
        await reg.aclose()
        return snap, seen, forced

    with caplog.at_level(logging.DEBUG):
        snap, transitions, forced = asyncio.run(run())
    text = _captured(caplog)
    assert "closed -> open" in text
    assert leaks(text, SECRETS) == []
    assert leaks(str(snap.last_error), SECRETS) == []
    assert leaks(" ".join(str(t.reason) for t in transitions), SECRETS) == []
    assert leaks(str(forced), SECRETS) == []
    # a control reason is one line: it cannot add a line to the log
    manual = [r.getMessage() for r in caplog.records if "[manual]" in r.getMessage()]
    assert manual
    assert all("\n" not in line for line in manual)
    assert "\\nCRITICAL root: forged" in manual[0]


def test_retry_events_and_lines_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeTime()
    reg = BreakerRegistry(settings=Settings(retry_budget_enabled=False, dead_letter_enabled=False))
    events: list[Any] = []
    remove = add_retry_hook(events.append)
    outcomes: list[Any] = [ServiceUnavailableError(LONG_ERROR), "ok"]

    async def attempt(timeout: float | None) -> str:
        item = outcomes.pop(0)
        if isinstance(item, BaseException):
            raise item
        return str(item)

    try:
        with caplog.at_level(logging.DEBUG):
            result = asyncio.run(
                resilient_call("api", attempt, registry=reg, clock=fake.clock, sleep=fake.sleep)
            )
    finally:
        remove()
    assert result == "ok"
    assert events
    assert leaks(" ".join(e.error for e in events), SECRETS) == []
    assert "retrying api" in _captured(caplog)
    assert leaks(_captured(caplog), SECRETS) == []


def test_timeline_events_are_redacted_and_single_line() -> None:
    text = "\n".join(p.text for p in SECRETS)
    event = make_event(
        source="test",
        kind="notice",
        subject="svc\nforged subject " + SECRETS[1].text,
        summary="first line\r\nINFO forged " + text,
        data={"detail": text},
    )
    dumped = event.model_dump_json()
    assert leaks(dumped, SECRETS) == []
    assert "\n" not in event.summary
    assert "\n" not in event.subject
    assert event.summary.startswith("first line\\r\\nINFO forged")


def test_a_mask_further_on_hides_nothing_before_it() -> None:
    from guilde_core.redaction import MASK, redact_text

    text = "/app/cookie=" + DSN.secret + "/view?token=" + MASK
    assert DSN.secret not in redact_text(text)
    assert redact_text("password=" + MASK) == "password=" + MASK  # masked once, not twice


def test_browser_texts_and_urls_are_redacted_before_they_are_cut() -> None:
    from servers.browser.scrub import clean_text, scrub_url

    for p in SECRETS:
        for limit in (20, 40, 60):
            straddling = "y" * (limit - len(p.text) // 2) + " " + p.text + " tail"
            assert leaks(clean_text(straddling, limit), [p]) == [], (p.kind, limit)
    jwt = next(p for p in SECRETS if p.kind == "jwt")
    long_path = "http://127.0.0.1:1/" + "p" * 470 + "/" + jwt.text + "/end"
    assert leaks(scrub_url(long_path) or "", [jwt]) == []
