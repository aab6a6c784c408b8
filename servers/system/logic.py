"""System diagnostics as plain async functions returning Pydantic models.

:func:`overview` (CPU, memory, disks, load, uptime), :func:`top_processes`,
:func:`connections`, :func:`asyncio_tasks`, :func:`versions`, :func:`effective_config`
(redacted, from ``explain_settings``), :func:`observability`, :func:`full_status`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import socket
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Literal

import psutil

from guilde_core.config import Settings, explain_settings, get_settings
from guilde_core.errors import InvalidInputError
from guilde_core.observability import observability_status
from guilde_core.redaction import redact, redact_text
from servers.circuits import logic as circuits_logic
from servers.health.logic import deep_health
from servers.logs.logic import list_log_sources
from servers.system.models import (
    ConfigEntry,
    Connections,
    CpuInfo,
    DiskInfo,
    EffectiveConfig,
    FullStatus,
    MemoryInfo,
    ProcessInfo,
    ProcessList,
    SystemOverview,
    TaskInfo,
    TaskList,
    Versions,
)

__all__ = [
    "COMPONENTS",
    "asyncio_tasks",
    "connections",
    "effective_config",
    "full_status",
    "observability",
    "overview",
    "top_processes",
    "versions",
]

COMPONENTS = (
    "guilde-diag", "fastmcp", "mcp", "fastapi", "starlette", "uvicorn", "pydantic",
    "langgraph", "redis", "psycopg", "httpx", "logfire", "sentry-sdk", "prometheus-client",
    "textual", "openai", "anthropic", "tenacity",
)  # fmt: skip


def _disk(path: str) -> DiskInfo | None:
    try:
        u = psutil.disk_usage(path)
    except OSError:
        return None
    return DiskInfo(
        path=path, total_gb=round(u.total / 1e9, 3), free_gb=round(u.free / 1e9, 3),
        used_percent=u.percent,
    )  # fmt: skip


def _overview() -> SystemOverview:
    proc = psutil.Process()
    per_cpu = psutil.cpu_percent(interval=0.1, percpu=True)
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    vm, sw = psutil.virtual_memory(), psutil.swap_memory()
    boot = psutil.boot_time()
    disks = [d for d in (_disk(p) for p in sorted({os.path.abspath("."), "/"})) if d]
    return SystemOverview(
        hostname=socket.gethostname(),
        platform=platform.platform(),
        python=sys.version.split()[0],
        pid=os.getpid(),
        boot_time=datetime.fromtimestamp(boot, UTC),
        host_uptime_seconds=round(time.time() - boot, 1),
        process_uptime_seconds=round(time.time() - proc.create_time(), 3),
        process_memory_mb=round(proc.memory_info().rss / 1024 / 1024, 3),
        process_threads=proc.num_threads(),
        cpu=CpuInfo(
            percent=round(sum(per_cpu) / max(len(per_cpu), 1), 2),
            per_cpu=per_cpu,
            count_logical=psutil.cpu_count(),
            count_physical=psutil.cpu_count(logical=False),
            load_1=load[0],
            load_5=load[1],
            load_15=load[2],
        ),
        memory=MemoryInfo(
            total_mb=round(vm.total / 1024 / 1024, 1),
            available_mb=round(vm.available / 1024 / 1024, 1),
            used_percent=vm.percent,
            swap_used_percent=sw.percent,
        ),
        disks=disks,
    )


async def overview() -> SystemOverview:
    """Host CPU/memory/disks/load and this process's uptime and memory."""
    return await asyncio.to_thread(_overview)


