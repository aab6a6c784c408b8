"""Logfire and Sentry set-up, and what they report about themselves.

``setup_observability(settings)``

* Logfire: set up only when it has somewhere to write — a write token
  (``DEV3000_LOGFIRE_TOKEN``/``LOGFIRE_TOKEN``: ``send_to_logfire``) or console output asked
  for (``LOGFIRE_CONSOLE_ENABLED``, off by default; written to **stderr**, so MCP over stdio
  keeps stdout for the protocol). Otherwise OpenTelemetry keeps its no-op tracer and the
  spans the MCP framework opens on every call cost next to nothing. Spans are exported in
  batches of at most ``LOGFIRE_SPAN_PROCESSOR_BATCH_SIZE``, each export request bounded by
  ``LOGFIRE_SPAN_PROCESSOR_TIMEOUT`` (ms); a span processor counts spans handed to the
  exporter and a log handler counts export failures (refused, timed out, unreachable: what
  the OpenTelemetry exporter and Logfire's retrying session report).
* Sentry (``DEV3000_SENTRY_DSN``/``SENTRY_DSN``): ``send_default_pii`` from
  ``SENTRY_SEND_DEFAULT_PII`` (off: the user is also dropped from every event), sampling,
  environment and release from ``SENTRY_*``, a ``before_send`` that redacts every event
  (``guilde_core.redaction.redact``) and counts what is sent, and a transport that counts
  what Sentry did not accept (network errors, error statuses, rate limiting). Integrations
  are chosen explicitly (:func:`sentry_integrations`): Sentry's auto-enabling ones would
  import every library they know of that is installed (langchain, langgraph, the MCP SDK,
  the LLM SDKs…), which cost 10-15 s at start-up and instrumented nothing this process calls
  through them.

An export failure makes that exporter ``degraded`` in :func:`observability_status` (the deep
report's ``checks.observability`` and the ``system_observability`` tool) for
:data:`FAILURE_WINDOW` seconds after the last one.

Both are harmless without credentials: nothing leaves the process. Calling it again
reconfigures. ``observability_status()`` returns the deep report's ``checks.observability``
block (plus ``configured`` and the figures the SDKs expose).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

from guilde_core.config import Settings
from guilde_core.redaction import redact, redact_text

__all__ = [
    "FAILURE_WINDOW",
    "observability_status",
    "scrub_event",
    "sentry_integrations",
    "setup_observability",
]

log = logging.getLogger(__name__)

#: seconds an exporter stays ``degraded`` after its last export failure
FAILURE_WINDOW = 300.0


class _Counters:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.logfire_configured = False
        self.logfire_sending = False
        self.spans_exported = 0
        self.export_errors = 0
        self.last_export_error: float | None = None
        self.last_export_error_text: str | None = None
        self.sentry_configured = False
        self.send_default_pii = False
        self.events_sent = 0
        self.events_scrubbed = 0
        self.sentry_errors = 0
        self.last_sentry_error: float | None = None
        self.last_sentry_error_text: str | None = None
        self.error: str | None = None

    def bump(self, name: str, by: int = 1) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + by)

    def failed(self, exporter: str, why: str) -> None:
        """Record one export failure of ``exporter`` (``logfire`` or ``sentry``)."""
        with self.lock:
            if exporter == "logfire":
                self.export_errors += 1
                self.last_export_error = time.monotonic()
                self.last_export_error_text = why[:200]
            else:
                self.sentry_errors += 1
                self.last_sentry_error = time.monotonic()
                self.last_sentry_error_text = why[:200]


_state = _Counters()


class _ExportErrorHandler(logging.Handler):
    """Counts span export failures: the OpenTelemetry exporter and Logfire's retrying session
    log them (``opentelemetry.*``, ``logfire``); neither has a counter."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record must not break logging
            return
        if record.levelno >= logging.WARNING and "export" in message.lower():
            _state.failed("logfire", redact_text(message))


_export_handler = _ExportErrorHandler()
#: the loggers that report export failures
_EXPORT_LOGGERS = ("opentelemetry", "logfire")


def _span_counter() -> Any:
    from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

    class CountingProcessor(SpanProcessor):
        def on_end(self, span: ReadableSpan) -> None:
            if _state.logfire_sending:
                _state.bump("spans_exported")

    return CountingProcessor()


def scrub_event(event: Mapping[str, Any], hint: Mapping[str, Any] | None = None) -> Any:
    """Sentry ``before_send``: the event with every secret-looking value masked."""
    del hint
    _state.bump("events_sent")
    _state.bump("events_scrubbed")
    cleaned = redact(dict(event))
    request = cleaned.get("request")
    if isinstance(request, dict):  # no cookies or auth headers, whatever their name
        request.pop("cookies", None)
        headers = request.get("headers")
        if isinstance(headers, dict):
            for key in list(headers):
                if key.lower() in ("authorization", "cookie", "x-api-key", "proxy-authorization"):
                    headers[key] = "***REDACTED***"
    if not _state.send_default_pii:
        cleaned.pop("user", None)
    return cleaned


def _scrub_transaction(event: Mapping[str, Any], hint: Mapping[str, Any] | None = None) -> Any:
    del hint
    return redact(dict(event))


