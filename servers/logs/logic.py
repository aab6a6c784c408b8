"""Logs diagnostics as plain async functions returning Pydantic models.

Public functions (each takes ``settings=None`` → the process settings):

* :func:`list_log_sources` — readable files under ``DEV3000_LOG_PATHS``;
* :func:`tail` — last N entries (min level, since), read from the END of each file;
* :func:`search` — literal or regex search, streamed in blocks with a time budget;
* :func:`error_groups` — errors/exceptions grouped by a normalised signature;
* :func:`trace` — every entry carrying a correlation id, in time order;
* :func:`follow` — async generator of new entries (handles rotation and truncation).

Every entry returned is redacted.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import regex

from guilde_core.config import Settings, get_settings
from guilde_core.errors import InvalidInputError
from guilde_core.redaction import redact, redact_text
from servers.logs.gate import SEARCHES
from servers.logs.models import (
    ErrorGroup,
    ErrorGroupsResult,
    Level,
    LogEntry,
    SearchResult,
    SourceList,
    TailResult,
    TraceResult,
)
from servers.logs.parse import EntryJoiner, level_at_least, parse_line
from servers.logs.reader import (
    Match,
    ScanStats,
    literal_finder,
    read_from,
    regex_finder,
    scan,
    tail_lines,
)
from servers.logs.sources import Root, list_sources, roots_from, select_sources

__all__ = [
    "budget_for",
    "error_groups",
    "follow",
    "list_log_sources",
    "search",
    "tail",
    "trace",
]

_TAIL_MAX_BYTES = 64 * 1024 * 1024
_GROUP_MAX_BYTES = 32 * 1024 * 1024


def _roots(settings: Settings | None) -> list[Root]:
    s = settings or get_settings()
    return roots_from(list(s.dev3000_log_paths))


def _clean(entry: LogEntry) -> LogEntry:
    return redact(entry)


def _aware(ts: datetime | None) -> datetime | None:
    if ts is not None and ts.tzinfo is None:
        return ts.replace(tzinfo=UTC)
    return ts


def _in_window(entry: LogEntry, since: datetime | None, until: datetime | None) -> bool:
    if since is None and until is None:
        return True
    if entry.ts is None:
        return False
    if since is not None and entry.ts < since:
        return False
    return not (until is not None and entry.ts > until)


def _time_order(entries: list[LogEntry]) -> list[LogEntry]:
    """Stable sort by time; an entry without a timestamp keeps its predecessor's."""
    keyed: list[tuple[datetime, int, LogEntry]] = []
    last = datetime.min.replace(tzinfo=UTC)
    for i, e in enumerate(entries):
        if e.ts is not None:
            last = e.ts
        keyed.append((last, i, e))
    keyed.sort(key=lambda k: (k[0], k[1]))
    return [e for _, _, e in keyed]


# --- sources -------------------------------------------------------------------------------
async def list_log_sources(settings: Settings | None = None) -> SourceList:
    roots = _roots(settings)
    sources = await asyncio.to_thread(list_sources, roots)
    return SourceList(
        sources=sources,
        roots=[r.spec for r in roots],
        missing_roots=[r.spec for r in roots if not r.directory.is_dir()],
    )


