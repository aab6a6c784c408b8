"""The sandbox service: a small backend shaped like the seed's, to point guilde-diag at.

Routes
* ``POST /api/v1/orders`` ``{item, quantity, price_cents}`` → 201 order;
  ``GET /api/v1/orders?limit=`` (cached); ``GET /api/v1/orders/{id}`` (cached).
* ``POST /api/v1/checkout`` ``{order_id}`` → the order plus an "LLM" summary fetched from the
  upstream through :func:`guilde_core.resilience.resilient_call`.
* ``GET /api/v1/health`` (checks, 503 when unhealthy), ``/api/v1/health/live``,
  ``/api/v1/health/ready``, ``/api/v1/health/deep``; ``/health`` (liveness too) (the deep report's shape with metrics/diagnostics).
* ``GET /metrics`` (Prometheus text); ``GET /`` (where things are).
* ``GET /app``: the frontend page over these APIs (:mod:`tools.sandbox.frontend`), and
  ``GET /api/v1/promotions`` which its orders view calls.
* ``/_chaos/…`` (token in ``Authorization: Bearer`` or ``X-Chaos-Token``): ``GET faults``
  (catalogue + active), ``GET status``, ``POST faults/{id}`` (JSON params), ``DELETE
  faults/{id}``, ``DELETE faults``, ``POST reload``.

Every request gets a correlation id (``X-Request-ID`` in, else the trace id of a
``traceparent``, else a new one; echoed back) that its log lines carry. Errors are RFC 9457 problem details.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from prometheus_client import generate_latest
from pydantic import BaseModel, Field
from redis.exceptions import RedisError
from starlette.responses import JSONResponse, Response

from guilde_core.config import Settings, get_settings
from guilde_core.correlation import correlation_scope
from guilde_core.errors import (
    ConnectionFailedError,
    GuildeError,
    InvalidInputError,
    TransientDatabaseError,
    classify,
)
from guilde_core.redaction import redact, redact_text
from guilde_core.resilience import BreakerRegistry, get_registry
from tools.chaos.catalogue import FAULTS
from tools.sandbox.chaos import ChaosEngine
from tools.sandbox.config import SandboxConfig
from tools.sandbox.context import SandboxContext
from tools.sandbox.db import Order, PoolTimeoutError
from tools.sandbox.frontend import frontend_router
from tools.sandbox.health import deep_health, liveness, readiness
from tools.sandbox.logs import describe_error
from tools.sandbox.pricing import price_orders

__all__ = ["create_app"]

PROBLEM = "application/problem+json"


class OrderIn(BaseModel):
    item: str = Field(min_length=1, max_length=200)
    quantity: int = Field(1, ge=1, le=10_000)
    price_cents: int = Field(100, ge=0, le=10_000_000)


class CheckoutIn(BaseModel):
    order_id: int = Field(ge=1)


def problem(
    status: int, title: str, detail: str, request: Request | None = None, **extra: Any
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": redact_text(detail),
    }
    if request is not None:
        body["instance"] = request.url.path
        rid = getattr(request.state, "request_id", None)
        if rid:
            body["request_id"] = rid
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def _trace_id(traceparent: str | None) -> str | None:
    """The trace id of a W3C ``traceparent`` (``00-<trace id>-<span id>-<flags>``)."""
    parts = (traceparent or "").strip().split("-")
    if len(parts) == 4 and len(parts[1]) == 32 and parts[1] != "0" * 32:
        return parts[1]
    return None


def _route_of(request: Request) -> str:
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"


def create_app(
    config: SandboxConfig | None = None,
    *,
    registry: BreakerRegistry | None = None,
    settings: Settings | None = None,
) -> FastAPI:
    """A sandbox app. ``registry`` defaults to the process-wide breaker registry."""
    cfg = config or SandboxConfig.from_env()
    registry = registry if registry is not None else get_registry()
    ctx = SandboxContext(cfg, registry, settings or get_settings())
    ctx.metrics.watch_breakers(registry)
    engine = ChaosEngine(ctx)
    access = ctx.log.logger("access")
    orders_log = ctx.log.logger("orders")
    errors_log = ctx.log.logger("errors")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx.reload_runtime()
        await ctx.store.open()
        engine.start()
        ctx.log.logger("app").info(
            "sandbox started",
            extra={
                "database": ctx.store.kind,
                "cache": ctx.cache.kind,
                "pid_logs": str(cfg.logs_dir),
            },
        )
        try:
            yield
        finally:
            await engine.stop()
            await ctx.upstream.close()
            await ctx.cache.close()
            await ctx.store.close()
            ctx.log.logger("app").info("sandbox stopped")
            ctx.log.close()

    app = FastAPI(title="guilde-diag sandbox", version="0.1.0", lifespan=lifespan)
    app.state.sandbox = ctx
    app.state.chaos = engine

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        return problem(422, "Invalid request", problems, request)

    @app.middleware("http")
    async def observe(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        incoming = request.headers.get("x-request-id") or _trace_id(
            request.headers.get("traceparent")
        )
        with correlation_scope(incoming[:128] if incoming else None) as rid:
            request.state.request_id = rid
            start = time.perf_counter()
            delay = ctx.slow_routes.get(request.url.path)
            if delay:
                await asyncio.sleep(delay)
            try:
                response = await call_next(request)
            except Exception as exc:
                errors_log.error(
                    "unhandled error: %s: %s",
                    type(exc).__name__,
                    exc,
                    exc_info=exc,
                    extra={"method": request.method, "path": request.url.path},
                )
                response = problem(500, "Internal Server Error", "unexpected error", request)
            duration = time.perf_counter() - start
            route = _route_of(request)
            status = response.status_code
            if not request.url.path.startswith("/_chaos") and request.url.path != "/metrics":
                ctx.record(duration, status)
            ctx.metrics.requests.labels(request.method, route, str(status)).inc()
            ctx.metrics.latency.labels(request.method, route, str(status)).observe(duration)
            fields = {
                "method": request.method,
                "path": request.url.path,
                "route": route,
                "status": status,
                "duration_ms": round(duration * 1000, 1),
            }
            if duration * 1000 > ctx.runtime.slow_request_ms:
                access.warning("slow request: %s %s", request.method, route, extra=fields)
            else:
                access.info("request", extra=fields)
            response.headers["x-request-id"] = rid
            return response

    # ------------------------------------------------------------------ helpers
    async def db_call[T](request: Request, op: Callable[[], Awaitable[T]]) -> T | Response:
        from guilde_core.config import ServiceType
        from guilde_core.resilience import resilient_call

        start = time.perf_counter()

        async def attempt(limit: float | None) -> T:
            try:
                return await op()
            except GuildeError:
                raise
            except PoolTimeoutError as exc:
                raise TransientDatabaseError(str(exc), service="database", cause=exc) from exc
            except (OSError, sqlite3.OperationalError, psycopg.OperationalError) as exc:
                raise ConnectionFailedError(
                    describe_error(exc), service="database", cause=exc
                ) from exc

        try:
            result = await resilient_call(
                "database", attempt, service_type=ServiceType.DATABASE, registry=ctx.registry
            )
        except Exception as exc:
            ctx.metrics.db_errors.inc()
            typed = exc if isinstance(exc, GuildeError) else classify(exc, service="database")
            cause = exc.__cause__ if isinstance(exc, GuildeError) and exc.__cause__ else exc
            orders_log.error(
                "database call failed: %s",
                describe_error(cause),
                extra={
                    "error_code": typed.code,
                    "dependency": "database",
                    "pool": ctx.store.pool_stats(),
                },
            )
            status = 503 if typed.retryable or isinstance(cause, PoolTimeoutError) else 500
            if typed.code == "circuit_open":
                status = 503
            return problem(status, "Database unavailable", str(typed), request)
        elapsed = (time.perf_counter() - start) * 1000
        warn = ctx.settings.health_warn_db_latency_ms
        if elapsed > warn:
            orders_log.warning(
                "slow database call",
                extra={"duration_ms": round(elapsed, 1), "dependency": "database"},
            )
        return result

    async def cache_get(key: str) -> str | None:
        try:
            return await _cache_call(lambda: ctx.cache.get(key))
        except Exception:
            return None

    async def cache_set(key: str, value: str) -> None:
        try:
            await _cache_call(lambda: ctx.cache.set(key, value, ctx.runtime.cache_ttl_s))
        except Exception:
            return

    async def cache_forget(prefix: str) -> None:
        try:
            await _cache_call(lambda: ctx.cache.delete_prefix(prefix))
        except Exception:
            return

    async def _cache_call[T](fn: Callable[[], Awaitable[T]]) -> T:
        start = time.perf_counter()

        async def attempt() -> T:
            try:
                return await fn()
            except (OSError, RedisError) as exc:
                raise ConnectionFailedError(
                    describe_error(exc), service="redis", cause=exc
                ) from exc

        try:
            result = await ctx.registry.breaker("redis").call(attempt)
        except Exception as exc:
            ctx.metrics.cache_errors.inc()
            orders_log.warning(
                "cache unavailable: %s",
                describe_error(exc),
                extra={"cache": ctx.cache.kind, "dependency": "redis"},
            )
            raise
        elapsed = (time.perf_counter() - start) * 1000
        warn = ctx.settings.health_warn_redis_latency_ms
        if elapsed > warn:
            orders_log.warning(
                "slow cache call", extra={"duration_ms": round(elapsed, 1), "dependency": "redis"}
            )
        typed: T = result
        return typed

    def priced(order: Order) -> dict[str, Any]:
        return price_orders([order.as_dict()], ctx.spike)[0]

    # ------------------------------------------------------------------ business routes
    @app.post("/api/v1/orders", status_code=201, response_model=None)
    async def create_order(body: OrderIn, request: Request) -> Any:
        result = await db_call(
            request, lambda: ctx.store.create_order(body.item, body.quantity, body.price_cents)
        )
        if isinstance(result, Response):
            return result
        data = priced(result)
        await cache_forget("orders:list:")
        orders_log.info("order created", extra={"order_id": result.id, "item": result.item})
        return JSONResponse(data, status_code=201)

    @app.get("/api/v1/orders", response_model=None)
    async def list_orders(request: Request, limit: int = 20) -> Any:
        if not 1 <= limit <= 200:
            return problem(422, "Invalid request", "limit must be between 1 and 200", request)
        key = f"orders:list:{limit}"
        cached = await cache_get(key)
        if cached is not None:
            rows = json.loads(cached)
        else:
            result = await db_call(request, lambda: ctx.store.list_orders(limit))
            if isinstance(result, Response):
                return result
            rows = [order.as_dict() for order in result]
            await cache_set(key, json.dumps(rows))
        orders = price_orders(rows, ctx.spike)
        return {"orders": orders, "count": len(orders)}

    @app.get("/api/v1/orders/{order_id}", response_model=None)
    async def get_order(order_id: int, request: Request) -> Any:
        key = f"orders:{order_id}"
        cached = await cache_get(key)
        if cached is not None:
            return price_orders([json.loads(cached)], ctx.spike)[0]
        result = await db_call(request, lambda: ctx.store.get_order(order_id))
        if isinstance(result, Response):
            return result
        if result is None:
            return problem(404, "Not Found", f"no order {order_id}", request)
        await cache_set(key, json.dumps(result.as_dict()))
        return priced(result)

    @app.post("/api/v1/checkout", response_model=None)
    async def checkout(body: CheckoutIn, request: Request) -> Any:
        result = await db_call(request, lambda: ctx.store.get_order(body.order_id))
        if isinstance(result, Response):
            return result
        if result is None:
            return problem(404, "Not Found", f"no order {body.order_id}", request)
        order = priced(result)
        up = ctx.upstream
        if up.base_url is None:
            return {"order": order, "summary": None, "llm": "not configured"}
        try:
            summary = await up.complete(
                f"Summarise order {result.id}: {result.quantity} x {result.item}"
            )
        except Exception as exc:
            typed = exc if isinstance(exc, GuildeError) else classify(exc, service=up.provider)
            ctx.metrics.upstream.labels(up.provider, typed.code).inc()
            orders_log.error(
                "upstream call failed: %s [%s]",
                describe_error(typed),
                typed.code,
                extra={"provider": up.provider, "error_code": typed.code},
            )
            status = 503 if typed.retryable or typed.code == "circuit_open" else 502
            return problem(status, "Upstream unavailable", str(typed), request, code=typed.code)
        ctx.metrics.upstream.labels(up.provider, "ok").inc()
        return {"order": order, "summary": summary, "llm": up.provider}

    # ------------------------------------------------------------------ health + metrics
    @app.get("/", include_in_schema=False)
    async def index() -> dict[str, Any]:
        """Where things are (a page to point a "frontend" health probe at)."""
        return {
            "service": cfg.service_name,
            "health": "/api/v1/health",
            "frontend": "/app",
            "docs": "/docs",
        }

    app.include_router(frontend_router(ctx.frontend, ctx.log.logger("frontend")))

    @app.get("/api/v1/health", response_model=None)
    async def health() -> Any:
        doc = await deep_health(ctx, detailed=False)
        return JSONResponse(doc, status_code=503 if doc["status"] == "unhealthy" else 200)

    @app.get("/api/v1/health/deep", response_model=None)
    async def health_deep() -> Any:
        doc = await deep_health(ctx, detailed=True)
        return JSONResponse(doc, status_code=503 if doc["status"] == "unhealthy" else 200)

    @app.get("/api/v1/health/live")
    @app.get("/health", include_in_schema=False)
    async def health_live() -> dict[str, Any]:
        return liveness(ctx)

    @app.get("/api/v1/health/ready", response_model=None)
    async def health_ready() -> Any:
        doc = await readiness(ctx)
        return JSONResponse(doc, status_code=503 if doc["status"] == "unhealthy" else 200)

    @app.get("/metrics", response_model=None)
    async def metrics() -> Any:
        ctx.metrics.pool_in_use.set(ctx.store.pool_stats()["in_use"])
        body = generate_latest(ctx.metrics.registry)
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    # ------------------------------------------------------------------ chaos control
    def authorised(request: Request) -> bool:
        given = request.headers.get("x-chaos-token") or ""
        auth = request.headers.get("authorization", "")
        if not given and auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        return hmac.compare_digest(given.encode(), ctx.chaos_token.encode())

    def denied(request: Request) -> Response:
        return problem(
            401,
            "Unauthorized",
            "the chaos endpoint needs the sandbox's token (Authorization: Bearer …)",
            request,
        )

    @app.get("/_chaos/faults", response_model=None, include_in_schema=False)
    async def chaos_catalogue(request: Request) -> Any:
        if not authorised(request):
            return denied(request)
        return {
            "faults": [f.describe() for f in FAULTS.values()],
            "active": engine.status(),
        }

    @app.get("/_chaos/status", response_model=None, include_in_schema=False)
    async def chaos_status(request: Request) -> Any:
        if not authorised(request):
            return denied(request)
        return {"active": engine.status()}

    @app.post("/_chaos/faults/{fault_id}", response_model=None, include_in_schema=False)
    async def chaos_inject(fault_id: str, request: Request) -> Any:
        if not authorised(request):
            return denied(request)
        raw = await request.body()
        try:
            params = json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError:
            return problem(400, "Bad Request", "body must be a JSON object", request)
        if not isinstance(params, dict):
            return problem(400, "Bad Request", "body must be a JSON object", request)
        try:
            fault = await engine.inject(fault_id, params)
        except InvalidInputError as exc:
            status = 404 if exc.message.startswith("unknown fault") else 422
            return problem(status, "Invalid fault", exc.message, request)
        return JSONResponse(redact(fault), status_code=201)

    @app.delete("/_chaos/faults/{fault_id}", response_model=None, include_in_schema=False)
    async def chaos_clear(fault_id: str, request: Request) -> Any:
        if not authorised(request):
            return denied(request)
        if fault_id not in FAULTS:
            return problem(404, "Invalid fault", f"unknown fault {fault_id!r}", request)
        return {"cleared": await engine.clear(fault_id)}

    @app.delete("/_chaos/faults", response_model=None, include_in_schema=False)
    async def chaos_clear_all(request: Request) -> Any:
        if not authorised(request):
            return denied(request)
        return {"cleared": await engine.clear(None)}

    @app.post("/_chaos/reload", response_model=None, include_in_schema=False)
    async def chaos_reload(request: Request) -> Any:
        if not authorised(request):
            return denied(request)
        ctx.reload_runtime()
        return {"ok": ctx.config_error is None, "error": ctx.config_error}

    return app
