"""What the browser tools do, as plain async functions over the running capture.

Reading (``recent_errors``, ``page_status``, ``take_screenshot``) needs
no permission beyond the caller's read access. Page actions (``page_action``: navigate,
click, fill, reload) change the watched page: they pass the one gate,
:func:`guilde_core.http.authz.authorize_control`, first and leave a ``control_action`` event
(:func:`guilde_core.http.authz.control_event`) with the caller's key id and reason, whatever
their outcome.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from guilde_core.config import Settings
from guilde_core.errors import ServiceUnavailableError
from guilde_core.http.authz import Caller, authorize_control, control_event
from servers.browser.capture import BrowserCapture
from servers.browser.models import ActionResult, BrowserStatus, RecordList, ScreenshotInfo
from servers.browser.scrub import scrub_url

__all__ = [
    "PageAction",
    "first_log_dir",
    "page_action",
    "page_status",
    "recent_errors",
    "require_capture",
    "take_screenshot",
]

PageAction = Literal["navigate", "click", "fill", "reload"]


def first_log_dir(settings: Settings) -> Path | None:
    """The first of ``DEV3000_LOG_PATHS`` that is a directory (where log sources go)."""
    for spec in settings.dev3000_log_paths:
        path = Path(spec).expanduser()
        if path.is_dir():
            return path
    return None


def require_capture(capture: BrowserCapture | None) -> BrowserCapture:
    if capture is None:
        raise ServiceUnavailableError(
            "no browser capture runs here: start dev3000 serve --browser URL "
            "(or set DEV3000_BROWSER_URL)"
        )
    return capture


async def recent_errors(capture: BrowserCapture | None, limit: int = 20) -> RecordList:
    """Console errors/warnings, uncaught exceptions, failed requests and slow page loads (a
    navigation is a warning only when the load took longer than the capture's limit), oldest
    first."""
    return require_capture(capture).recent(
        kinds=("console", "exception", "request", "lifecycle", "navigation"),
        min_level="warning",
        limit=limit,
    )


async def page_status(capture: BrowserCapture | None) -> BrowserStatus:
    """The capture's state (``off`` when none runs here)."""
    if capture is None:
        return BrowserStatus(
            url=None,
            state="off",
            last_error="no browser capture: dev3000 serve --browser URL or DEV3000_BROWSER_URL",
        )
    return capture.status()


async def take_screenshot(
    capture: BrowserCapture | None, full_page: bool = False
) -> tuple[ScreenshotInfo, bytes]:
    return await require_capture(capture).screenshot("on demand", full_page=full_page)


async def page_action(
    capture: BrowserCapture | None,
    caller: Caller,
    action: PageAction,
    reason: str,
    *,
    target: str | None = None,
    value: str | None = None,
) -> ActionResult:
    """Drive the page (a control action: authorized, then audited)."""
    why = authorize_control(caller, reason)
    live = require_capture(capture)
    ok, detail = await live.act(action, target=target, value=value)
    shown = scrub_url(target) if action == "navigate" else target
    live.publish(
        control_event(
            caller,
            source="browser",
            action=f"browser_{action}",
            subject=(shown or live.status().page_url or "page")[:200],
            reason=why,
            ok=ok,
            # what was typed is never recorded, only how long it was
            data={
                "target": shown,
                "value_chars": len(value) if value is not None else None,
                "detail": detail,
            },
        )
    )
    return live.action_result(action, ok, detail, reason=why, key_id=caller.principal.key_id)