# --- tail ----------------------------------------------------------------------------------
def _tail_one(
    path: Path, name: str, n: int, min_level: Level | None, since: datetime | None
) -> tuple[list[LogEntry], int]:
    """The last ``n`` entries of one file, redacted: each raw line is screened once
    (:func:`~guilde_core.redaction.may_hold_secret`) and only the entries built from a
    line that may hold a secret go through :func:`~guilde_core.redaction.redact`."""
    # without filters a few extra lines cover joined tracebacks; filters need a wider window
    want = n + 64 if min_level is None and since is None else max(n * 2, 50)
    total_read = 0
    while True:
        lines, read, at_start = tail_lines(path, want, _TAIL_MAX_BYTES)
        total_read = read
        joiner = EntryJoiner(name, screen=True)
        entries: list[LogEntry] = []
        suspects: list[bool] = []
        for text, truncated in lines:
            done = joiner.feed(text, None, truncated)
            if done is not None:
                entries.append(done)
                suspects.append(joiner.suspect)
        last = joiner.flush()
        if last is not None:
            entries.append(last)
            suspects.append(joiner.suspect)
        kept = [
            (e, suspect)
            for e, suspect in zip(entries, suspects, strict=True)
            if level_at_least(e.level, min_level) and _in_window(e, since, None)
        ]
        oldest = next((e.ts for e in entries if e.ts is not None), None)
        enough = len(kept) > n or (since is not None and oldest is not None and oldest < since)
        if enough or at_start or read >= _TAIL_MAX_BYTES or len(lines) < want:
            return [_clean(e) if suspect else e for e, suspect in kept[-n:]], total_read
        want *= 4


async def tail(
    sources: list[str] | None = None,
    lines: int = 100,
    min_level: Level | None = None,
    since: datetime | None = None,
    settings: Settings | None = None,
) -> TailResult:
    """The last ``lines`` entries of the given sources (default: every current file)."""
    if not 1 <= lines <= 10_000:
        raise InvalidInputError("lines must be between 1 and 10000")
    since = _aware(since)
    roots = _roots(settings)
    chosen = select_sources(sources, roots, rotated=False)

    def work() -> TailResult:
        merged: list[LogEntry] = []
        read = 0
        for src in chosen:
            entries, got = _tail_one(src.path, src.name, lines, min_level, since)
            merged.extend(entries)
            read += got
        ordered = _time_order(merged)[-lines:]  # redacted by _tail_one
        return TailResult(
            entries=ordered,
            sources=[s.name for s in chosen],
            bytes_read=read,
        )

    return await asyncio.to_thread(work)


# --- search --------------------------------------------------------------------------------
@dataclass
class _Query:
    finder: Any
    verify: Any


def _compile(query: str, use_regex: bool, ignore_case: bool) -> _Query:
    if not query:
        raise InvalidInputError("the search text may not be empty")
    if "\x00" in query:
        raise InvalidInputError("the search text may not contain NUL bytes")
    if not use_regex and not ignore_case:
        return _Query(literal_finder(query.encode("utf-8")), None)
    source = query if use_regex else regex.escape(query)
    flags = regex.IGNORECASE if ignore_case else 0
    try:
        pattern = regex.compile(source.encode("utf-8"), flags | regex.MULTILINE)
    except regex.error as exc:
        raise InvalidInputError(f"invalid regular expression: {exc}") from None

    def verify(line: bytes, timeout: float) -> bool:
        return pattern.search(line, timeout=timeout) is not None

    return _Query(regex_finder(pattern), verify)


