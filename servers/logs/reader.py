"""Low-level file reading for the logs logic: tail from the end, block scanning, bounded lines.

Everything here is synchronous and bounded (bytes, lines, time); the logic runs it in a
worker thread so the event loop never blocks.
"""

from __future__ import annotations

import gzip
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal, Protocol

import regex

from guilde_core.redaction import redact_text
from servers.logs.parse import MAX_LINE

__all__ = [
    "BLOCK",
    "Match",
    "ScanStats",
    "decode",
    "iter_lines",
    "open_binary",
    "read_from",
    "scan",
    "tail_lines",
]

BLOCK = 4 * 1024 * 1024
#: how far past the cut of an over-long line redaction looks (a secret straddling the cut)
_CUT_MARGIN = 4096
_BACK_BLOCK = 64 * 1024
#: a line longer than this is searched in pieces and never held whole
_MAX_CARRY = 16 * 1024 * 1024


class _Readable(Protocol):
    def readline(self, size: int = -1, /) -> bytes: ...


def decode(raw: bytes | bytearray) -> tuple[str, bool]:
    """Bytes of one line → text (invalid UTF-8 replaced), cut at :data:`MAX_LINE`.

    A line that is cut is redacted first (over a margin past the cut), so the cut never
    leaves the start of a secret that the redaction patterns would no longer recognise."""
    truncated = len(raw) > MAX_LINE
    if truncated:
        head = raw[: MAX_LINE + _CUT_MARGIN].decode("utf-8", errors="replace")
        text = redact_text(head.replace("\x00", "\ufffd"))[:MAX_LINE]
        return text.rstrip("\r\n"), True
    text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
    return text.replace("\x00", "\ufffd"), truncated


def open_binary(path: Path) -> IO[bytes]:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def tail_lines(path: Path, count: int, max_bytes: int) -> tuple[list[tuple[str, bool]], int, bool]:
    """The last ``count`` lines of ``path`` read backwards from its end.

    Returns (lines, bytes read, reached the start). The cost depends on ``count`` and line
    length, not on the file size. Compressed files are streamed (bounded by ``max_bytes``
    of decompressed text kept).
    """
    if path.name.endswith(".gz"):
        window: deque[bytes] = deque(maxlen=count)
        read = 0
        with gzip.open(path, "rb") as fh:
            for raw in _bounded_lines(fh):
                read += len(raw)
                window.append(raw)
        return [decode(r) for r in window], read, True
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        end = fh.tell()
        pos = end
        chunks: list[bytes] = []
        newlines = 0
        read = 0
        while pos > 0 and newlines <= count and read < max_bytes:
            step = min(_BACK_BLOCK, pos)
            pos -= step
            fh.seek(pos)
            chunk = fh.read(step)
            read += len(chunk)
            chunks.append(chunk)
            newlines += chunk.count(b"\n")
        data = b"".join(reversed(chunks))
    at_start = pos == 0
    parts = data.split(b"\n")
    if parts and parts[-1] == b"":
        parts.pop()
    if not at_start and parts:
        parts.pop(0)  # a partial first line
    return [decode(p) for p in parts[-count:]], read, at_start and len(parts) <= count


def _bounded_lines(fh: _Readable) -> Iterator[bytes]:
    """Lines of ``fh``; a line longer than :data:`MAX_LINE` is cut (the rest skipped; the
    margin :func:`decode` redacts past the cut is kept)."""
    while True:
        raw = fh.readline(MAX_LINE + _CUT_MARGIN + 1)
        if not raw:
            return
        if len(raw) > MAX_LINE + _CUT_MARGIN and not raw.endswith(b"\n"):
            while True:  # skip the rest of an over-long line without holding it
                rest = fh.readline(BLOCK)
                if not rest or rest.endswith(b"\n"):
                    break
        yield raw


def iter_lines(fh: _Readable) -> Iterator[tuple[str, bool]]:
    for raw in _bounded_lines(fh):
        yield decode(raw)


def read_from(path: Path, max_bytes: int) -> Iterator[tuple[str, bool]]:
    """Lines of the last ``max_bytes`` of ``path`` (first partial line dropped)."""
    with open_binary(path) as fh:
        if not path.name.endswith(".gz"):
            size = os.fstat(fh.fileno()).st_size
            if size > max_bytes:
                fh.seek(size - max_bytes)
                fh.readline(MAX_LINE + 1)
        yield from iter_lines(fh)


@dataclass
class Match:
    line: int
    text: str
    truncated: bool
    before: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)


@dataclass
class ScanStats:
    scanned_bytes: int = 0
    stopped: Literal["limit", "time_budget"] | None = None


#: ``find(buffer, start, end, timeout)`` → offset of the first hit in ``buffer[start:end]``
Finder = Callable[[bytes | bytearray, int, int, float], int]


def literal_finder(needle: bytes) -> Finder:
    def find(buf: bytes | bytearray, start: int, end: int, timeout: float) -> int:
        return buf.find(needle, start, end)

    return find


def regex_finder(pattern: regex.Pattern[bytes]) -> Finder:
    def find(buf: bytes | bytearray, start: int, end: int, timeout: float) -> int:
        # the engine stops itself at ``timeout`` (TimeoutError) and, told the buffer does
        # not change meanwhile (``concurrent``: the scan reuses it only after this returns),
        # lets go of the GIL while it works: a slow pattern never stalls the event loop
        m = pattern.search(buf, start, end, timeout=max(timeout, 0.001), concurrent=True)
        return -1 if m is None else m.start()

    return find


