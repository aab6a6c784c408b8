"""Why a check is not healthy, read from its structured fields.

A check is one entry of a health report — dev3000's own (:class:`~servers.health.models.
CheckResult` details) or a watched service's (``checks.database`` of the seed's deep
report, ``checks.external_apis.openai``, a sandbox's ``checks.latency`` …): a mapping with a
``status`` and measurements beside it. :func:`reasons_of` turns the measurements that crossed
their limits into :class:`~guilde_core.stack.Reason` s:

* ``latency_ms`` / ``p99_latency_ms`` over ``threshold_ms`` / ``warn_latency_ms`` (else the
  ``HEALTH_WARN_*_LATENCY_MS`` setting of the component) → ``latency``;
* ``pool.in_use`` at ``pool.size`` (or ``pool.available`` 0) → ``resource_exhaustion``;
* a size or share over its budget (``scratch_used_mb``/``budget_mb``, ``used_mb``/``warn_mb``,
  ``used_percent``/``warn_percent`` …) → ``resource_exhaustion``;
* ``error_rate_percent`` over ``threshold_percent``, ``lines_per_second`` over ``threshold``
  → ``error_spike``;
* ``error`` → the category of its error code (``error_code``), else of the exception type the
  error was recorded with (``"RateLimitedError: …"`` — the ``Type: message`` form every part
  of the project records), else ``unreachable`` when nothing could be measured;
* ``circuit_state`` open or half-open → ``circuit_open``, as a *consequence* when the
  breaker's ``last_error`` names the cause (a 429 storm is ``upstream_rate_limited``, the open
  breaker follows from it); forced open by an operator is the cause itself.

Components are named from a check's name or its ``type``/``kind`` (:func:`canonical`),
never from the text of an error.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from guilde_core.config import Settings
from guilde_core.errors import GuildeError
from guilde_core.stack import CODE_CATEGORY, Category, NodeKind, Reason, Status, canonical

__all__ = [
    "CODE_CATEGORY",
    "SELF_CHECKS",
    "canonical",
    "circuit_reasons",
    "error_category",
    "error_type",
    "node_kind",
    "normalise_status",
    "reasons_of",
]

_DATASTORES = frozenset({"database", "redis"})
_RESOURCES = frozenset({"disk", "memory", "cpu"})
#: checks a service reports about itself (its error rate, its latency, its log volume):
#: their component is the service's own
SELF_CHECKS = frozenset({"errors", "latency", "log_volume", "requests"})

#: exception types of the libraries the watched services use, by the name a breaker or a
#: report records them with → error code (the project's own types are read from the tree)
_FOREIGN_TYPES: dict[str, str] = {
    "TimeoutError": "timeout",
    "ReadTimeout": "timeout",
    "WriteTimeout": "timeout",
    "APITimeoutError": "timeout",
    "ConnectTimeout": "connection_failed",
    "ConnectError": "connection_failed",
    "ConnectionError": "connection_failed",
    "ConnectionRefusedError": "connection_failed",
    "ConnectionResetError": "connection_failed",
    "APIConnectionError": "connection_failed",
    "OperationalError": "connection_failed",
    "PoolTimeout": "pool_exhausted",
    "TooManyConnections": "pool_exhausted",
    "RateLimitError": "rate_limited",
    "PermissionDeniedError": "authentication",
    "InternalServerError": "upstream_error",
    "ServiceUnavailableError": "unavailable",
}


@functools.cache
def _project_types() -> dict[str, str]:
    out: dict[str, str] = {}
    todo: list[type[GuildeError]] = [GuildeError]
    while todo:
        cls = todo.pop()
        out[cls.__name__] = cls.code
        todo.extend(cls.__subclasses__())
    return out


def node_kind(component: str, *, provider: bool = False) -> NodeKind:
    """``datastore`` / ``resource`` / ``provider`` by component, else ``check``."""
    if provider:
        return "provider"
    if component in _DATASTORES:
        return "datastore"
    if component in _RESOURCES:
        return "resource"
    return "check"


def normalise_status(value: object) -> Status:
    """A reported status in the project's vocabulary (``ok``/``up`` → healthy, ``warn`` →
    degraded, anything else that is not healthy → unhealthy)."""
    text = str(value).strip().lower() if value is not None else ""
    if text in ("healthy", "ok", "up", "pass", "passing"):
        return "healthy"
    if text in ("degraded", "warn", "warning"):
        return "degraded"
    return "unhealthy"


def error_type(error: object) -> str | None:
    """The exception type an error was recorded with: ``"RateLimitedError: 429 …"`` →
    ``RateLimitedError`` (the ``Type: message`` form); None for any other text."""
    if not isinstance(error, str):
        return None
    head = error.split(":", 1)[0].strip()
    head = head.rsplit(".", 1)[-1]  # a qualified name: httpx.ReadTimeout
    return head if head.isidentifier() and head[:1].isupper() else None


def error_category(code: str | None = None, type_name: str | None = None) -> Category | None:
    """The category of an error code, else of an exception type name; None when neither is
    known."""
    if code and code in CODE_CATEGORY:
        return CODE_CATEGORY[code]
    if type_name:
        mapped = _FOREIGN_TYPES.get(type_name) or _project_types().get(type_name)
        if mapped:
            return CODE_CATEGORY.get(mapped, "unknown")
    return None


def _num(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _first(check: Mapping[str, Any], keys: tuple[str, ...]) -> tuple[str, float] | None:
    for key in keys:
        value = _num(check.get(key))
        if value is not None:
            return key, value
    return None


def _fmt(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 10 else f"{value:.3g}"


_LATENCY_VALUES = ("latency_ms", "p99_latency_ms", "connect_ms")
_LATENCY_LIMITS = ("threshold_ms", "warn_latency_ms", "warn_ms", "latency_threshold_ms")


def _latency_limit(component: str, settings: Settings) -> float:
    if component == "database":
        return settings.health_warn_db_latency_ms
    if component == "redis":
        return settings.health_warn_redis_latency_ms
    return settings.health_warn_api_latency_ms


def _latency(check: Mapping[str, Any], field: str, component: str, s: Settings) -> list[Reason]:
    measured = _first(check, _LATENCY_VALUES)
    if measured is None:
        return []
    key, value = measured
    limit = _first(check, _LATENCY_LIMITS)
    threshold = limit[1] if limit else _latency_limit(component, s)
    if value <= threshold:
        return []
    label = "p99 latency" if key.startswith("p99") else "latency"
    return [
        Reason(
            category="latency",
            summary=f"{label} {_fmt(value)} ms > {_fmt(threshold)} ms",
            field=f"{field}.{key}",
            value=value,
            threshold=threshold,
        )
    ]


#: (measured, limit, what it is, unit, category) — crossing when measured >= limit
_OVER: tuple[tuple[str, str, str, str, Category], ...] = (
    ("error_rate_percent", "threshold_percent", "error rate", "%", "error_spike"),
    ("lines_per_second", "threshold", "log volume", "lines/s", "error_spike"),
    ("scratch_used_mb", "budget_mb", "scratch space", "MB", "resource_exhaustion"),
    ("grown_mb", "budget_mb", "memory growth", "MB", "resource_exhaustion"),
    ("used_mb", "warn_mb", "size", "MB", "resource_exhaustion"),
    ("used_mb", "budget_mb", "size", "MB", "resource_exhaustion"),
    ("used_percent", "warn_percent", "usage", "%", "resource_exhaustion"),
    ("cpu_percent", "warn_percent", "CPU", "%", "resource_exhaustion"),
)
#: filesystem fill levels (the disk check's fixed limits)
_FILESYSTEM_FULL = 90.0
_FILESYSTEM_MIN_FREE = 5.0


def _over(check: Mapping[str, Any], field: str, component: str) -> list[Reason]:
    out: list[Reason] = []
    seen: set[str] = set()
    for key, limit_key, label, unit, category in _OVER:
        value, limit = _num(check.get(key)), _num(check.get(limit_key))
        if value is None or limit is None or key in seen or value < limit:
            continue
        seen.add(key)
        what = f"{check['role']} directory {label}" if isinstance(check.get("role"), str) else label
        out.append(
            Reason(
                category=category,
                summary=f"{what} {_fmt(value)} {unit} ≥ {_fmt(limit)} {unit}",
                field=f"{field}.{key}",
                value=value,
                threshold=limit,
            )
        )
    filesystem = _first(check, ("filesystem_used_percent",)) or (
        _first(check, ("used_percent",))
        if component == "disk" and "warn_percent" not in check
        else None
    )
    if filesystem is not None and filesystem[1] >= _FILESYSTEM_FULL:
        out.append(
            Reason(
                category="resource_exhaustion",
                summary=f"filesystem {_fmt(filesystem[1])} % full",
                field=f"{field}.{filesystem[0]}",
                value=filesystem[1],
                threshold=_FILESYSTEM_FULL,
            )
        )
    free = _num(check.get("filesystem_free_percent"))
    if free is not None and free < _FILESYSTEM_MIN_FREE:
        out.append(
            Reason(
                category="resource_exhaustion",
                summary=f"filesystem {_fmt(free)} % free",
                field=f"{field}.filesystem_free_percent",
                value=free,
                threshold=_FILESYSTEM_MIN_FREE,
            )
        )
    return out


def _pool(check: Mapping[str, Any], field: str) -> Reason | None:
    pool = check.get("pool")
    if isinstance(pool, Mapping):
        size, in_use, available = (_num(pool.get(k)) for k in ("size", "in_use", "available"))
        where = f"{field}.pool"
    else:  # dev3000's own PostgreSQL check: the server's connection slots
        size, in_use = _num(check.get("connections_max")), _num(check.get("connections_in_use"))
        available, where = _num(check.get("connections_available")), field
    full = (size is not None and size > 0 and in_use is not None and in_use >= size) or (
        available == 0 and size is not None and size > 0
    )
    if not full:
        return None
    assert size is not None
    used = in_use if in_use is not None else size
    summary = f"pool exhausted: {_fmt(used)}/{_fmt(size)} connections in use"
    error = check.get("error")
    if isinstance(error, str) and error:
        summary += f" ({error[:160]})"
    return Reason(
        category="resource_exhaustion",
        summary=summary,
        field=f"{where}.in_use" if where.endswith("pool") else f"{where}.connections_in_use",
        value=used,
        threshold=size,
    )


_MEASURED = ("latency_ms", "p99_latency_ms", "connect_ms", "status_code")
#: an HTTP answer a check did not expect (``error_code`` ``unexpected_status``), by status
_HTTP_STATUS: dict[int, Category] = {
    401: "configuration",
    403: "configuration",
    404: "configuration",
    429: "upstream_rate_limited",
    502: "unreachable",
    503: "unreachable",
    504: "latency",
}


def _status_category(status_code: float | None) -> Category:
    if status_code is None:
        return "unknown"
    code = int(status_code)
    return _HTTP_STATUS.get(code, "error_spike" if code >= 500 else "unknown")


def _error(check: Mapping[str, Any], field: str, component: str) -> Reason | None:
    error = check.get("error")
    if not isinstance(error, str) or not error.strip():
        return None
    code = check.get("error_code")
    category: Category | None
    if component == "config":
        category = "configuration"
    elif code == "unexpected_status":
        category = _status_category(_num(check.get("status_code")))
    else:
        category = error_category(code if isinstance(code, str) else None, error_type(error))
    if category is None:
        # nothing measured and an error: it could not be reached at all
        measured = any(_num(check.get(k)) is not None for k in _MEASURED)
        category = "unknown" if measured else "unreachable"
    return Reason(category=category, summary=error.strip()[:240], field=f"{field}.error")


def circuit_reasons(check: Mapping[str, Any], field: str) -> list[Reason]:
    """The reasons a breaker gives: its recorded cause first, the open state after it (and
    its status quoted when its state says nothing more)."""
    out = _circuit(check, field)
    status = normalise_status(check.get("status", "healthy"))
    if status != "healthy" and not out:
        out.append(
            Reason(
                category="unknown", summary=f"breaker reported {status}", field=f"{field}.status"
            )
        )
    return out


def _circuit(check: Mapping[str, Any], field: str) -> list[Reason]:
    state = str(check.get("circuit_state") or check.get("state") or "closed").replace("_", "-")
    forced, disabled = bool(check.get("forced")), bool(check.get("disabled"))
    failures = _num(check.get("failure_count"))
    counted = f" after {_fmt(failures)} failure(s)" if failures else ""
    if disabled:
        return [
            Reason(
                category="configuration",
                summary="breaker disabled: calls pass through unprotected",
                field=f"{field}.disabled",
            )
        ]
    if state == "closed":
        if forced:
            return [
                Reason(
                    category="configuration",
                    summary="breaker forced closed: calls pass through whatever fails",
                    field=f"{field}.forced",
                )
            ]
        return []
    if forced:
        return [
            Reason(
                category="circuit_open",
                summary="breaker forced open by an operator: calls fail fast",
                field=f"{field}.forced",
                value=state,
            )
        ]
    out: list[Reason] = []
    last = check.get("last_error")
    cause = error_category(None, error_type(last)) if isinstance(last, str) else None
    if cause is not None and cause not in ("unknown", "circuit_open") and isinstance(last, str):
        out.append(Reason(category=cause, summary=last.strip()[:240], field=f"{field}.last_error"))
    out.append(
        Reason(
            category="circuit_open",
            summary=f"breaker {state}{counted}"
            + (": calls fail fast" if state == "open" else ": trial calls only"),
            field=f"{field}.circuit_state",
            value=state,
            consequence=bool(out),
        )
    )
    return out


def reasons_of(
    check: Mapping[str, Any], *, field: str, component: str, settings: Settings
) -> list[Reason]:
    """Why ``check`` (found at ``field`` of its report) is not healthy; ``[]`` when it is.

    The cause comes first; a reason that follows from it is marked ``consequence``. A check
    that is not healthy and says nothing measurable gets one ``unknown`` reason quoting its
    status (and its ``warning``), so no status goes unexplained."""
    status = normalise_status(check.get("status"))
    if status == "healthy":
        return []
    out: list[Reason] = []
    pool = _pool(check, field)
    if pool is not None:
        out.append(pool)
    else:
        error = _error(check, field, component)
        if error is not None:
            out.append(error)
    out += _latency(check, field, component, settings)
    out += _over(check, field, component)
    breaker = _circuit(check, field)
    if out and breaker and not breaker[0].consequence and breaker[0].category == "circuit_open":
        breaker = [breaker[0].model_copy(update={"consequence": True}), *breaker[1:]]
    out += breaker
    if not out:
        warning = check.get("warning")
        detail = f": {warning.strip()[:200]}" if isinstance(warning, str) and warning else ""
        out.append(
            Reason(category="unknown", summary=f"reports {status}{detail}", field=f"{field}.status")
        )
    return out
