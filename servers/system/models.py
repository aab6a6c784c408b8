"""Pydantic models of the system area."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from servers.health.models import DeepHealthReport, Status


class CpuInfo(BaseModel):
    percent: float
    per_cpu: list[float]
    count_logical: int | None
    count_physical: int | None
    load_1: float
    load_5: float
    load_15: float


class MemoryInfo(BaseModel):
    total_mb: float
    available_mb: float
    used_percent: float
    swap_used_percent: float


class DiskInfo(BaseModel):
    path: str
    total_gb: float
    free_gb: float
    used_percent: float


class SystemOverview(BaseModel):
    hostname: str
    platform: str
    python: str
    pid: int
    boot_time: datetime
    host_uptime_seconds: float
    process_uptime_seconds: float
    process_memory_mb: float
    process_threads: int
    cpu: CpuInfo
    memory: MemoryInfo
    disks: list[DiskInfo]


class ProcessInfo(BaseModel):
    pid: int
    name: str
    cpu_percent: float
    memory_mb: float
    status: str | None = None
    command: str | None = Field(None, description="Command line (redacted, truncated).")


class ProcessList(BaseModel):
    processes: list[ProcessInfo]
    total: int
    sort_by: str


class Connections(BaseModel):
    scope: str = Field(description="host, or process when host-wide listing is not permitted")
    total: int
    by_status: dict[str, int]
    listening_ports: list[int]


class TaskInfo(BaseModel):
    name: str
    coroutine: str
    done: bool


class TaskList(BaseModel):
    count: int
    tasks: list[TaskInfo]
    note: str = Field(
        "tasks of the event loop serving this request (dev3000's own when served by it)"
    )


class Versions(BaseModel):
    python: str
    components: dict[str, str | None]


class ConfigEntry(BaseModel):
    name: str
    value: Any
    source: str


class EffectiveConfig(BaseModel):
    entries: list[ConfigEntry]
    count: int


class FullStatus(BaseModel):
    """The body of ``/api/v1/diag/status`` as the system server reports it."""

    status: Status
    generated_at: datetime
    health: DeepHealthReport
    system: SystemOverview
    circuits: list[dict[str, Any]]
    log_sources: int
    observability: dict[str, Any]
    versions: Versions
