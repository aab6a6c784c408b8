"""Logfire and Sentry settings do what they say, and export failures show in the status
the ``system_observability`` tool (and the deep report) answer.

Each case runs ``setup_observability`` in a fresh interpreter (the SDKs are process-global)
against a collector on 127.0.0.1 that answers like Logfire's OTLP endpoint or Sentry's
envelope endpoint — accepting, refusing (503/500) or answering too late."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tools.harness import ServerThread

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Collector:
    """What the fake endpoints received, and how they answer."""

    status: int = 200
    #: Sentry: envelopes accepted before every later one is answered 500 (None: ``status``)
    fail_after: int | None = None
    delay: float = 0.0
    span_batches: list[list[str]] = field(default_factory=list)
    envelopes: list[list[dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _body(raw: bytes, encoding: str | None) -> bytes:
    if encoding == "gzip":
        return gzip.decompress(raw)
    if encoding == "deflate":
        return zlib.decompress(raw)
    if encoding == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().decompressobj().decompress(raw)
    return raw


def _app(col: Collector) -> Starlette:
    async def traces(request: Request) -> Response:
        raw = _body(await request.body(), request.headers.get("content-encoding"))
        message = ExportTraceServiceRequest()
        message.ParseFromString(raw)
        names = [
            span.name
            for resource in message.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]
        with col.lock:
            col.span_batches.append(names)
        if col.delay:
            time.sleep(col.delay)  # blocks this worker thread like a stuck upstream
        return Response(b"", status_code=col.status, media_type="application/x-protobuf")

    async def envelope(request: Request) -> Response:
        raw = _body(await request.body(), request.headers.get("content-encoding"))
        items = []
        for line in raw.splitlines():
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if isinstance(doc, dict):
                items.append(doc)
        with col.lock:
            col.envelopes.append(items)
            count = len(col.envelopes)
        refuse = col.fail_after is not None and count > col.fail_after
        return JSONResponse({}, status_code=500 if refuse else col.status)

    async def anything(request: Request) -> Response:
        return JSONResponse({}, status_code=200)

    return Starlette(
        routes=[
            Route("/v1/traces", traces, methods=["POST"]),
            Route("/api/1/envelope/", envelope, methods=["POST"]),
            Route("/{path:path}", anything, methods=["GET", "POST"]),
        ]
    )


@pytest.fixture
def collector() -> Iterator[tuple[Collector, str]]:
    col = Collector()
    with ServerThread(_app(col)) as server:
        yield col, server.url


def _run(script: str, env: dict[str, str], tmp_path: Path) -> dict[str, Any]:
    """Run ``script`` after ``setup_observability(Settings())``; it prints the status JSON."""
    prelude = textwrap.dedent(
        """
        import json, time
        from guilde_core.config import Settings
        from guilde_core.observability import observability_status, setup_observability
        setup_observability(Settings())
        Settings()  # what the set-up leaves in the environment is still valid configuration


        def status():
            # what the system_observability MCP tool answers
            import asyncio
            from servers.system.logic import observability
            return asyncio.run(observability())
        """
    )
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LOGFIRE_", "SENTRY_", "DEV3000_", "OTEL_", "DIAGNOSTIC_"))
    }
    done = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(script)],
        env={**base, "DEV3000_ENV_FILE": str(tmp_path / "none.env"), **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    last = done.stdout.strip().splitlines()[-1]
    status: dict[str, Any] = json.loads(last)
    return status


_SPANS = """
import logfire
for i in range({n}):
    with logfire.span("diag-span-" + str(i)):
        pass
logfire.force_flush(timeout_millis=8000)
deadline = time.monotonic() + {wait}
while time.monotonic() < deadline and {until}:
    time.sleep(0.2)
