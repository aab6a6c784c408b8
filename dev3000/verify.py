"""``dev3000 verify --url URL``: the post-deploy checks of a running dev3000.

After a rollout (the compose healthcheck docs, the Kubernetes docs in ``deploy/``), one command
answers "is this dev3000 serving what it should": the probes answer 200, the deep report
parses against its schema, MCP ``initialize`` succeeds on ``/mcp``, the stream's WebSocket
sends its ``hello``, and the breakers are listed. Each check prints one line (``ok`` or
``FAIL``, what, how long, why); the exit code is 0 when every check passed, 1 otherwise, 2 for
bad usage. ``--json`` prints the same as JSON. The API key (``--api-key`` /
``DEV3000_API_KEY``) is sent as ``X-API-Key`` and never printed.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any, get_args

import httpx
from pydantic import ValidationError, create_model

from guilde_core.redaction import redact_text

__all__ = ["Check", "verify"]


@dataclass(frozen=True)
class Check:
    """One post-deploy check: its name, whether it passed, what it saw and how long it took."""

    name: str
    ok: bool
    detail: str
    ms: float


def _status_detail(response: httpx.Response) -> str:
    if response.headers.get("content-type", "").startswith("application/problem+json"):
        try:
            return f"{response.status_code}: {response.json().get('detail', '')}"
        except ValueError:
            pass
    return str(response.status_code)


async def _probe(http: httpx.AsyncClient, path: str) -> tuple[bool, str]:
    response = await http.get(path)
    return response.status_code == 200, f"GET {path} → {_status_detail(response)}"


def _summary_problems(value: Any, where: str, statuses: tuple[str, ...]) -> list[str]:
    """What is wrong with one check of a deep report whose details are hidden."""
    if isinstance(value, dict) and "status" in value:
        problems = [] if value["status"] in statuses else [f"{where}: status {value['status']!r}"]
        for name, child in (value.get("children") or {}).items():
            problems += _summary_problems(child, f"{where}.{name}", statuses)
        return problems
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _summary_problems(v, f"{where}.{k}", statuses)]
    return [f"{where}: not a check"]


def _check_deep(body: Any) -> tuple[bool, str]:
    """The deep report against its schema: the full report, or — where details are hidden
    (``HEALTH_CHECK_INCLUDE_DETAILS=false``, production) — its summary form, every check
    reduced to its status and reason categories."""
    from servers.health.models import DeepChecks, DeepHealthReport, Status

    if isinstance(body, dict) and "diagnostics" in body:
        report = DeepHealthReport.model_validate(body)
        return True, f"schema ok, status {report.status}, {len(report.checks.targets)} target(s)"
    head = {k: v for k, v in body.items() if k not in ("checks", "diagnostics")}
    summary_fields = {
        name: (field.annotation, field)
        for name, field in DeepHealthReport.model_fields.items()
        if name not in ("checks", "diagnostics")
    }
    summary = create_model("DeepSummary", **summary_fields)  # type: ignore[call-overload]
    summary.model_validate(head)
    checks = body.get("checks")
    if not isinstance(checks, dict):
        return False, "the deep report has no checks"
    required = [n for n, f in DeepChecks.model_fields.items() if f.is_required()]
    problems = [f"checks.{n}: missing" for n in required if n not in checks]
    for name, value in checks.items():
        problems += _summary_problems(value, f"checks.{name}", get_args(Status))
    if problems:
        return False, "the deep report does not match its schema: " + "; ".join(problems[:3])
    return True, f"schema ok (details hidden), status {body['status']}, {len(checks)} checks"


async def _deep(http: httpx.AsyncClient) -> tuple[bool, str]:
    response = await http.get("/api/v1/health/deep")
    if response.status_code not in (200, 503):  # 503: an honest "unhealthy" report
        return False, f"GET /api/v1/health/deep → {_status_detail(response)}"
    try:
        return _check_deep(response.json())
    except (ValueError, ValidationError) as exc:
        first = str(exc).splitlines()[:3]
        return False, "the deep report does not match its schema: " + " ".join(first)


async def _mcp(base: str, headers: dict[str, str], limit: float) -> tuple[bool, str]:
    import httpx2
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    http = httpx2.AsyncClient(headers=headers, timeout=limit)
    async with (
        http,
        streamable_http_client(f"{base}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        result = await session.initialize()
        tools = await session.list_tools()
    info = result.server_info
    return True, f"initialize → {info.name} {info.version}, {len(tools.tools)} tools"


async def _stream(base: str, headers: dict[str, str]) -> tuple[bool, str]:
    from websockets.asyncio.client import connect

    url = base.replace("http", "ws", 1) + "/api/v1/diag/stream"
    async with connect(url, additional_headers=headers, open_timeout=10) as ws:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
    if frame.get("type") != "hello":
        return False, f"first frame is {frame.get('type')!r}, not hello"
    return True, "WebSocket hello received"


async def _circuits(http: httpx.AsyncClient) -> tuple[bool, str]:
    response = await http.get("/api/v1/diag/circuits")
    if response.status_code != 200:
        return False, f"GET /api/v1/diag/circuits → {_status_detail(response)}"
    body = response.json()
    breakers = body.get("breakers", body) if isinstance(body, dict) else body
    return True, f"{len(breakers)} breaker(s) listed"


async def _run(name: str, check: Callable[[], Awaitable[tuple[bool, str]]], limit: float) -> Check:
    started = time.perf_counter()
    try:
        ok, detail = await asyncio.wait_for(check(), limit)
    except TimeoutError:
        ok, detail = False, f"no answer within {limit:g} s"
    except Exception as exc:  # a check that cannot run is a failed check, never a crash
        ok, detail = False, f"{type(exc).__name__}: {exc}"
        if isinstance(exc, BaseExceptionGroup):
            inner = exc.exceptions[0]
            detail = f"{type(inner).__name__}: {inner}"
    return Check(
        name, ok, redact_text(detail)[:300], round((time.perf_counter() - started) * 1000, 1)
    )


async def verify(url: str, api_key: str | None = None, *, limit: float = 15.0) -> list[Check]:
    """Run every post-deploy check against the dev3000 at ``url`` (its base URL), each
    within ``limit`` seconds."""
    base = url.rstrip("/")
    headers = {"X-API-Key": api_key} if api_key else {}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=limit) as http:
        checks: list[tuple[str, Callable[[], Awaitable[tuple[bool, str]]]]] = [
            ("health", lambda: _probe(http, "/api/v1/health")),
            ("live", lambda: _probe(http, "/api/v1/health/live")),
            ("ready", lambda: _probe(http, "/api/v1/health/ready")),
            ("deep report", lambda: _deep(http)),
            ("circuits", lambda: _circuits(http)),
            ("mcp", lambda: _mcp(base, headers, limit)),
            ("stream", lambda: _stream(base, headers)),
        ]
        return [await _run(name, check, limit) for name, check in checks]


def report(checks: list[Check], *, as_json: bool = False) -> str:
    """The readable (or JSON) report of ``checks``."""
    if as_json:
        return json.dumps(
            {"ok": all(c.ok for c in checks), "checks": [asdict(c) for c in checks]}, indent=2
        )
    width = max(len(c.name) for c in checks)
    lines = [
        f"{'ok  ' if c.ok else 'FAIL'}  {c.name:<{width}}  {c.ms:>7.1f} ms  {c.detail}"
        for c in checks
    ]
    failed = [c.name for c in checks if not c.ok]
    lines.append(
        f"verify: {len(checks) - len(failed)}/{len(checks)} checks passed"
        + (f"; failed: {', '.join(failed)}" if failed else "")
    )
    return "\n".join(lines)


def run(url: str, api_key: str | None, *, timeout: float, as_json: bool) -> tuple[int, str]:
    """Exit code and report of ``dev3000 verify``."""
    checks = asyncio.run(verify(url, api_key, limit=timeout))
    return (0 if all(c.ok for c in checks) else 1), report(checks, as_json=as_json)