def _left(deadline: float) -> float:
    """Seconds left until ``deadline`` (monotonic), at least 1 ms (the engine's floor)."""
    return max(deadline - time.monotonic(), 0.001)


def scan(
    path: Path,
    find: Finder,
    *,
    deadline: float,
    context: int,
    accept: Callable[[Match], bool],
    stats: ScanStats,
    verify: Callable[[bytes, float], bool] | None = None,
) -> None:
    """Stream ``path`` in blocks; call ``accept`` for each matching line (one per line).

    ``accept`` returns False to stop. Memory stays within one reused buffer (a block plus
    the carried partial line; an over-long line is searched in pieces); time is bounded by
    ``deadline`` (monotonic), checked per block and given to the regex engine as its
    timeout. Each block is read into the same buffer behind the carried partial line,
    searched once (the first hit's offset is handed on, never searched for again) and
    its newlines counted once, only up to where the line numbers are needed.
    """
    block = BLOCK
    buf = bytearray(block + _BACK_BLOCK)
    view = memoryview(buf)
    held = 0  # bytes of the carried partial line at the start of ``buf``
    line_base = 1  # line number of the first line in the buffer
    before: deque[str] = deque(maxlen=context)
    waiting: list[Match] = []
    with open_binary(path) as fh:
        try:
            while True:
                if time.monotonic() > deadline:
                    stats.stopped = "time_budget"
                    return
                if len(buf) < held + block:  # a long partial line: grow (bounded below)
                    view.release()
                    buf.extend(bytes(held + block - len(buf)))
                    view = memoryview(buf)
                got = fh.readinto(view[held : held + block])  # type: ignore[attr-defined]
                stats.scanned_bytes += got
                eof = got == 0
                end = held + got
                if end == 0:
                    break
                cut = end if eof else buf.rfind(b"\n", 0, end) + 1
                if cut == 0:
                    if end < _MAX_CARRY:
                        held = end
                        continue
                    cut = end  # an enormous line: search this piece now
                first = -1
                if context == 0 and not waiting:
                    try:
                        first = find(buf, 0, cut, _left(deadline))
                    except TimeoutError:
                        stats.stopped = "time_budget"
                        return
                    if first < 0 or first >= cut:  # no hit: count the lines, copy nothing
                        line_base += buf.count(b"\n", 0, cut)
                        held = _keep(buf, cut, end)
                        if eof:
                            break
                        continue
                region = buf if context == 0 and not waiting else bytes(view[:cut])
                ok, line_base = _scan_region(
                    region, cut, first, line_base, find, deadline, before, waiting,
                    context, accept, verify,
                )  # fmt: skip
                if not ok:
                    if stats.stopped is None:
                        stats.stopped = "time_budget" if time.monotonic() > deadline else "limit"
                    return
                held = _keep(buf, cut, end)
                if eof:
                    break
        finally:
            view.release()


def _keep(buf: bytearray, cut: int, end: int) -> int:
    """Move the partial line ``buf[cut:end]`` to the start of ``buf``; its length."""
    if cut < end:
        buf[: end - cut] = buf[cut:end]
    return end - cut


def _scan_region(
    region: bytes | bytearray,
    cut: int,
    first: int,
    line_base: int,
    find: Finder,
    deadline: float,
    before: deque[str],
    waiting: list[Match],
    context: int,
    accept: Callable[[Match], bool],
    verify: Callable[[bytes, float], bool] | None,
) -> tuple[bool, int]:
    """Hits in ``region[:cut]`` (whole lines); ``first`` is the first hit's offset when
    the caller found it already (else -1). Returns (go on, line number after ``cut``)."""
    # lines after earlier matches (context spanning the block boundary)
    if waiting:
        lines = bytes(region[:cut]).split(b"\n", context)[:context]
        for m in list(waiting):
            for raw in lines:
                if len(m.after) < context:
                    m.after.append(decode(raw)[0])
            waiting.remove(m)
    pos = 0
    counted_to = 0
    line_no = line_base
    while True:
        if first >= 0:
            hit, first = first, -1
        else:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False, line_no
            try:
                hit = find(region, pos, cut, remaining)
            except TimeoutError:
                return False, line_no
        if hit < 0 or hit >= cut:
            break
        start = region.rfind(b"\n", 0, hit) + 1
        end = region.find(b"\n", hit, cut)
        end = cut if end < 0 else end
        raw = bytes(region[start:end])
        line_no += region.count(b"\n", counted_to, start)
        counted_to = start
        pos = end + 1
        if verify is not None:
            try:
                if not verify(raw, _left(deadline)):
                    if pos >= cut:
                        break
                    continue
            except TimeoutError:
                return False, line_no
        text, truncated = decode(raw)
        match = Match(line_no, text, truncated)
        if context:
            prev = _lines_before(region, start, context)
            match.before = ([*before, *prev])[-context:]
            nxt = region[pos:cut].split(b"\n", context)[:context] if pos < cut else []
            match.after = [decode(r)[0] for r in nxt if r or pos < cut][:context]
            if len(match.after) < context:
                waiting.append(match)
        if not accept(match):
            return False, line_no
        if pos >= cut:
            break
    if context:
        for text in _lines_before(region, cut, context):
            before.append(text)
    return True, line_no + region.count(b"\n", counted_to, cut)


def _lines_before(region: bytes | bytearray, start: int, count: int) -> list[str]:
    out: list[str] = []
    end = start - 1  # the newline ending the previous line
    while len(out) < count and end > 0:
        begin = region.rfind(b"\n", 0, end) + 1
        out.append(decode(region[begin:end])[0])
        end = begin - 1
    return list(reversed(out))
