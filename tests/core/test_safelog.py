"""The process-wide log redaction: every record, every logger, every level, one line each."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guilde_core.redaction import MASK
from guilde_core.safelog import clean_record, install_safe_logging
from tests.planted import Planted, leaks, one_of_each, planted_lists


@pytest.fixture
def safe_logging() -> Iterator[None]:
    """The redacting record factory for this test only (the previous one restored)."""
    previous = logging.getLogRecordFactory()
    install_safe_logging()
    try:
        yield
    finally:
        logging.setLogRecordFactory(previous)


def _capture(logger: logging.Logger, formatter: logging.Formatter | None = None) -> io.StringIO:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter or logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(secrets=planted_lists(), style=st.integers(0, 3))
def test_no_planted_secret_survives_any_record(secrets: list[Planted], style: int) -> None:
    record = logging.LogRecord("x", logging.DEBUG, __file__, 1, "", (), None)
    texts = [p.text for p in secrets]
    if style == 0:  # the whole message
        record.msg, record.args = " | ".join(texts), ()
    elif style == 1:  # arguments
        record.msg, record.args = "failed: " + " ".join(["%s"] * len(texts)), tuple(texts)
    elif style == 2:  # a secret split between the format and an argument
        record.msg, record.args = "call %s", (" ".join(texts),)
    else:  # a mapping of arguments, and an exception's text
        record.msg, record.args = "call %(what)s", {"what": " ".join(texts)}
        try:
            raise RuntimeError(" ".join(texts))
        except RuntimeError as exc:
            record.exc_info = (type(exc), exc, exc.__traceback__)
    clean_record(record)
    formatted = logging.Formatter("%(message)s").format(record)
    assert leaks(formatted, secrets) == []


def test_every_logger_at_every_level_is_redacted_once_installed(safe_logging: None) -> None:
    secrets = one_of_each()
    for name in ("uvicorn.error", "websockets.server", "guilde_core.resilience", "httpx", "x"):
        logger = logging.getLogger(name)
        out = _capture(logger)
        for level in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR):
            for p in secrets:
                logger.log(level, "value %s here", p.text)
                logger.log(level, p.text)
        try:
            raise ValueError(" ".join(p.text for p in secrets))
        except ValueError:
            logger.exception("failed")
        logger.handlers.clear()
        logger.propagate = True
        assert leaks(out.getvalue(), secrets) == [], name
        assert MASK in out.getvalue()


def test_control_characters_cannot_forge_log_lines(safe_logging: None) -> None:
    logger = logging.getLogger("guilde.test.forge")
    out = _capture(logger)
    reason = "maintenance\nCRITICAL root: forged line\r\x1b[2Kmore"
    logger.warning("circuit %s forced open (%s)", "openai", reason)
    logger.warning("plain message with\na newline")
    logger.handlers.clear()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert "\\nCRITICAL root: forged line\\r\\x1b[2Kmore" in lines[0]
    assert "\x1b" not in out.getvalue()


def test_websocket_handshake_headers_keep_names_not_values(safe_logging: None) -> None:
    logger = logging.getLogger("uvicorn.error")
    out = _capture(logger)
    logger.debug("< %s %s %s", "GET", "/api/v1/diag/stream?token=abcdefgh1234", "HTTP/1.1")
    for name, value in (
        ("host", "127.0.0.1:3001"),
        ("x-api-key", "plainkey-without-shape"),
        ("x-custom-auth", "whatever-value-1"),
        ("Cookie", "a=b"),
    ):
        logger.debug("< %s: %s", name, value)
    logger.handlers.clear()
    logger.propagate = True
    text = out.getvalue()
    assert "< host: 127.0.0.1:3001" in text
    for gone in ("plainkey-without-shape", "whatever-value-1", "a=b", "abcdefgh1234"):
        assert gone not in text
    assert "< x-custom-auth: " + MASK in text


def test_uvicorn_access_log_masks_query_tokens_and_keeps_its_fields(safe_logging: None) -> None:
    from uvicorn.logging import AccessFormatter

    logger = logging.getLogger("uvicorn.access")
    out = _capture(logger, AccessFormatter('%(client_addr)s "%(request_line)s" %(status_code)s'))
    logger.info(
        '%s - "%s %s HTTP/%s" %d',
        "127.0.0.1:5000",
        "GET",
        "/api/v1/diag/stream/sse?token=secret-token-123&replay=5",
        "1.1",
        200,
    )
    logger.handlers.clear()
    logger.propagate = True
    line = out.getvalue().strip()
    assert "secret-token-123" not in line
    assert line.startswith('127.0.0.1:5000 "GET /api/v1/diag/stream/sse?token=')
    assert line.endswith(" 200 OK")  # the formatter read its fields from record.args


def test_the_dev3000_command_installs_it_before_any_subcommand_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from guilde_diag import cli

    previous = logging.getLogRecordFactory()
    logging.setLogRecordFactory(logging.LogRecord)
    monkeypatch.setattr("sys.argv", ["dev3000", "--version"])
    try:
        with pytest.raises(SystemExit):
            cli.main()
        installed = logging.getLogRecordFactory()
        assert getattr(installed, "guilde_safe", False)
        install_safe_logging()  # twice: still the one wrapper
        assert logging.getLogRecordFactory() is installed
        record = logging.getLogRecordFactory()(
            "x", logging.INFO, "", 1, "k=%s", ("sk-" + "a1" * 9,), None
        )
        assert record.getMessage() == "k=" + MASK
    finally:
        logging.setLogRecordFactory(previous)
