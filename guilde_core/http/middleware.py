"""The one pure-ASGI middleware in front of an HTTP API: request ids, metrics, rate limits.

Kept as a single ASGI callable (no ``BaseHTTPMiddleware``) so the cheap probes stay cheap.
dev3000's API and agent-web both sit behind it.

* ``X-Request-ID``: the incoming value (if sane) or a new one, set as the correlation id of
  the request (``guilde_core.correlation``) and echoed on every response, errors included.
* Prometheus: ``dev3000_http_requests_total`` and ``dev3000_http_request_duration_seconds``
  by method, route template and status.
* Rate limit (:mod:`guilde_core.http.ratelimit`) on rate-limited paths (the API, and MCP
  unless it comes from a loopback address), per API key or client address; a 429 problem carries ``Retry-After`` and ``RateLimit-*`` headers, allowed
  responses carry the ``RateLimit-*`` headers too.
* ``hosts`` (optional), asked per request: Host and Origin checked by the one
  :class:`~guilde_core.http.hosts.HostPolicy` before anything else — 421 / 403 problems
  (a WebSocket handshake is refused with 403). Probes and ``/metrics`` are not
  checked: kubelet and Prometheus address a pod by its IP, which no allow-list can name.
* ``fast_probe`` (optional): ``GET``/``HEAD`` of a path it knows is answered with its JSON
  body before routing (dev3000's ``/health`` and ``/api/v1/health``).
* ``disabled`` (optional), asked per request (so a configuration reload applies): a path it
  names as switched off is a 404 problem (type ``…/disabled``) naming the variable that
  turns it back on; a WebSocket to it is refused (dev3000's master switches).
* An exception escaping the app becomes a 500 problem (with the request id), never a
  traceback.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable
from typing import Any, Protocol

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from guilde_core.correlation import correlation_scope
from guilde_core.http.auth import Keyring, extract_token
from guilde_core.http.authz import is_loopback
from guilde_core.http.hosts import HostPolicy, HostRefusal
from guilde_core.http.problems import internal_error, problem_response
from guilde_core.http.ratelimit import RateDecision, RateLimiter
from guilde_core.redaction import redact_text

__all__ = [
    "HTTP_REQUESTS",
    "HTTP_REQUEST_DURATION",
    "ApiMiddleware",
    "Disabled",
    "is_exempt_path",
    "is_rate_limited_path",
]

log = logging.getLogger("dev3000.api")

HTTP_REQUESTS = Counter(
    "dev3000_http_requests_total",
    "HTTP requests served by dev3000.",
    ["method", "route", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "dev3000_http_request_duration_seconds",
    "Time to serve an HTTP request of dev3000.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

#: the label children of each (method, route template, status) seen — bounded by the routes
_SERIES: dict[tuple[str, str, int], tuple[Any, Any]] = {}

_RID_RE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
#: cheap probes and scrapes: never rate limited (orchestrators hit them constantly) and
#: never Host-checked (kubelet and Prometheus address a pod by its IP)
_EXEMPT = frozenset(
    {"/health", "/api/v1/health", "/api/v1/health/live", "/api/v1/health/ready", "/metrics"}
)


def is_exempt_path(path: str) -> bool:
    """Whether ``path`` is a probe or the metrics scrape (no rate limit, no Host check)."""
    return path in _EXEMPT


_MCP_PATHS = ("/mcp", "/sse", "/messages")


def is_rate_limited_path(path: str, client_host: str | None = None) -> bool:
    """Whether requests to ``path`` from ``client_host`` count against
    ``DIAGNOSTIC_RATE_LIMIT``: the API and MCP, except the probes and MCP from a loopback
    address (an assistant or IDE on this machine makes one request per tool call, and a
    session of a few hundred calls must not meet the REST API's per-minute limit)."""
    if path in _EXEMPT:
        return False
    if path.startswith(_MCP_PATHS):
        return not (client_host is not None and is_loopback(client_host))
    return path.startswith("/api/")


class Disabled(Protocol):
    """Why a path is switched off: what is off, and the variable that turns it back on."""

    @property
    def off_text(self) -> str: ...

    @property
    def variable(self) -> str: ...


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _headers(scope: Scope) -> dict[str, str]:
    """The request's ``host`` and ``origin`` headers (the first of each)."""
    found: dict[str, str] = {}
    for key, value in scope.get("headers", ()):
        if key in (b"host", b"origin") and key.decode() not in found:
            found[key.decode()] = value.decode("latin-1")
    return found


def _route_label(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"


class ApiMiddleware:
    """Request id + correlation, metrics, rate limiting, last-resort 500 problem."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        limiter: Callable[[], RateLimiter | None],
        keyring: Callable[[], Keyring],
        fast_probe: Callable[[str], bytes | None] | None = None,
        disabled: Callable[[str], Disabled | None] | None = None,
        hosts: Callable[[], HostPolicy] | None = None,
        verbose: Callable[[], bool] | None = None,
    ) -> None:
        self.app = app
        self.verbose = verbose
        self.limiter = limiter
        self.keyring = keyring
        self.fast_probe = fast_probe
        self.disabled = disabled
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        rid = incoming if incoming and _RID_RE.match(incoming) else os.urandom(16).hex()
        scope.setdefault("state", {})["request_id"] = rid
        if self.hosts is not None and not is_exempt_path(str(scope.get("path", ""))):
            refusal = self.hosts().check(_headers(scope))
            if refusal is not None:
                with correlation_scope(rid):
                    await self._refused(scope, receive, send, rid, refusal)
                return
        if self.disabled is not None:
            switch = self.disabled(str(scope.get("path", "")))
            if switch is not None:
                await self._disabled(scope, receive, send, rid, switch)
                return
        if scope["type"] == "websocket":
            with correlation_scope(rid):
                await self.app(scope, receive, send)
            return
        with correlation_scope(rid):
            await self._http(scope, receive, send, rid)

    async def _http(self, scope: Scope, receive: Receive, send: Send, rid: str) -> None:
        started = time.perf_counter()
        method = str(scope.get("method", "GET"))
        path = str(scope.get("path", ""))
        status_holder = [500]
        response_started = False
        rid_header = (b"x-request-id", rid.encode("latin-1"))
        decision: RateDecision | None = None

        if self.fast_probe is not None and method in ("GET", "HEAD"):
            body = self.fast_probe(path)
            if body is not None:  # cheap probes skip routing (same body as their routes)
                await self._fast(send, body if method == "GET" else b"", len(body), rid)
                self._observe(method, scope, 200, started, route=path)
                return

        limiter = self.limiter()
        client: Any = scope.get("client")
        if limiter is not None and is_rate_limited_path(path, client[0] if client else None):
            decision = await limiter.hit(self._caller(scope))
            if not decision.allowed:
                headers = decision.headers()
                response = problem_response(
                    429,
                    f"rate limit of {decision.limit} requests per minute exceeded",
                    code="rate_limited",
                    instance=path,
                    headers=headers,
                    extra={"retry_after": int(headers["Retry-After"])},
                )
                response.headers["X-Request-ID"] = rid
                await response(scope, receive, send)
                self._observe(method, scope, 429, started)
                return
        extra_headers = (
            [(k.lower().encode(), v.encode()) for k, v in decision.headers().items()]
            if decision is not None
            else []
        )

        async def send_wrapper(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
                status_holder[0] = int(message["status"])
                headers = list(message.get("headers", ()))
                if not any(k.lower() == b"x-request-id" for k, _ in headers):
                    headers.append(rid_header)
                headers.extend(extra_headers)
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            log.error("unhandled error on %s: %s", path, redact_text(repr(exc)))
            if response_started:
                raise
            status_holder[0] = 500
            response = internal_error(
                path, exc, verbose=self.verbose is not None and self.verbose()
            )
            response.headers["X-Request-ID"] = rid
            await response(scope, receive, send)
        finally:
            self._observe(method, scope, status_holder[0], started)

    async def _refused(
        self, scope: Scope, receive: Receive, send: Send, rid: str, refusal: HostRefusal
    ) -> None:
        started = time.perf_counter()
        response = problem_response(
            refusal.status,
            refusal.detail,
            code=refusal.code,
            instance=str(scope.get("path", "")),
            headers={"X-Request-ID": rid},
        )
        if scope["type"] == "websocket":
            # refused before the handshake completes: the server answers HTTP 403 (a denial
            # response with the problem body would do, but uvicorn logs it as an error)
            await send({"type": "websocket.close", "code": 1008, "reason": refusal.code})
            return
        await response(scope, receive, send)
        method = str(scope.get("method", "GET"))
        self._observe(method, scope, refusal.status, started, route="refused")

    async def _disabled(
        self, scope: Scope, receive: Receive, send: Send, rid: str, switch: Disabled
    ) -> None:
        started = time.perf_counter()
        path = str(scope.get("path", ""))
        if scope["type"] == "websocket":  # refused before the handshake completes (HTTP 403)
            await send({"type": "websocket.close", "code": 1008, "reason": switch.off_text})
            return
        response = problem_response(
            404,
            f"{switch.off_text}; set {switch.variable}=true to serve {path}",
            code="disabled",
            instance=path,
        )
        response.headers["X-Request-ID"] = rid
        await response(scope, receive, send)
        self._observe(str(scope.get("method", "GET")), scope, 404, started, route="disabled")

    def _caller(self, scope: Scope) -> str:
        headers = {
            k.decode("latin-1"): v.decode("latin-1")
            for k, v in scope.get("headers", ())
            if k in (b"x-api-key", b"authorization")
        }
        token = extract_token(headers)
        if token:
            principal = self.keyring().identify(token)
            if principal is not None:
                return f"key:{principal.key_id}"
        client: Any = scope.get("client")
        host = client[0] if client else "unknown"
        return f"ip:{host}"

    @staticmethod
    async def _fast(send: Send, body: bytes, length: int, rid: str) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(length).encode()),
                    (b"x-request-id", rid.encode("latin-1")),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def _observe(
        method: str, scope: Scope, status: int, started: float, *, route: str | None = None
    ) -> None:
        route = route or _route_label(scope)
        key = (method, route, status)
        series = _SERIES.get(key)
        if series is None:  # labels() validates and locks: once per series, not per request
            series = _SERIES[key] = (
                HTTP_REQUESTS.labels(method, route, str(status)),
                HTTP_REQUEST_DURATION.labels(method, route),
            )
        series[0].inc()
        series[1].observe(time.perf_counter() - started)