class _SearchRun:
    """What one search has found so far (read by the caller when it stops waiting)."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.stats = ScanStats()
        self.found: list[LogEntry] = []
        self.matched = 0
        self.scanned: list[str] = []
        self.abandoned = False  # the caller answered at its budget: stop at the next match

    def result(self, *, stopped: Literal["time_budget"] | None = None) -> SearchResult:
        reason = stopped or self.stats.stopped
        return SearchResult(
            entries=[_clean(e) for e in list(self.found)],
            matched=self.matched,
            scanned_bytes=self.stats.scanned_bytes,
            scanned_sources=list(self.scanned),
            elapsed_ms=round((time.monotonic() - self.started) * 1000, 3),
            stopped_early=reason is not None,
            stop_reason=reason,
        )


#: how long past its budget a caller waits for the worker before answering without it
_ANSWER_GRACE = 0.25


def budget_for(requested: float | None, settings: Settings | None = None) -> float:
    """The time budget a search gets: the caller's, capped by
    ``DIAGNOSTIC_SEARCH_TIME_BUDGET`` (the server's limit, also the default)."""
    limit = (settings or get_settings()).diagnostic_search_time_budget
    if requested is None:
        return limit
    if not 0 < requested <= 60:
        raise InvalidInputError("time_budget must be in (0, 60] seconds")
    return min(requested, limit)


async def _bounded[T](
    work: Callable[[], T], budget: float, caller: str | None, settings: Settings | None
) -> T | None:
    """Run ``work()`` in a worker thread holding one of the caller's search slots; wait at
    most ``budget`` (+ a grace) for it: its result, or None when the caller stopped waiting.
    The slot is given back when the thread ends, however long after that."""
    s = settings or get_settings()
    release = SEARCHES.acquire(caller or "local", s.diagnostic_search_concurrency)
    try:
        task: asyncio.Future[T] = asyncio.ensure_future(asyncio.to_thread(work))
    except BaseException:
        release()
        raise

    def finished(done: asyncio.Future[T]) -> None:
        release()
        if not done.cancelled():
            done.exception()  # retrieved: an abandoned worker's error is not "never retrieved"

    task.add_done_callback(finished)
    done, _ = await asyncio.wait({task}, timeout=budget + _ANSWER_GRACE)
    return task.result() if task in done else None


async def search(
    query: str,
    regex: bool = False,
    sources: list[str] | None = None,
    level: Level | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    context: int = 0,
    ignore_case: bool = False,
    include_rotated: bool = True,
    time_budget: float | None = None,
    settings: Settings | None = None,
    caller: str | None = None,
) -> SearchResult:
    """Lines matching ``query`` (literal, or a regex when ``regex``), oldest source first.

    Files are streamed in 4 MiB blocks (bounded memory); the search stops at ``limit``
    matches or after ``time_budget`` seconds (default and cap:
    ``DIAGNOSTIC_SEARCH_TIME_BUDGET``) and says so in ``stopped_early``. The budget is
    hard: every regex call gets what is left of it as the engine's timeout, and the answer
    (with what was found so far) comes at the budget even when the worker is starved of
    CPU. ``caller`` (an API key id, a client address) holds one of its
    ``DIAGNOSTIC_SEARCH_CONCURRENCY`` search slots until the worker ends; one more is a
    :class:`~guilde_core.errors.RateLimitExceededError`.
    """
    if not 1 <= limit <= 10_000:
        raise InvalidInputError("limit must be between 1 and 10000")
    if not 0 <= context <= 20:
        raise InvalidInputError("context must be between 0 and 20 lines")
    budget = budget_for(time_budget, settings)
    compiled = _compile(query, regex, ignore_case)
    since, until = _aware(since), _aware(until)
    roots = _roots(settings)
    chosen = select_sources(sources, roots, rotated=include_rotated)
    # oldest generation first: api.log.3.gz, api.log.2, api.log.1, api.log
    chosen.sort(key=lambda s: (s.path.stat().st_mtime if s.path.exists() else 0, s.name))
    run = _SearchRun()

    def work() -> SearchResult:
        deadline = run.started + budget
        for src in chosen:
            if run.stats.stopped or run.abandoned:
                break
            run.scanned.append(src.name)

            def accept(m: Match, name: str = src.name) -> bool:
                entry = parse_line(m.text, name, m.line)
                if not level_at_least(entry.level, level) or not _in_window(entry, since, until):
                    return not run.abandoned
                run.matched += 1
                entry.truncated = m.truncated
                entry.context_before = m.before
                entry.context_after = m.after
                run.found.append(entry)
                return len(run.found) < limit and not run.abandoned

            try:
                scan(
                    src.path,
                    compiled.finder,
                    deadline=deadline,
                    context=context,
                    accept=accept,
                    stats=run.stats,
                    verify=compiled.verify,
                )
            except (OSError, EOFError) as exc:  # unreadable / corrupt gzip: skip that file
                run.found.append(
                    LogEntry(
                        source=src.name,
                        message=f"(could not read: {type(exc).__name__})",
                        format="raw",
                        level="warning",
                    )
                )
        return run.result()

    result = await _bounded(work, budget, caller, settings)
    if result is not None:
        return result
    run.abandoned = True
    return run.result(stopped="time_budget")


# --- error groups --------------------------------------------------------------------------
_NORMALISE = [
    (
        re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I),
        "<uuid>",
    ),
    (re.compile(r"\b0x[0-9a-f]+\b", re.I), "<hex>"),
    (re.compile(r"\b[0-9a-f]{16,}\b", re.I), "<hex>"),
    (re.compile(r"'[^']*'|\"[^\"]*\""), "<str>"),
    (re.compile(r"\d+(?:\.\d+)?"), "<n>"),
    (re.compile(r"\s+"), " "),
]


