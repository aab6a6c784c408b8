"""The disk check: filesystem usage, and the size of the directories dev3000 serves.

A filesystem that is 40 % full says nothing about a logs directory that grew by 3 GB in an
hour, so the built-in ``disk`` target (no ``path``) looks at the directories dev3000 itself
serves — every ``DEV3000_LOG_PATHS`` entry and ``DEV3000_DATA_DIR`` — and reports, per
directory, its size against its warning size (``HEALTH_WARN_LOGS_DIR_MB`` /
``HEALTH_WARN_DATA_DIR_MB``) and the filesystem it lives on. A target with a ``path`` checks
that path alone (filesystem and size, no warning size).

The walk is bounded (:data:`MAX_ENTRIES` per directory): past it the size is a lower bound
and the entry says ``truncated``.
"""

from __future__ import annotations

import glob
import os
import shutil
from pathlib import Path
from typing import Any, Literal

from guilde_core.config import Settings
from servers.health.models import Status, worst

__all__ = ["MAX_ENTRIES", "disk_report", "filesystem_status", "watched_directories"]

MAX_ENTRIES = 20_000
MB = 1024 * 1024
Role = Literal["logs", "data", "path"]


def filesystem_status(used_percent: float) -> Status:
    """Unhealthy from 98 %, degraded from 90 %."""
    return "unhealthy" if used_percent >= 98 else "degraded" if used_percent >= 90 else "healthy"


def _static_prefix(entry: str) -> Path:
    """The directory a log path or glob lives under (``/var/log/app/*.log`` → ``/var/log/app``)."""
    if not glob.has_magic(entry):
        return Path(entry)
    parts: list[str] = []
    for part in Path(entry).parts:
        if glob.has_magic(part):
            break
        parts.append(part)
    return Path(*parts) if parts else Path(".")


def watched_directories(settings: Settings) -> list[tuple[Role, Path, float]]:
    """``(role, path, warn_mb)`` of every directory dev3000 serves, without repeats."""
    out: list[tuple[Role, Path, float]] = []
    seen: set[Path] = set()
    for entry in settings.dev3000_log_paths:
        path = _static_prefix(entry)
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            out.append(("logs", path, settings.health_warn_logs_dir_mb))
    data = settings.data_dir
    if data.resolve() not in seen:
        out.append(("data", data, settings.health_warn_data_dir_mb))
    return out


def _size(path: Path) -> tuple[int, int, bool]:
    """Bytes and files under ``path`` (a file: itself), and whether the walk stopped early."""
    if path.is_file():
        return path.stat().st_size, 1, False
    total = files = seen = 0
    stack = [str(path)]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    seen += 1
                    if seen > MAX_ENTRIES:
                        return total, files, True
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        elif entry.is_file(follow_symlinks=False):
                            total += entry.stat(follow_symlinks=False).st_size
                            files += 1
                    except OSError:
                        continue  # vanished while walking (rotation): not this check's fault
        except OSError:
            continue
    return total, files, False


def _directory(role: Role, path: Path, warn_mb: float | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"role": role, "path": str(path)}
    if not path.exists():
        return {**entry, "exists": False, "status": "healthy"}
    usage = shutil.disk_usage(path)
    fs_percent = 100.0 * usage.used / usage.total if usage.total else 0.0
    size, files, truncated = _size(path)
    used_mb = size / MB
    status = filesystem_status(fs_percent)
    if warn_mb is not None and used_mb >= warn_mb:
        status = worst([status, "degraded"])
    entry.update(
        {
            "exists": True,
            "status": status,
            "used_mb": round(used_mb, 3),
            "files": files,
            "truncated": truncated,
            "filesystem_used_percent": round(fs_percent, 2),
            "free_gb": round(usage.free / 1e9, 3),
            "total_gb": round(usage.total / 1e9, 3),
        }
    )
    if warn_mb is not None:
        entry["warn_mb"] = warn_mb
    return entry


def disk_report(settings: Settings, path: str | None) -> tuple[Status, dict[str, Any]]:
    """Status and details of a disk check (blocking: run it in a thread).

    ``details``: ``directories`` (one entry per watched directory: ``role``, ``path``,
    ``status``, ``used_mb``, ``warn_mb``, ``files``, ``truncated``, ``filesystem_used_percent``,
    ``free_gb``, ``total_gb``, ``exists``) and, for the fullest filesystem among them,
    ``path``, ``total_gb``, ``free_gb``, ``used_percent``."""
    watched: list[tuple[Role, Path, float | None]] = (
        [("path", Path(path), None)] if path else list(watched_directories(settings))
    )
    directories = [_directory(role, p, warn) for role, p, warn in watched]
    present = [d for d in directories if d.get("exists")]
    fullest = max(present, key=lambda d: d["filesystem_used_percent"], default=None)
    if fullest is None:  # nothing there yet: the filesystem of the working directory
        usage = shutil.disk_usage(".")
        percent = 100.0 * usage.used / usage.total if usage.total else 0.0
        top = {
            "path": ".",
            "total_gb": round(usage.total / 1e9, 3),
            "free_gb": round(usage.free / 1e9, 3),
            "used_percent": round(percent, 2),
        }
        status = filesystem_status(percent)
    else:
        top = {
            "path": fullest["path"],
            "total_gb": fullest["total_gb"],
            "free_gb": fullest["free_gb"],
            "used_percent": fullest["filesystem_used_percent"],
        }
        status = worst([d["status"] for d in directories])
    return status, {**top, "directories": directories}
