"""Log roots, source listing and safe path resolution.

Roots come from ``DEV3000_LOG_PATHS`` (directories or globs, default ``./logs``). A source
is named by its path relative to its root (``api.log``, ``old/api.log.2.gz``). Only files
under a configured root are readable: absolute names, ``..``, NUL bytes and symlinks that
leave the root are refused with :class:`InvalidInputError`.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from guilde_core.errors import InvalidInputError, NotFoundError
from servers.logs.models import LogSource

__all__ = [
    "MAX_SOURCES",
    "Root",
    "Source",
    "list_sources",
    "resolve_source",
    "roots_from",
    "select_sources",
]

MAX_SOURCES = 2000
#: longest file or directory name (bytes) a file system takes (NAME_MAX on Linux)
_NAME_MAX = 255
_GLOB_CHARS = re.compile(r"[*?\[]")
_ROTATED = re.compile(r"\.(\d+)(\.gz)?$|\.gz$|[.-]\d{8}(\.gz)?$")
# dev3000 writes its timeline under the first log root (dev3000.timeline.files); its
# ``error_log`` events repeat lines of the other sources
_TIMELINE = re.compile(r"(?:^|/)timeline/(?:timeline-[^/]*\.jsonl|current)$")


@dataclass(frozen=True)
class Root:
    """A configured root: a directory, optionally with a glob inside it."""

    spec: str
    directory: Path
    pattern: str | None  # glob relative to directory; None: every file below


@dataclass(frozen=True)
class Source:
    name: str
    path: Path
    root: Root

    @property
    def compressed(self) -> bool:
        return self.path.name.endswith(".gz")

    @property
    def rotated(self) -> bool:
        return bool(_ROTATED.search(self.path.name))

    @property
    def timeline(self) -> bool:
        return bool(_TIMELINE.search(self.name))


def roots_from(paths: list[str]) -> list[Root]:
    roots: list[Root] = []
    for spec in paths:
        spec = spec.strip()
        if not spec:
            continue
        p = Path(os.path.expanduser(spec))
        parts = p.parts
        idx = next((i for i, part in enumerate(parts) if _GLOB_CHARS.search(part)), None)
        if idx is None:
            roots.append(Root(spec, p.resolve(), None))
        else:
            base = Path(*parts[:idx]) if idx else Path(".")
            roots.append(Root(spec, base.resolve(), str(Path(*parts[idx:]))))
    return roots


def _inside(path: Path, directory: Path) -> bool:
    try:
        path.relative_to(directory)
    except ValueError:
        return False
    return True


def _candidates(root: Root) -> list[Path]:
    if not root.directory.is_dir():
        return []
    found: list[Path] = []
    if root.pattern is None:
        for dirpath, dirnames, filenames in os.walk(root.directory, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if not name.startswith("."):
                    found.append(Path(dirpath) / name)
                if len(found) >= MAX_SOURCES:
                    return found
    else:
        pattern = str(root.directory / root.pattern)
        for match in sorted(glob.glob(pattern, recursive=True))[:MAX_SOURCES]:
            found.append(Path(match))
    return found


def _sources(roots: list[Root]) -> list[Source]:
    out: list[Source] = []
    seen: set[str] = set()
    for root in roots:
        for path in _candidates(root):
            real = path.resolve()
            if not _inside(real, root.directory) or not real.is_file():
                continue  # symlink leaving the root, or not a regular file
            name = path.relative_to(root.directory).as_posix()
            if name in seen:
                continue
            seen.add(name)
            out.append(Source(name, path, root))
    return out


def list_sources(roots: list[Root]) -> list[LogSource]:
    out: list[LogSource] = []
    for src in _sources(roots):
        try:
            st = src.path.stat()
        except OSError:
            continue
        out.append(
            LogSource(
                name=src.name,
                root=src.root.spec,
                size_bytes=st.st_size,
                modified=datetime.fromtimestamp(st.st_mtime, UTC),
                rotated=src.rotated,
                compressed=src.compressed,
                timeline=src.timeline,
            )
        )
    return out


def _check_name(name: str) -> None:
    if not name or len(name) > 1024:
        raise InvalidInputError("a log source name must be 1-1024 characters")
    if "\x00" in name:
        raise InvalidInputError("log source names may not contain NUL bytes")
    if name.startswith(("/", "\\")) or os.path.isabs(name) or re.match(r"^[A-Za-z]:", name):
        raise InvalidInputError(
            "refused: absolute paths are not allowed; use a name from logs_sources"
        )
    parts = re.split(r"[\\/]", name)
    if ".." in parts:
        raise InvalidInputError("refused: a source name may not contain '..' (stay under the root)")
    if any(len(part.encode("utf-8", "surrogatepass")) > _NAME_MAX for part in parts):
        raise InvalidInputError(
            f"a log source name's parts may be at most {_NAME_MAX} bytes; "
            "use a name from logs_sources"
        )


def resolve_source(name: str, roots: list[Root]) -> Source:
    """The source called ``name`` (a path relative to a configured root), checked."""
    _check_name(name)
    for root in roots:
        path = root.directory / name
        try:
            real = path.resolve()
            if not _inside(real, root.directory):
                raise InvalidInputError("refused: that source is a symlink leaving its log root")
            is_file = real.is_file()
        except OSError as exc:  # the message would name the server's absolute path
            raise InvalidInputError(
                f"log source {name!r} cannot be opened ({exc.strerror or type(exc).__name__})"
            ) from None
        if is_file:
            if (
                root.pattern is not None
                and not path.match(root.pattern)
                and not any(s.name == name for s in _sources([root]))
            ):
                continue
            return Source(Path(name).as_posix(), path, root)
    raise NotFoundError(f"no log source named {name!r}; call logs_sources for the names")


def select_sources(names: list[str] | None, roots: list[Root], *, rotated: bool) -> list[Source]:
    """The named sources, or every log source (current files only unless ``rotated``;
    dev3000's timeline files only when named)."""
    if names:
        return [resolve_source(n, roots) for n in names]
    return [s for s in _sources(roots) if (rotated or not s.rotated) and not s.timeline]
