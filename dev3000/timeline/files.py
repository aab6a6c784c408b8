"""The timeline as JSON-lines files an assistant can simply read.

One file per session (``timeline-<UTC start>-<pid>-<part>.jsonl``) in a ``timeline/``
directory under the logs directory; a file that reaches ``max_bytes`` continues in the
next part; only the newest ``keep`` files are kept; ``current`` is a symbolic link to the
file being written, replaced atomically.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from guilde_core.config import Settings
from guilde_core.events import TimelineEvent

__all__ = ["CURRENT_LINK", "TimelineFiles", "timeline_dir"]

log = logging.getLogger(__name__)

CURRENT_LINK = "current"
_PATTERN = "timeline-*.jsonl"


def timeline_dir(settings: Settings) -> Path:
    """``<logs dir>/timeline``: the first of ``DEV3000_LOG_PATHS`` that is a directory
    (else the first that is not a glob, else ``DEV3000_DATA_DIR``)."""
    candidates = [Path(p) for p in settings.dev3000_log_paths]
    for path in candidates:
        if path.is_dir():
            return path / "timeline"
    for path in candidates:
        if not glob.has_magic(str(path)) and not path.exists():
            return path / "timeline"
    return settings.data_dir / "timeline"


class TimelineFiles:
    """An :class:`~dev3000.timeline.bus.EventSink` writing one JSON line per event."""

    def __init__(self, directory: Path, *, max_bytes: int = 10 * 2**20, keep: int = 10) -> None:
        self.directory = directory
        self.max_bytes = max(1024, max_bytes)
        self.keep = max(1, keep)
        self.session = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{os.getpid()}"
        self.part = 0
        self.path: Path | None = None
        self._file: IO[str] | None = None
        self._size = 0
        self._lock = threading.Lock()
        self.errors = 0

    @property
    def current_link(self) -> Path:
        return self.directory / CURRENT_LINK

    def open(self) -> None:
        """Start this session's first file (also done by the first event)."""
        with self._lock:
            if self._file is None:
                self._roll()

    def _roll(self) -> None:
        if self._file is not None:
            self._file.close()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.part += 1
        self.path = self.directory / f"timeline-{self.session}-{self.part:03d}.jsonl"
        self._file = self.path.open("a", encoding="utf-8")
        self._size = self.path.stat().st_size
        self._point_current(self.path)
        self._prune()

    def _point_current(self, target: Path) -> None:
        tmp = self.directory / f".{CURRENT_LINK}.{os.getpid()}.tmp"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(target.name, tmp)
        os.replace(tmp, self.current_link)

    def _prune(self) -> None:
        files = sorted(
            self.directory.glob(_PATTERN), key=lambda p: (p.stat().st_mtime, p.name), reverse=True
        )
        for old in files[self.keep :]:
            if old != self.path:
                with contextlib.suppress(OSError):
                    old.unlink()

    def emit(self, event: TimelineEvent) -> None:
        line = event.model_dump_json() + "\n"
        with self._lock:
            try:
                if self._file is None or (self._size and self._size + len(line) > self.max_bytes):
                    self._roll()
                assert self._file is not None
                self._file.write(line)
                self._file.flush()
                self._size += len(line.encode("utf-8"))
            except OSError as exc:  # a full disk never breaks the timeline itself
                self.errors += 1
                if self.errors == 1:
                    log.warning("timeline file write failed: %s", exc)

    def files(self) -> list[Path]:
        """The kept files, oldest first."""
        return sorted(self.directory.glob(_PATTERN), key=lambda p: (p.stat().st_mtime, p.name))

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