def fingerprint(entry: LogEntry) -> tuple[str, str | None]:
    """(normalised signature, exception type) of an error entry."""
    exception = entry.fields.get("exception")
    lines = entry.message.splitlines() or [""]
    if exception:
        last = next((ln for ln in reversed(lines) if ln.startswith(str(exception))), lines[-1])
        base = last
    else:
        base = lines[0]
    # redaction first: normalising (digits -> <n>, quoted -> <str>) would break a secret's
    # shape (sk-ab12cd34 -> sk-ab<n>cd<n>) so that redaction no longer sees it
    base = redact_text(base)
    for pattern, repl in _NORMALISE:
        base = pattern.sub(repl, base)
    prefix = redact_text(entry.logger) + ": " if entry.logger else ""
    return (prefix + base.strip())[:300], str(exception) if exception else None


async def error_groups(
    sources: list[str] | None = None,
    since: datetime | None = None,
    limit: int = 20,
    time_budget: float | None = None,
    settings: Settings | None = None,
    caller: str | None = None,
) -> ErrorGroupsResult:
    """Errors and exceptions (level ≥ error or a traceback) grouped by fingerprint, biggest
    first; reads the last 32 MiB of each source within the time budget (as :func:`search`,
    whose search slots it shares)."""
    if not 1 <= limit <= 500:
        raise InvalidInputError("limit must be between 1 and 500")
    budget = budget_for(time_budget, settings)
    since = _aware(since)
    roots = _roots(settings)
    chosen = select_sources(sources, roots, rotated=False)
    groups: dict[str, dict[str, Any]] = {}
    tally = {"seen": 0, "scanned": 0}
    stopped: list[str] = []  # the stop reason, once there is one

    def take(entry: LogEntry) -> None:
        if not (level_at_least(entry.level, "error") or "exception" in entry.fields):
            return
        if not _in_window(entry, since, None) and since is not None:
            return
        tally["seen"] += 1
        sig, exc = fingerprint(entry)
        g = groups.get(sig)
        if g is None:
            groups[sig] = {
                "exception": exc,
                "count": 1,
                "first": entry.ts,
                "last": entry.ts,
                "sources": {entry.source},
                "sample": entry,
            }
            return
        g["count"] += 1
        g["sources"].add(entry.source)
        if entry.ts is not None:
            if g["first"] is None or entry.ts < g["first"]:
                g["first"] = entry.ts
            if g["last"] is None or entry.ts > g["last"]:
                g["last"] = entry.ts
                g["sample"] = entry

    def build() -> ErrorGroupsResult:
        snapshot = dict(groups)
        ordered = sorted(snapshot.items(), key=lambda kv: -int(kv[1]["count"]))[:limit]
        return ErrorGroupsResult(
            groups=[
                ErrorGroup(
                    fingerprint=sig,
                    exception=g["exception"],
                    count=g["count"],
                    first_seen=g["first"],
                    last_seen=g["last"],
                    sources=sorted(set(g["sources"])),
                    sample=_clean(g["sample"]),
                )
                for sig, g in ordered
            ],
            errors_seen=tally["seen"],
            scanned_bytes=tally["scanned"],
            stopped_early=bool(stopped),
            stop_reason=stopped[0] if stopped else None,
        )

    def work() -> ErrorGroupsResult:
        deadline = time.monotonic() + budget
        for src in chosen:
            joiner = EntryJoiner(src.name)
            try:
                for i, (text, truncated) in enumerate(read_from(src.path, _GROUP_MAX_BYTES)):
                    tally["scanned"] += len(text) + 1
                    if i % 2048 == 0 and (stopped or time.monotonic() > deadline):
                        stopped[:] = stopped or ["time_budget"]
                        break
                    done = joiner.feed(text, None, truncated)
                    if done is not None:
                        take(done)
            except (OSError, EOFError):
                continue
            last = joiner.flush()
            if last is not None:
                take(last)
            if stopped:
                break
        return build()

    result = await _bounded(work, budget, caller, settings)
    if result is None:  # answered at the budget; the worker stops at its next check
        stopped[:] = ["time_budget"]
        result = build()
    return redact(result)


