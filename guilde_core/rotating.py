"""An append-only log file that rotates by size: ``name`` → ``name.1`` → … → ``name.<keep>``.

Used by the writers of log sources dev3000 creates itself (supervised process output, the
browser capture), so the logs server reads them, rotated generations included, like any other
log file. Write errors are logged once per file and never raised: capture must not stop
because a disk is full.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from pathlib import Path
from typing import IO

__all__ = ["RotatingFile"]

log = logging.getLogger(__name__)


class RotatingFile:
    """``write(data)`` appends bytes; past ``max_bytes`` the file is rotated (``keep`` old
    generations are kept, the oldest deleted)."""

    def __init__(self, path: Path, *, max_bytes: int = 10 * 2**20, keep: int = 3) -> None:
        self.path = path
        self.max_bytes = max(1024, max_bytes)
        self.keep = max(1, keep)
        self._file: IO[bytes] | None = None
        self._lock = threading.Lock()
        self._warned = False
        self.rotations = 0

    def _generation(self, n: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{n}")

    def _rotate(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        with contextlib.suppress(FileNotFoundError):
            self._generation(self.keep).unlink()
        for n in range(self.keep - 1, 0, -1):
            with contextlib.suppress(FileNotFoundError):
                os.replace(self._generation(n), self._generation(n + 1))
        with contextlib.suppress(FileNotFoundError):
            os.replace(self.path, self._generation(1))
        self.rotations += 1

    def write(self, data: bytes) -> None:
        with self._lock:
            try:
                if self._file is None:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    self._file = self.path.open("ab")
                if self._file.tell() and self._file.tell() + len(data) > self.max_bytes:
                    self._rotate()
                    self._file = self.path.open("ab")
                self._file.write(data)
                self._file.flush()
            except OSError as exc:
                if not self._warned:
                    self._warned = True
                    log.warning("cannot write %s: %s", self.path, exc)

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                with contextlib.suppress(OSError):
                    self._file.close()
                self._file = None
