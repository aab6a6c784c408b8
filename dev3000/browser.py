"""The browser capture inside ``dev3000 serve --browser URL`` (or ``DEV3000_BROWSER_URL``).

* :func:`browser_lifespan` starts :class:`servers.browser.capture.BrowserCapture` with the
  app's timeline bus as its sink and its log source under the logs directory
  (``<logs dir>/browser/browser.jsonl``), keeps it as the app's ``state.browser`` (the
  ``browser_*`` MCP tools and these routes read it), and stops it with the app.
* :data:`router`: ``GET /api/v1/browser/status``, ``/errors``, and the screenshots the
  capture keeps, as PNG (``/screenshots/latest``, ``/screenshots/{id}``: what the
  ``browser_screenshot`` events and the ``/timeline`` page link to).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Query
from starlette.responses import Response

from dev3000.api.state import AppState, StateDep
from dev3000.supervisor import logs_dir
from guilde_core.errors import NotFoundError
from guilde_core.http.auth import ReadKey
from guilde_core.http.problems import PROBLEM_RESPONSES
from servers.browser import logic
from servers.browser.capture import BrowserCapture, CaptureConfig
from servers.browser.models import BrowserStatus, RecordList

__all__ = ["browser_lifespan", "router"]

router = APIRouter(prefix="/api/v1/browser", tags=["browser"], responses=PROBLEM_RESPONSES)


def browser_lifespan(
    url: str | None = None, **overrides: Any
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    """The lifespan that runs the capture of ``url`` (default ``DEV3000_BROWSER_URL``);
    ``overrides`` go to :class:`CaptureConfig` (tests: back-off, thresholds)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = app.state.dev3000
        config = CaptureConfig.from_settings(
            state.settings, url=url, log_dir=logs_dir(state.settings), **overrides
        )
        capture = BrowserCapture(config, sink=state.bus.publish)
        state.browser = capture
        capture.start()
        try:
            yield
        finally:
            await capture.stop()
            state.browser = None

    return lifespan


@router.get("/status", summary="The browser capture's state")
async def status(_: ReadKey, state: StateDep) -> BrowserStatus:
    return await logic.page_status(state.browser)


@router.get(
    "/errors", summary="Recent console errors, exceptions, failed requests and slow page loads"
)
async def errors(
    _: ReadKey,
    state: StateDep,
    limit: Annotated[int, Query(ge=1, le=200, description="At most this many.")] = 50,
) -> RecordList:
    return await logic.recent_errors(_capture(state), limit)


def _capture(state: AppState) -> BrowserCapture:
    """This app's capture; without one the browser's resources are not here: 404 (the API
    answers 5xx only for its own failures, not for a part it was not started with)."""
    if state.browser is None:
        raise NotFoundError(
            "no browser capture runs here: start dev3000 serve --browser URL "
            "(or set DEV3000_BROWSER_URL)"
        )
    return state.browser


def _png(capture: BrowserCapture, shot_id: str | None) -> Response:
    found = capture.screenshot_png(shot_id)
    if found is None:
        raise NotFoundError(
            "no screenshot yet" if shot_id is None else f"no screenshot {shot_id!r} (kept: last 20)"
        )
    info, png = found
    return Response(
        png,
        media_type="image/png",
        headers={"Cache-Control": "no-store", "X-Screenshot-Id": info.id},
    )


@router.get(
    "/screenshots/latest",
    summary="The newest screenshot (PNG)",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
async def latest_screenshot(_: ReadKey, state: StateDep) -> Response:
    return _png(_capture(state), None)


@router.get(
    "/screenshots/{shot_id}",
    summary="A kept screenshot (PNG)",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
async def screenshot(
    _: ReadKey, state: StateDep, shot_id: Annotated[str, Path(pattern=r"^[0-9a-f]{16}$")]
) -> Response:
    return _png(_capture(state), shot_id)