# --- trace ---------------------------------------------------------------------------------
async def trace(
    correlation_id: str,
    limit: int = 500,
    time_budget: float | None = None,
    settings: Settings | None = None,
    caller: str | None = None,
) -> TraceResult:
    """Every entry mentioning ``correlation_id`` across every source, in time order."""
    cid = correlation_id.strip()
    if not re.fullmatch(r"[A-Za-z0-9][\w\-.:]{3,127}", cid):
        raise InvalidInputError("a correlation id is 4-128 letters, digits, '-', '_', '.' or ':'")
    found = await search(
        cid,
        limit=limit,
        time_budget=time_budget,
        include_rotated=True,
        settings=settings,
        caller=caller,
    )
    entries = _time_order(found.entries)
    return TraceResult(
        correlation_id=cid,
        entries=entries,
        sources=sorted({e.source for e in entries}),
        stopped_early=found.stopped_early,
        stop_reason=found.stop_reason,
    )


# --- follow --------------------------------------------------------------------------------
@dataclass
class _Followed:
    path: Path
    name: str
    inode: int
    offset: int
    joiner: EntryJoiner
    carry: bytes = b""


async def follow(
    sources: list[str] | None = None,
    *,
    from_start: bool = False,
    poll_interval: float = 0.25,
    settings: Settings | None = None,
) -> AsyncIterator[LogEntry]:
    """New entries of the sources as they are written (redacted), forever.

    Files present at the start are followed from their end (``from_start`` to read them
    whole); files that appear later, or replace a rotated file, are read from their start;
    a truncated file is re-read from 0. A traceback is yielded as one entry once the next
    entry starts or the file stays quiet for one poll.
    """
    roots = _roots(settings)
    files: dict[str, _Followed] = {}

    def discover(initial: bool) -> None:
        for src in select_sources(sources, roots, rotated=False):
            if src.name in files:
                continue
            try:
                st = src.path.stat()
            except OSError:
                continue
            start = st.st_size if initial and not from_start else 0
            files[src.name] = _Followed(src.path, src.name, st.st_ino, start, EntryJoiner(src.name))

    def read_new(f: _Followed) -> list[LogEntry]:
        out: list[LogEntry] = []
        try:
            st = f.path.stat()
        except OSError:
            return out
        if st.st_ino != f.inode or st.st_size < f.offset:
            f.inode, f.offset, f.carry = st.st_ino, 0, b""  # rotated or truncated
        if st.st_size == f.offset:
            last = f.joiner.flush()
            return [last] if last is not None else out
        with open(f.path, "rb") as fh:
            fh.seek(f.offset)
            data = fh.read(min(st.st_size - f.offset, 8 * 1024 * 1024))
        f.offset += len(data)
        data = f.carry + data
        cut = data.rfind(b"\n") + 1
        f.carry = data[cut:]
        for raw in data[:cut].split(b"\n")[:-1]:
            text = raw.decode("utf-8", errors="replace").rstrip("\r")
            done = f.joiner.feed(text)
            if done is not None:
                out.append(done)
        return out

    await asyncio.to_thread(discover, True)
    while True:
        batch: list[LogEntry] = []
        for f in list(files.values()):
            batch.extend(await asyncio.to_thread(read_new, f))
        for entry in batch:
            yield _clean(entry)
        await asyncio.sleep(poll_interval)
        await asyncio.to_thread(discover, False)