print(json.dumps(status()))
"""


def _logfire_env(url: str, **more: str) -> dict[str, str]:
    return {
        "LOGFIRE_TOKEN": "test-write-token",
        "LOGFIRE_BASE_URL": url,
        "LOGFIRE_CONSOLE_ENABLED": "false",
        **more,
    }


def test_span_batch_size_bounds_each_export_request(
    collector: tuple[Collector, str], tmp_path: Path
) -> None:
    col, url = collector
    status = _run(
        _SPANS.format(n=12, wait=0, until="False"),
        _logfire_env(url, LOGFIRE_SPAN_PROCESSOR_BATCH_SIZE="3"),
        tmp_path,
    )
    names = [n for batch in col.span_batches for n in batch if n.startswith("diag-span-")]
    # every span arrives (Logfire may also send a span's "pending" record before it ends)
    assert set(names) == {f"diag-span-{i}" for i in range(12)}
    assert max(len(b) for b in col.span_batches) <= 3, col.span_batches
    assert status["logfire"]["status"] == "healthy"
    assert status["logfire"]["export_errors"] == 0


def test_a_refused_span_export_degrades_logfire(
    collector: tuple[Collector, str], tmp_path: Path
) -> None:
    col, url = collector
    col.status = 503
    status = _run(
        _SPANS.format(
            n=3, wait=10, until="observability_status()['logfire']['status'] == 'healthy'"
        ),
        _logfire_env(url),
        tmp_path,
    )
    assert col.span_batches, "the export never reached the collector"
    assert status["logfire"]["status"] == "degraded", status
    assert status["logfire"]["export_errors"] >= 1
    assert "export" in status["logfire"]["last_error"].lower()


def test_span_export_timeout_is_the_setting(
    collector: tuple[Collector, str], tmp_path: Path
) -> None:
    """A collector answering after 3 s: within the default 5 s the export succeeds, with
    LOGFIRE_SPAN_PROCESSOR_TIMEOUT=500 it is an export error."""
    col, url = collector
    col.delay = 3.0
    script = _SPANS.format(
        n=1, wait=12, until="observability_status()['logfire']['status'] == 'healthy'"
    )
    slow = _run(script, _logfire_env(url, LOGFIRE_SPAN_PROCESSOR_TIMEOUT="500"), tmp_path)
    assert slow["logfire"]["status"] == "degraded", slow
    patient = _run(
        _SPANS.format(n=1, wait=0, until="False"),
        _logfire_env(url, LOGFIRE_SPAN_PROCESSOR_TIMEOUT="8000"),
        tmp_path,
    )
    assert patient["logfire"]["status"] == "healthy", patient
    assert patient["logfire"]["export_errors"] == 0


_SENTRY = """
import sentry_sdk
sentry_sdk.set_user({"id": "user-42", "email": "ada@example.com"})
sentry_sdk.capture_message("diag-message")
sentry_sdk.flush(timeout=5)
accepted = status()
sentry_sdk.capture_message("diag-refused")  # the collector refuses every envelope after one
sentry_sdk.flush(timeout=5)
deadline = time.monotonic() + 5
while time.monotonic() < deadline and observability_status()["sentry"]["status"] == "healthy":
    time.sleep(0.1)
print(json.dumps({"accepted": accepted, "refused": status()}))
"""


def _sentry_env(url: str, **more: str) -> dict[str, str]:
    host = url.removeprefix("http://")
    return {"SENTRY_DSN": f"http://publickey@{host}/1", **more}


def _events(col: Collector, message: str) -> list[dict[str, Any]]:
    return [i for env in col.envelopes for i in env if i.get("message") == message]


@pytest.mark.parametrize("pii", ["false", "true"])
def test_sentry_pii_setting_and_refused_exports(
    pii: str, collector: tuple[Collector, str], tmp_path: Path
) -> None:
    """``SENTRY_SEND_DEFAULT_PII`` decides whether the user reaches Sentry; an envelope
    Sentry refuses turns the sentry status degraded, naming the refusal."""
    col, url = collector
    col.fail_after = 1
    status = _run(_SENTRY, _sentry_env(url, SENTRY_SEND_DEFAULT_PII=pii), tmp_path)
    (event,) = _events(col, "diag-message")
    if pii == "true":
        assert event["user"]["id"] == "user-42"
    else:
        assert "user" not in event
    accepted, refused = status["accepted"]["sentry"], status["refused"]["sentry"]
    assert accepted["status"] == "healthy", accepted
    assert accepted["export_errors"] == 0
    assert _events(col, "diag-refused"), "the second event never reached the collector"
    assert refused["status"] == "degraded", refused
    assert refused["export_errors"] >= 1
    assert "status_500" in refused["last_error"]


@pytest.mark.parametrize("colors", ["false", "true"])
def test_logfire_console_colors_as_a_bool_configures_logfire(
    colors: str, collector: tuple[Collector, str], tmp_path: Path
) -> None:
    """Logfire reads LOGFIRE_CONSOLE_COLORS too (auto|always|never); the setting's bool must
    not make its set-up fail (the k8s ConfigMap sets "false")."""
    col, url = collector
    status = _run(
        _SPANS.format(n=1, wait=0, until="False"),
        _logfire_env(url, LOGFIRE_CONSOLE_ENABLED="true", LOGFIRE_CONSOLE_COLORS=colors),
        tmp_path,
    )
    assert "error" not in status, status
    assert status["logfire"]["configured"] is True
    assert any("diag-span-0" in batch for batch in col.span_batches)