def _top(limit: int, sort_by: str) -> ProcessList:
    procs = list(psutil.process_iter(["pid", "name"]))
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.cpu_percent(None)
    time.sleep(0.2)
    rows: list[ProcessInfo] = []
    for p in procs:
        try:
            with p.oneshot():
                cmd = " ".join(p.cmdline())[:300]
                rows.append(
                    ProcessInfo(
                        pid=p.pid,
                        name=p.name(),
                        cpu_percent=p.cpu_percent(None),
                        memory_mb=round(p.memory_info().rss / 1024 / 1024, 3),
                        status=p.status(),
                        command=redact_text(cmd) or None,
                    )
                )
        except psutil.Error:
            continue
    key = (lambda r: r.cpu_percent) if sort_by == "cpu" else (lambda r: r.memory_mb)
    rows.sort(key=key, reverse=True)
    return ProcessList(processes=rows[:limit], total=len(rows), sort_by=sort_by)


async def top_processes(limit: int = 10, sort_by: Literal["cpu", "memory"] = "cpu") -> ProcessList:
    """The busiest processes (command lines redacted)."""
    if not 1 <= limit <= 200:
        raise InvalidInputError("limit must be between 1 and 200")
    return await asyncio.to_thread(_top, limit, sort_by)


def _connections() -> Connections:
    scope = "host"
    conns: list[Any]
    try:
        conns = list(psutil.net_connections(kind="inet"))
    except (psutil.AccessDenied, PermissionError):
        scope = "process"
        conns = list(psutil.Process().net_connections(kind="inet"))
    by_status = Counter(c.status for c in conns)
    listening = sorted({c.laddr.port for c in conns if c.status == "LISTEN" and c.laddr})
    return Connections(
        scope=scope, total=len(conns), by_status=dict(by_status), listening_ports=listening[:200]
    )


async def connections() -> Connections:
    """Open inet connections by status, and listening ports."""
    return await asyncio.to_thread(_connections)


async def asyncio_tasks(limit: int = 100) -> TaskList:
    """This process's asyncio tasks (the loop running the call)."""
    tasks = list(asyncio.all_tasks())
    infos = []
    for t in tasks[:limit]:
        coro: Any = t.get_coro()
        infos.append(
            TaskInfo(
                name=t.get_name(),
                coroutine=getattr(coro, "__qualname__", type(coro).__name__),
                done=t.done(),
            )
        )
    infos.sort(key=lambda i: i.name)
    return TaskList(count=len(tasks), tasks=infos)


async def versions() -> Versions:
    found: dict[str, str | None] = {}
    for name in COMPONENTS:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return Versions(python=sys.version.split()[0], components=found)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


async def effective_config(
    prefix: str | None = None, settings: Settings | None = None
) -> EffectiveConfig:
    """Every setting with its effective value (secrets masked) and where it came from."""
    s = settings or get_settings()
    rows = explain_settings(s)
    entries = []
    for name, value, source in rows:
        if prefix and not name.startswith(prefix.upper()):
            continue
        masked = redact({name: value})[name]
        entries.append(ConfigEntry(name=name, value=_jsonable(masked), source=source))
    return EffectiveConfig(entries=entries, count=len(entries))


async def observability() -> dict[str, Any]:
    """Logfire and Sentry status as the SDKs expose it."""
    out: dict[str, Any] = redact(observability_status())
    return out


async def _circuits(settings: Settings) -> list[dict[str, Any]]:
    try:
        breakers = (await circuits_logic.list_breakers(settings)).breakers
    except Exception as exc:
        return [{"error": type(exc).__name__}]
    return [b.model_dump(mode="json") for b in breakers]


async def full_status(settings: Settings | None = None) -> FullStatus:
    """Deep health, system overview, circuits, log sources, observability, versions —
    the body of ``/api/v1/diag/status``."""
    s = settings or get_settings()
    health, system, circuits, sources, obs, vers = await asyncio.gather(
        deep_health(settings=s),
        overview(),
        _circuits(s),
        list_log_sources(settings=s),
        observability(),
        versions(),
    )
    status = FullStatus(
        status=health.status,
        generated_at=datetime.now(UTC),
        health=health,
        system=system,
        circuits=circuits,
        log_sources=len(sources.sources),
        observability=obs,
        versions=vers,
    )
    return FullStatus.model_validate(redact(status.model_dump(mode="json")))
