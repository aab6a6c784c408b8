"""Browser capture: a headless Chromium watching one page, its activity as timeline events.

:class:`BrowserCapture` drives the system's Chromium (never a downloaded build) through
Playwright, and turns what the page does into redacted :class:`BrowserRecord` s, each also
published as a timeline event (source ``browser``) through ``sink`` and appended as a JSON
line to ``<log dir>/browser/browser.jsonl`` (a log source for the logs tools):

* console errors and warnings with their source location (``browser_console``);
* uncaught exceptions with their stack (``browser_exception``), a screenshot follows;
* failed requests and responses ≥ 400: method, URL, status, time to first byte, and the
  correlation id the capture gave the request (``browser_request``);
* navigations, and page loads with navigation timings and the Web Vitals the page exposes
  (FCP, LCP, CLS) (``browser_navigation``);
* screenshots on error and on demand (``browser_screenshot``), kept in memory, bounded;
* launches, crashes and restarts (``browser_lifecycle``).

Correlation: the page's fetch/XHR requests to the watched origins carry ``X-Request-ID: <id>``
and ``traceparent: 00-<id>-<span>-01`` (an id the page set itself is kept), so the backend's log
lines for that request carry the same id as the browser's record of it. Requests to the page's
own origin get them from a script injected through CDP before the page's scripts run
(:data:`_TAG_JS`, wrapping ``fetch`` and ``XMLHttpRequest``): nothing is paused, the ids are read
back from the request's headers. A watched origin other than the page's is tagged at the network
level instead — its requests paused through the CDP ``Fetch`` domain and continued with the
headers — because headers a page script adds to a cross-origin request would make the browser
send a CORS preflight the backend may refuse.

Never captured: request or response headers (so no cookies, no ``Authorization``), bodies,
query values other than short plain ones (:func:`servers.browser.scrub.scrub_url`). Every
text passes the project's redactor.

Supervision: a crashed page or a lost browser is relaunched with exponential back-off
(0.5 s doubling to 30 s, reset after a minute of good running). Buffers are bounded:
``buffer_size`` records, 20 screenshots, 1,000 pending correlation ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import shutil
import time
import uuid
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

import orjson

from guilde_core.errors import ConfigurationError, InvalidInputError, ServiceUnavailableError
from guilde_core.events import EventKind, Severity, TimelineEvent, make_event
from guilde_core.http.hosts import origin_of
from guilde_core.rotating import RotatingFile
from servers.browser.models import (
    ActionResult,
    BrowserRecord,
    BrowserStatus,
    RecordKind,
    RecordList,
    ScreenshotInfo,
)
from servers.browser.scrub import clean_text, scrub_url

__all__ = [
    "CHROMIUM_ARGS",
    "LOG_DIRNAME",
    "BrowserCapture",
    "CaptureConfig",
    "find_chromium",
]

log = logging.getLogger(__name__)

#: flags for the system Chromium: headless, no GPU, nothing that calls home
CHROMIUM_ARGS: tuple[str, ...] = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
#: the capture's log source lives in ``<log dir>/browser/`` (the timeline's log follower
#: skips it: its errors are already browser events)
LOG_DIRNAME = "browser"
_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
_KINDS: dict[RecordKind, EventKind] = {
    "console": "browser_console",
    "exception": "browser_exception",
    "request": "browser_request",
    "navigation": "browser_navigation",
    "screenshot": "browser_screenshot",
    "lifecycle": "browser_lifecycle",
}
_TIMINGS_JS = """
async () => {
  const nav = performance.getEntriesByType('navigation')[0] || null;
  const paints = {};
  for (const p of performance.getEntriesByType('paint')) paints[p.name] = p.startTime;
  const take = (type) => new Promise((resolve) => {
    const out = [];
    try {
      const po = new PerformanceObserver((list) => { out.push(...list.getEntries()); });
      po.observe({type, buffered: true});
      setTimeout(() => { po.disconnect(); resolve(out); }, 0);
    } catch (e) { resolve(out); }
  });
  const [lcp, shifts] = await Promise.all([take('largest-contentful-paint'), take('layout-shift')]);
  const slowest = performance.getEntriesByType('resource')
    .map((r) => ({url: r.name, type: r.initiatorType, ms: Math.round(r.duration)}))
    .sort((a, b) => b.ms - a.ms).slice(0, 3);
  const load = nav ? (nav.loadEventEnd || nav.loadEventStart || performance.now()) : null;
  return {
    ttfb_ms: nav ? nav.responseStart : null,
    dom_content_loaded_ms: nav ? nav.domContentLoadedEventEnd : null,
    load_ms: load,
    fcp_ms: paints['first-contentful-paint'] ?? null,
    lcp_ms: lcp.length ? lcp[lcp.length - 1].startTime : null,
    cls: shifts.filter((s) => !s.hadRecentInput).reduce((a, s) => a + s.value, 0),
    transfer_bytes: nav ? nav.transferSize : null,
    slowest,
  };
}
"""

# Tags the page's same-origin fetch/XHR requests with a correlation id (the module doc). Runs
# before the page's own scripts; a call it cannot rebuild (a streamed body, say) goes out as the
# page made it.
_TAG_JS = """
(() => {
  if (window.__dev3000Tagged) return;
  window.__dev3000Tagged = true;
  const hex = (n) => Array.from(crypto.getRandomValues(new Uint8Array(n)),
    (b) => b.toString(16).padStart(2, '0')).join('');
  const sameOrigin = (url) => {
    try { return new URL(url, location.href).origin === location.origin; } catch (e) { return false; }
  };
  const tag = (get, set) => {
    const parent = get('traceparent');
    let rid = get('x-request-id');
    if (!rid && parent) { const p = parent.split('-'); if (p.length === 4) rid = p[1]; }
    rid = rid || hex(16);
    if (!parent) set('traceparent', `00-${rid}-${hex(8)}-01`);
    if (!get('x-request-id')) set('X-Request-ID', rid);
  };
  const nativeFetch = window.fetch;
  window.fetch = function (input, init) {
    let request = null;
    try {
      request = new Request(input, init);
    } catch (e) {
      return nativeFetch.apply(window, arguments);
    }
    if (sameOrigin(request.url)) {
      const headers = new Headers(request.headers);
      tag((n) => headers.get(n), (n, v) => headers.set(n, v));
      return nativeFetch.call(window, new Request(request, { headers }));
    }
    return nativeFetch.call(window, request);
  };
  const xhr = XMLHttpRequest.prototype;
  const open = xhr.open, setHeader = xhr.setRequestHeader, send = xhr.send;
  const seen = new WeakMap();
  xhr.open = function (method, url) {
    seen.set(this, { url: String(url), headers: {} });
    return open.apply(this, arguments);
  };
  xhr.setRequestHeader = function (name, value) {
    const s = seen.get(this);
    if (s) s.headers[String(name).toLowerCase()] = String(value);
    return setHeader.apply(this, arguments);
  };
  xhr.send = function () {
    const s = seen.get(this);
    if (s && sameOrigin(s.url)) {
      try { tag((n) => s.headers[n] ?? null, (n, v) => setHeader.call(this, n, v)); } catch (e) {}
    }
    return send.apply(this, arguments);
  };
})();
"""

Sink = Callable[[TimelineEvent], None]
State = Literal["starting", "running", "restarting", "stopped", "failed"]


def find_chromium(configured: str | None = None) -> str | None:
    """The Chromium to drive: ``configured`` when it exists, else one on ``PATH``."""
    if configured:
        found = shutil.which(configured)
        return found or (configured if Path(configured).is_file() else None)
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class CaptureConfig:
    """What to watch and how (see the module doc)."""

    url: str
    executable: str | None = None
    log_dir: Path | None = None
    correlate: bool = True
    origins: tuple[str, ...] = ()
    screenshot_on_error: bool = True
    buffer_size: int = 500
    slow_load_ms: float = 3000.0
    screenshots_kept: int = 20
    screenshot_interval: float = 2.0
    initial_backoff: float = 0.5
    max_backoff: float = 30.0
    reset_after: float = 60.0
    action_timeout: float = 10.0
    navigation_timeout: float = 20.0
    viewport: tuple[int, int] = (1280, 800)

    def __post_init__(self) -> None:
        if origin_of(self.url) is None:
            raise ConfigurationError(f"DEV3000_BROWSER_URL: {self.url!r} is not an http(s) URL")

    @classmethod
    def from_settings(cls, settings: Any, *, url: str | None = None, log_dir: Path | None = None,
                      **overrides: Any) -> CaptureConfig:  # fmt: skip
        """From ``DEV3000_BROWSER_*`` (``url`` overrides ``DEV3000_BROWSER_URL``)."""
        target = url or settings.dev3000_browser_url
        if not target:
            raise ConfigurationError("no page to watch: set DEV3000_BROWSER_URL or --browser")
        origins = list(settings.dev3000_browser_origins)
        if not origins:
            origins = [o for o in (origin_of(target), origin_of(settings.dev3000_backend_url)) if o]
        values: dict[str, Any] = {
            "url": target,
            "executable": settings.dev3000_browser_executable,
            "log_dir": log_dir,
            "correlate": settings.dev3000_browser_correlate,
            "origins": tuple(dict.fromkeys(o.rstrip("/").lower() for o in origins)),
            "screenshot_on_error": settings.dev3000_browser_screenshot_on_error,
            "buffer_size": settings.dev3000_browser_buffer_size,
            "slow_load_ms": settings.dev3000_browser_slow_load_ms,
        }
        values.update(overrides)
        return cls(**values)


@dataclass
class _Shot:
    info: ScreenshotInfo
    png: bytes = field(repr=False)


class BrowserCapture:
    """Watches ``config.url`` in a supervised headless Chromium (see the module doc)."""

    def __init__(self, config: CaptureConfig, sink: Sink | None = None) -> None:
        self.config = config
        self.sink = sink
        self.records: deque[BrowserRecord] = deque(maxlen=config.buffer_size)
        self.total = 0
        self.counts: Counter[str] = Counter()
        self.shots: deque[_Shot] = deque(maxlen=config.screenshots_kept)
        self.state: State = "stopped"
        self.launches = 0
        self.crashes = 0
        self.last_error: str | None = None
        self.browser_version: str | None = None
        self.running = asyncio.Event()
        self._log = (
            RotatingFile(config.log_dir / LOG_DIRNAME / "browser.jsonl")
            if config.log_dir is not None
            else None
        )
        self._ids: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._failed_ids: deque[str] = deque(maxlen=20)
        #: when the last screenshot after an error of each kind was taken (monotonic)
        self._last_auto_shot: dict[str, float] = {}
        self._pw: Any = None
        self._browser: Any = None
        self._context: Any = None
        self.page: Any = None
        self._lost: asyncio.Event = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._action_lock = asyncio.Lock()

    # --- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        """Start the supervised browser (returns at once; see :attr:`running`)."""
        if self._task is None:
            self._stopping = False
            self.state = "starting"
            self._task = asyncio.create_task(self._supervise(), name="browser-capture")

    async def stop(self) -> None:
        """Close the browser and stop supervising; the records stay readable."""
        self._stopping = True
        self._lost.set()
        task, self._task = self._task, None
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), 15)
            except (TimeoutError, asyncio.CancelledError, Exception):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        for pending in list(self._background):
            pending.cancel()
        await self._teardown()
        self.state = "stopped"
        self.running.clear()
        if self._log is not None:
            self._log.close()

    async def wait_running(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        """Wait until the page is up (raises :class:`ServiceUnavailableError` on timeout)."""
        try:
            await asyncio.wait_for(self.running.wait(), timeout)
        except TimeoutError:
            raise ServiceUnavailableError(
                f"the browser capture is not running ({self.last_error or self.state})"
            ) from None

    async def _supervise(self) -> None:
        backoff = self.config.initial_backoff
        while not self._stopping:
            started = time.monotonic()
            try:
                await self._launch()
            except ConfigurationError as exc:
                self.last_error = exc.message
                self.state = "failed"
                self._lifecycle("error", f"browser capture cannot start: {exc.message}")
                return
            except Exception as exc:
                self.last_error = clean_text(f"{type(exc).__name__}: {exc}", 300)
                if not self._stopping:
                    self._lifecycle("error", f"browser launch failed: {self.last_error}")
            else:
                await self._lost.wait()
            self.running.clear()
            await self._teardown()
            if self._stop_requested():
                return
            if time.monotonic() - started >= self.config.reset_after:
                backoff = self.config.initial_backoff
            self.state = "restarting"
            self._lifecycle(
                "warning",
                f"browser restarting in {backoff:.1f}s (launch {self.launches + 1})",
                {"delay_seconds": round(backoff, 3)},
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.config.max_backoff)

    def _stop_requested(self) -> bool:
        return self._stopping

    async def _launch(self) -> None:
        from playwright.async_api import async_playwright

        executable = find_chromium(self.config.executable)
        if executable is None:
            raise ConfigurationError(
                "no Chromium found: install it (Debian: apt-get install chromium) or set "
                "DEV3000_BROWSER_EXECUTABLE"
            )
        self._lost = asyncio.Event()
        self._pw = await async_playwright().start()
        self._browser = await self._pw.chromium.launch(
            executable_path=executable, headless=True, args=list(CHROMIUM_ARGS), timeout=30_000
        )
        self.browser_version = self._browser.version
        self._browser.on("disconnected", lambda _b: self._on_lost("browser disconnected"))
        width, height = self.config.viewport
        self._context = await self._browser.new_context(viewport={"width": width, "height": height})
        page = await self._context.new_page()
        page.set_default_timeout(self.config.action_timeout * 1000)
        page.set_default_navigation_timeout(self.config.navigation_timeout * 1000)
        self._attach(page)
        if self.config.correlate and self.config.origins:
            await self._correlate(page)
        self.page = page
        self.launches += 1
        self._lifecycle(
            "info",
            f"browser started (Chromium {self.browser_version}), watching "
            f"{scrub_url(self.config.url)}",
            {"launch": self.launches, "executable": executable},
        )
        try:
            await page.goto(self.config.url, wait_until="load")
        except Exception as exc:  # the page may come up later: keep watching it
            self._record(
                "navigation",
                "error",
                f"could not load {scrub_url(self.config.url)}: {clean_text(str(exc), 300)}",
                url=scrub_url(self.config.url),
            )
        self.state = "running"
        self.running.set()

    async def _teardown(self) -> None:
        browser, pw = self._browser, self._pw
        self._browser = self._pw = self._context = self.page = None
        if browser is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(browser.close(), 10)
        if pw is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pw.stop(), 10)

    def _on_lost(self, why: str) -> None:
        if self._stopping or self._lost.is_set():
            return
        self.crashes += 1
        self.last_error = why
        self._lifecycle("error", why)
        self._lost.set()

    # --- listeners -------------------------------------------------------------------
    def _attach(self, page: Any) -> None:
        page.on("console", self._on_console)
        page.on("pageerror", self._on_pageerror)
        page.on("requestfailed", self._on_requestfailed)
        page.on("response", self._on_response)
        page.on("framenavigated", self._on_navigated)
        page.on("load", lambda _p: self._spawn(self._page_loaded()))
        page.on("crash", lambda _p: self._on_lost("page crashed"))

    def _on_console(self, msg: Any) -> None:
        kind = msg.type
        if kind not in ("error", "warning", "assert"):
            self.counts["console_other"] += 1
            return
        text = msg.text or ""
        if text.startswith("Failed to load resource"):
            return  # the request itself is recorded, with its status and id
        location = msg.location or {}
        where = scrub_url(location.get("url")) or ""
        line = location.get("lineNumber")
        level: Severity = "warning" if kind == "warning" else "error"
        # a page that reports a failed call often quotes its request id: link them
        cid = next((rid for rid in self._failed_ids if rid in text), None)
        record = self._record(
            "console",
            level,
            f"console.{'warn' if kind == 'warning' else kind}: {clean_text(text, 1000)}",
            url=where or None,
            correlation_id=cid,
            data={"source": where, "line": line, "column": location.get("columnNumber")},
        )
        if level == "error":
            self._auto_screenshot(record)

    def _on_pageerror(self, error: Any) -> None:
        name = getattr(error, "name", None) or "Error"
        message = getattr(error, "message", None) or str(error)
        stack = getattr(error, "stack", None) or ""
        frames = [ln.strip() for ln in stack.splitlines() if ln.strip().startswith("at ")]
        record = self._record(
            "exception",
            "error",
            f"uncaught {name}: {clean_text(message, 500)}",
            url=scrub_url(self.page.url) if self.page is not None else None,
            data={
                "name": clean_text(name, 100),
                "stack": clean_text(stack, 4000),
                "top_frame": clean_text(frames[0], 300) if frames else None,
            },
        )
        self._auto_screenshot(record)

    def _on_requestfailed(self, request: Any) -> None:
        failure = request.failure or "failed"
        self._request_record(request, None, clean_text(failure, 200))

    def _on_response(self, response: Any) -> None:
        if response.status >= 400:
            self._request_record(response.request, response, response.status_text or "")
        elif self._ids:
            self._ids.pop((response.request.method, response.request.url), None)

    def _request_record(self, request: Any, response: Any, why: str) -> None:
        status = response.status if response is not None else None
        cid = self._ids.pop((request.method, request.url), None)
        if cid is None and request.resource_type in ("fetch", "xhr"):
            tagged = request.headers.get("x-request-id")  # set by _TAG_JS or the page itself
            cid = clean_text(tagged, 128) if tagged else None
        if cid is None and response is not None:
            echoed = response.headers.get("x-request-id")
            cid = clean_text(echoed, 128) if echoed else None
        if cid:
            self._failed_ids.append(cid)
        timing = request.timing or {}
        ttfb = timing.get("responseStart")
        url = scrub_url(request.url)
        level: Severity = "warning" if status is not None and status < 500 else "error"
        if response is None and "ERR_ABORTED" in why:
            level = "info"  # cancelled by a navigation or by the page itself: not a failure
        what = f"{status} {why}".strip() if status is not None else why
        record = self._record(
            "request",
            level,
            f"{request.method} {url} → {what}",
            url=url,
            correlation_id=cid,
            data={
                "method": request.method,
                "status": status,
                "status_text": clean_text(why, 200),
                "failed": response is None,
                "resource_type": request.resource_type,
                "ttfb_ms": round(ttfb, 1) if isinstance(ttfb, int | float) and ttfb >= 0 else None,
                "request_id": cid,
            },
        )
        if level == "error":
            self._auto_screenshot(record)

    def _on_navigated(self, frame: Any) -> None:
        if self.page is None or frame != self.page.main_frame:
            return
        url = scrub_url(frame.url)
        self._record("navigation", "info", f"navigated to {url}", url=url)

    async def _page_loaded(self) -> None:
        page = self.page
        if page is None:
            return
        try:
            timings = await asyncio.wait_for(page.evaluate(_TIMINGS_JS), 5)
        except Exception:
            timings = {}
        if not isinstance(timings, dict) or not timings:
            return  # the page went away before it could be measured
        for item in timings.get("slowest") or []:
            if isinstance(item, dict):
                item["url"] = scrub_url(str(item.get("url", "")))
        load = timings.get("load_ms")
        slow = isinstance(load, int | float) and load > self.config.slow_load_ms
        parts = [f"{label} {_ms(timings.get(key))}" for label, key in
                 (("FCP", "fcp_ms"), ("LCP", "lcp_ms")) if timings.get(key) is not None]  # fmt: skip
        if timings.get("cls") is not None:
            parts.append(f"CLS {float(timings['cls']):.3f}")
        url = scrub_url(page.url)
        summary = f"loaded {url} in {_ms(load)}" + (f" ({', '.join(parts)})" if parts else "")
        if slow:
            slowest = (timings.get("slowest") or [{}])[0]
            summary = (
                f"slow page load: {summary}; slowest {slowest.get('url')} {_ms(slowest.get('ms'))}"
            )
        self._record("navigation", "warning" if slow else "info", summary, url=url, data=timings)

    # --- correlation -----------------------------------------------------------------
    async def _correlate(self, page: Any) -> None:
        own = origin_of(self.config.url)
        if own in self.config.origins:
            await page.add_init_script(_TAG_JS)  # the page's origin: tagged by the page itself
        others = [origin for origin in self.config.origins if origin != own]
        if not others:
            return
        session = await self._context.new_cdp_session(page)
        patterns = [
            {"urlPattern": f"{origin}/*", "resourceType": kind, "requestStage": "Request"}
            for origin in others
            for kind in ("Fetch", "XHR")
        ]
        session.on("Fetch.requestPaused", lambda ev: self._spawn(self._tag(session, ev)))
        await session.send("Fetch.enable", {"patterns": patterns})

    async def _tag(self, session: Any, event: dict[str, Any]) -> None:
        request_id = event.get("requestId")
        try:
            request = event.get("request") or {}
            headers = dict(request.get("headers") or {})
            lower = {k.lower(): k for k in headers}
            rid = headers.get(lower["x-request-id"]) if "x-request-id" in lower else None
            if "traceparent" in lower:
                parts = str(headers[lower["traceparent"]]).split("-")
                rid = rid or (parts[1] if len(parts) == 4 else None)
            else:
                rid = rid or uuid.uuid4().hex
                headers["traceparent"] = f"00-{rid}-{uuid.uuid4().hex[:16]}-01"
            if "x-request-id" not in lower:
                headers["X-Request-ID"] = rid or uuid.uuid4().hex
            key = (str(request.get("method", "GET")), str(request.get("url", "")))
            self._ids[key] = str(headers.get("X-Request-ID") or rid)
            while len(self._ids) > 1000:
                self._ids.popitem(last=False)
            await session.send(
                "Fetch.continueRequest",
                {
                    "requestId": request_id,
                    "headers": [{"name": k, "value": str(v)} for k, v in headers.items()],
                },
            )
        except Exception:  # never leave a request paused
            with contextlib.suppress(Exception):
                await session.send("Fetch.continueRequest", {"requestId": request_id})

    # --- records ---------------------------------------------------------------------
    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _lifecycle(self, level: Severity, message: str, data: dict[str, Any] | None = None) -> None:
        self._record("lifecycle", level, message, url=scrub_url(self.config.url), data=data)

    def _record(
        self,
        kind: RecordKind,
        level: Severity,
        message: str,
        *,
        url: str | None = None,
        correlation_id: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> BrowserRecord:
        subject = urlsplit(url).path or url if url else "browser"
        event = make_event(
            source="browser",
            kind=_KINDS[kind],
            severity=level,
            subject=clean_text(subject, 200) or "browser",
            summary=clean_text(message, 300),
            data={"url": url, **(data or {})},
            correlation_id=correlation_id,
        )
        record = BrowserRecord(
            id=event.id,
            ts=event.ts,
            kind=kind,
            level=level,
            message=event.summary,
            url=url,
            correlation_id=event.correlation_id,
            data=event.data,
        )
        self.records.append(record)
        self.total += 1
        self.counts[kind] += 1
        if self._log is not None:
            line = {
                "ts": record.ts.isoformat(),
                "level": level,
                "logger": f"browser.{kind}",
                "message": record.message,
                "request_id": record.correlation_id,
                "url": url,
                **{k: v for k, v in record.data.items() if k not in ("url", "request_id")},
            }
            self._log.write(orjson.dumps(line, default=str) + b"\n")
        if self.sink is not None:
            try:
                self.sink(event)
            except Exception as exc:
                log.warning("browser event not published: %s", type(exc).__name__)
        return record

    def publish(self, event: TimelineEvent) -> None:
        """Publish an event that is not a page record (audited control actions): to the
        sink, and as a line of the capture's log."""
        if self._log is not None:
            line = {
                "ts": event.ts.isoformat(),
                "level": event.severity,
                "logger": f"browser.{event.kind}",
                "message": event.summary,
                "request_id": event.correlation_id,
                **event.data,
            }
            self._log.write(orjson.dumps(line, default=str) + b"\n")
        if self.sink is not None:
            self.sink(event)

    # --- reading ---------------------------------------------------------------------
    def recent(
        self, *, kinds: tuple[RecordKind, ...] | None = None, min_level: str = "debug",
        limit: int = 50,
    ) -> RecordList:  # fmt: skip
        """The newest ``limit`` records of ``kinds`` at ``min_level`` or above, oldest first."""
        order = ("debug", "info", "warning", "error", "critical")
        floor = order.index(min_level)
        chosen = [
            r
            for r in self.records
            if (kinds is None or r.kind in kinds) and order.index(r.level) >= floor
        ]
        picked = chosen[-limit:] if limit else []
        return RecordList(
            records=picked,
            count=len(picked),
            dropped=self.total - len(self.records),
            url=scrub_url(self.config.url),
        )

    def status(self) -> BrowserStatus:
        page = self.page
        return BrowserStatus(
            url=scrub_url(self.config.url) or "",
            state=self.state,
            page_url=scrub_url(page.url) if page is not None else None,
            title=None,
            browser_version=self.browser_version,
            launches=self.launches,
            crashes=self.crashes,
            last_error=self.last_error,
            records=len(self.records),
            dropped=self.total - len(self.records),
            screenshots=len(self.shots),
            correlate_origins=list(self.config.origins) if self.config.correlate else [],
            counts=dict(self.counts),
        )

    def screenshot_png(self, shot_id: str | None = None) -> tuple[ScreenshotInfo, bytes] | None:
        """A kept screenshot (the newest when ``shot_id`` is None)."""
        for shot in reversed(self.shots):
            if shot_id is None or shot.info.id == shot_id:
                return shot.info, shot.png
        return None

    # --- screenshots and actions --------------------------------------------------------
    def _auto_screenshot(self, cause: BrowserRecord) -> None:
        if not self.config.screenshot_on_error or self.page is None:
            return
        # at most one every interval per kind of error: a failed request just before an
        # uncaught exception does not take the exception's screenshot
        now = time.monotonic()
        if now - self._last_auto_shot.get(cause.kind, -math.inf) < self.config.screenshot_interval:
            return
        self._last_auto_shot[cause.kind] = now
        self._spawn(self._quiet_screenshot(cause))

    async def _quiet_screenshot(self, cause: BrowserRecord) -> None:
        # a page still navigating (the error came with a route change) may refuse the first
        # try: once more, a moment later, before giving up quietly
        for attempt in range(2):
            try:
                await self.screenshot(
                    f"after {cause.kind}: {cause.message[:120]}",
                    correlation_id=cause.correlation_id,
                    trigger=cause.id,
                )
                return
            except Exception:
                if attempt == 0:
                    await asyncio.sleep(0.5)

    def _live_page(self) -> Any:
        if self.page is None or not self.running.is_set():
            raise ServiceUnavailableError(
                f"the browser capture is not running ({self.last_error or self.state})"
            )
        return self.page

    async def screenshot(
        self,
        reason: str = "on demand",
        *,
        full_page: bool = False,
        correlation_id: str | None = None,
        trigger: str | None = None,
    ) -> tuple[ScreenshotInfo, bytes]:
        """Take a PNG of the page now; kept (bounded) and announced as an event."""
        page = self._live_page()
        png: bytes = await page.screenshot(
            type="png", full_page=full_page, timeout=self.config.action_timeout * 1000
        )
        shot_id = uuid.uuid4().hex[:16]
        url = scrub_url(page.url)
        record = self._record(
            "screenshot",
            "info",
            f"screenshot of {url} ({reason})",
            url=url,
            correlation_id=correlation_id,
            data={
                "screenshot_id": shot_id,
                "bytes": len(png),
                "reason": clean_text(reason, 200),
                "trigger": trigger,
                "path": f"/api/v1/browser/screenshots/{shot_id}",
            },
        )
        info = ScreenshotInfo(
            id=shot_id,
            ts=record.ts,
            reason=clean_text(reason, 200),
            url=url,
            bytes=len(png),
            correlation_id=record.correlation_id,
            path=f"/api/v1/browser/screenshots/{shot_id}",
        )
        self.shots.append(_Shot(info, png))
        return info, png

    def resolve(self, url: str) -> str:
        """``url`` (absolute or relative to the watched page) if it stays on a watched
        origin; :class:`InvalidInputError` otherwise."""
        target = urljoin(self.config.url, url.strip())
        origin = origin_of(target)
        allowed = {origin_of(self.config.url), *self.config.origins}
        if origin is None or origin not in allowed:
            raise InvalidInputError(
                f"navigation stays on the watched origins ({', '.join(sorted(o for o in allowed if o))})"
            )
        return target

    async def act(
        self,
        action: Literal["navigate", "click", "fill", "reload"],
        *,
        target: str | None = None,
        value: str | None = None,
    ) -> tuple[bool, str | None]:
        """Do one page action; returns (ok, detail). Timeouts and missing elements are a
        failed outcome, not an exception."""
        page = self._live_page()
        async with self._action_lock:
            try:
                if action == "navigate":
                    await page.goto(self.resolve(target or ""), wait_until="load")
                elif action == "reload":
                    await page.reload(wait_until="load")
                elif action == "click":
                    await page.locator(_selector(target)).first.click()
                else:
                    await page.locator(_selector(target)).first.fill(value or "")
            except InvalidInputError:
                raise
            except Exception as exc:
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                return False, clean_text(f"{type(exc).__name__}: {first}", 300)
        return True, None

    def action_result(self, action: str, ok: bool, detail: str | None, *, reason: str,
                      key_id: str) -> ActionResult:  # fmt: skip
        page = self.page
        return ActionResult(
            action=action,
            ok=ok,
            page_url=scrub_url(page.url) if page is not None else None,
            detail=detail,
            reason=reason,
            key_id=key_id,
        )


def _selector(target: str | None) -> str:
    if not target or not target.strip() or len(target) > 500:
        raise InvalidInputError("a selector of 1-500 characters is required")
    return target.strip()


def _ms(value: Any) -> str:
    return f"{float(value):.0f} ms" if isinstance(value, int | float) else "? ms"