def _setup_logfire(settings: Settings) -> None:
    token = settings.logfire_write_token
    if token is None and not settings.logfire_console_enabled and not _state.logfire_configured:
        _state.logfire_sending = False
        return  # nowhere to write: OpenTelemetry's no-op tracer stays in place
    # (once set up, a reload reconfigures it: a console turned off stops printing)
    # Logfire reads LOGFIRE_CONSOLE_COLORS itself, on import, and wants auto|always|never where
    # the setting is a bool: give it the value the bool means before it looks
    os.environ["LOGFIRE_CONSOLE_COLORS"] = "auto" if settings.logfire_console_colors else "never"
    import logfire

    console: Any = False
    if settings.logfire_console_enabled:
        console = logfire.ConsoleOptions(
            colors="auto" if settings.logfire_console_colors else "never",
            include_timestamps=settings.logfire_console_include_timestamps,
            verbose=settings.logfire_console_verbose,
            output=sys.stderr,
        )
    # the OpenTelemetry SDK reads these when Logfire builds its span processor and exporter
    os.environ["OTEL_BSP_MAX_EXPORT_BATCH_SIZE"] = str(settings.logfire_span_processor_batch_size)
    os.environ["OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"] = str(
        settings.logfire_span_processor_timeout / 1000
    )
    logfire.configure(
        send_to_logfire="if-token-present",
        token=token.get_secret_value() if token is not None else None,
        service_name=settings.mcp_server_name,
        environment=settings.dev3000_mode,
        resource_attributes=settings.resource_attributes() or None,
        console=console,
        additional_span_processors=[_span_counter()],
        inspect_arguments=False,
    )
    _state.logfire_configured = True
    _state.logfire_sending = token is not None
    for name in _EXPORT_LOGGERS:
        logger = logging.getLogger(name)
        if _export_handler not in logger.handlers:
            logger.addHandler(_export_handler)


def _counting_transport() -> Any:
    """Sentry's HTTP transport, counting each envelope Sentry did not take."""
    from sentry_sdk.transport import HttpTransport

    class CountingTransport(HttpTransport):
        def on_dropped_event(self, reason: str) -> None:
            _state.failed("sentry", f"event dropped: {reason}")
            super().on_dropped_event(reason)

    return CountingTransport


def sentry_integrations() -> list[Any]:
    """The Sentry integrations this process uses, chosen explicitly: the default ones
    (logging, excepthook, threading, stdlib …) plus Starlette/FastAPI when the process
    serves them (already imported: ``dev3000 serve``), never the auto-enabling rest."""
    integrations: list[Any] = []
    if "fastapi" in sys.modules:
        from sentry_sdk.integrations.fastapi import FastApiIntegration
        from sentry_sdk.integrations.starlette import StarletteIntegration

        integrations += [StarletteIntegration(), FastApiIntegration()]
    return integrations


def _setup_sentry(settings: Settings) -> None:
    dsn = settings.sentry_dsn_value
    if dsn is None:  # not even imported (a twentieth of a second of every start)
        _state.sentry_configured = False
        return
    import sentry_sdk

    _state.send_default_pii = settings.sentry_send_default_pii
    sentry_sdk.init(
        dsn=dsn.get_secret_value(),
        transport=_counting_transport(),
        send_default_pii=settings.sentry_send_default_pii,
        traces_sample_rate=settings.sentry_traces_sample_rate,
        profiles_sample_rate=settings.sentry_profiles_sample_rate,
        environment=settings.sentry_environment,
        release=settings.sentry_release,
        debug=settings.sentry_debug,
        attach_stacktrace=settings.sentry_attach_stacktrace,
        before_send=scrub_event,
        before_send_transaction=_scrub_transaction,
        include_local_variables=False,
        auto_enabling_integrations=False,
        integrations=sentry_integrations(),
    )
    _state.sentry_configured = True


def setup_observability(settings: Settings) -> None:
    """Configure Logfire and Sentry from ``settings`` (never raises)."""
    for part, setup in (("logfire", _setup_logfire), ("sentry", _setup_sentry)):
        try:
            setup(settings)
        except Exception as exc:  # observability must never stop the service
            _state.error = f"{part}: {type(exc).__name__}"
            log.warning("observability: %s set-up failed: %s", part, type(exc).__name__)


def _sentry_rate_limited() -> bool:
    try:
        import sentry_sdk

        transport: Any = sentry_sdk.get_client().transport
    except Exception:
        return False
    check = getattr(transport, "_check_disabled", None)
    if callable(check):
        try:
            return bool(check("error"))
        except Exception:
            return False
    return False


def _recent(when: float | None) -> bool:
    return when is not None and time.monotonic() - when < FAILURE_WINDOW


def observability_status() -> dict[str, Any]:
    """``{"logfire": {...}, "sentry": {...}}`` in the deep report's shape: an exporter is
    ``degraded`` while its last failure is under :data:`FAILURE_WINDOW` seconds old (Sentry
    also while it rate-limits us)."""
    limited = _sentry_rate_limited() if _state.sentry_configured else False
    lf_failing = _state.logfire_sending and _recent(_state.last_export_error)
    se_failing = _state.sentry_configured and _recent(_state.last_sentry_error)
    logfire_status: dict[str, Any] = {
        "status": "degraded" if lf_failing else "healthy",
        "configured": _state.logfire_configured,
        "sending": _state.logfire_sending,
        "spans_exported": _state.spans_exported,
        "export_errors": _state.export_errors,
    }
    if lf_failing:
        logfire_status["last_error"] = _state.last_export_error_text
    sentry_status: dict[str, Any] = {
        "status": "degraded" if limited or se_failing else "healthy",
        "configured": _state.sentry_configured,
        "events_sent": _state.events_sent,
        "export_errors": _state.sentry_errors,
        "rate_limited": limited,
    }
    if se_failing:
        sentry_status["last_error"] = _state.last_sentry_error_text
    return {
        "logfire": logfire_status,
        "sentry": sentry_status,
        **({"error": _state.error} if _state.error else {}),
    }
