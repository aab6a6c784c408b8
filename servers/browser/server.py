"""The browser MCP server: a thin layer over :mod:`servers.browser.logic`.

Read tools (errors, failed requests, status, screenshot as image content) and control tools
(navigate, click, fill, reload: destructive, gated per call by the one decision,
:func:`guilde_core.http.authz.authorize_control`, audited). :func:`build_server` serves the capture its host lends it (``dev3000 serve
--browser``, through :class:`servers.context.ServerContext`); on its own (``dev3000 mcp
browser``) it starts one of its own from ``DEV3000_BROWSER_URL``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastmcp import FastMCP
from fastmcp.tools import ToolResult
from fastmcp.utilities.types import Image
from mcp_types import TextContent
from pydantic import Field

from guilde_core.config import Settings, get_settings
from servers.browser import logic
from servers.browser.capture import BrowserCapture, CaptureConfig
from servers.browser.models import ActionResult, BrowserStatus, RecordList
from servers.common import (
    CONTROL,
    READ_ONLY,
    ControlGate,
    DiagServer,
    as_tool_errors,
    compact_schema,
    current_caller,
    prompts_only_when_enabled,
    to_json,
)

__all__ = ["build_server"]

Limit = Annotated[int, Field(ge=1, le=200, description="At most this many, newest kept.")]
Reason = Annotated[
    str, Field(min_length=3, max_length=500, description="Why (recorded with the action).")
]
Selector = Annotated[str, Field(min_length=1, max_length=500, description="CSS or text= selector.")]


def build_server(
    settings: Settings | None = None,
    *,
    capture: Callable[[], BrowserCapture | None] | None = None,
) -> FastMCP:
    """The browser server (tools and resources as enabled by MCP_*_ENABLED) over the capture
    ``capture()`` returns — the host's; without one, a capture of its own runs in the
    server's lifespan when ``DEV3000_BROWSER_URL`` is set."""
    s = settings or get_settings()
    own: list[BrowserCapture] = []

    def current() -> BrowserCapture | None:
        if capture is not None:
            return capture()
        return own[0] if own else None

    @contextlib.asynccontextmanager
    async def lifespan(server: FastMCP) -> AsyncIterator[dict[str, Any]]:
        del server
        if capture is None and s.dev3000_browser_url:
            own.append(
                BrowserCapture(CaptureConfig.from_settings(s, log_dir=logic.first_log_dir(s)))
            )
            own[0].start()
        try:
            yield {}
        finally:
            if own:
                await own.pop().stop()

    server: FastMCP = DiagServer(
        "guilde-diag-browser",
        instructions="The watched page in headless Chromium: console errors, uncaught "
        "exceptions, failed requests (with correlation ids to find the backend's log lines), "
        "page loads, screenshots. Page actions are control actions.",
        lifespan=lifespan,
        middleware=[ControlGate(s)],
    )

    if s.mcp_tools_enabled:

        @server.tool(
            name="browser_status",
            description="Capture state: watched URL, current page, launches, crashes, counts.",
            annotations=READ_ONLY,
            output_schema=None,
        )
        @as_tool_errors
        async def page_status() -> BrowserStatus:
            return await logic.page_status(current())

        @server.tool(
            name="browser_errors",
            description="The watched page's recent console errors/warnings, uncaught "
            "exceptions, failed requests (status, timing, correlation id), slow loads.",
            annotations=READ_ONLY,
            output_schema=None,
        )
        @as_tool_errors
        async def recent_errors(limit: Limit = 20) -> RecordList:
            return await logic.recent_errors(current(), limit)

        @server.tool(
            name="browser_screenshot",
            description="A PNG screenshot of the watched page now (image content).",
            annotations=READ_ONLY,
        )
        @as_tool_errors
        async def screenshot(
            full_page: Annotated[
                bool, Field(description="The whole page, not the viewport.")
            ] = False,
        ) -> ToolResult:
            info, png = await logic.take_screenshot(current(), full_page)
            return ToolResult(
                content=[
                    Image(data=png, format="png").to_image_content(),
                    TextContent(type="text", text=f"screenshot {info.id} of {info.url}"),
                ],
                structured_content=info.model_dump(mode="json"),
            )

        _add_actions(server, s, current)

    if s.mcp_resources_enabled:

        @server.resource(
            "browser://screenshot/latest",
            name="latest_screenshot",
            description="The newest screenshot of the watched page (PNG).",
            mime_type="image/png",
        )
        def latest_screenshot() -> bytes:
            found = logic.require_capture(current()).screenshot_png()
            if found is None:
                raise ValueError("no screenshot yet: call browser_screenshot")
            return found[1]

        @server.resource(
            "browser://errors",
            name="browser_errors",
            description="Recent browser errors as JSON.",
            mime_type="application/json",
        )
        async def errors_resource() -> str:
            return to_json(await logic.recent_errors(current(), 50))

        @server.resource(
            "browser://status",
            name="browser_status",
            description="The capture's state as JSON.",
            mime_type="application/json",
        )
        async def status_resource() -> str:
            return json.dumps((await logic.page_status(current())).model_dump(mode="json"))

    return prompts_only_when_enabled(server, s)


def _add_actions(
    server: FastMCP, s: Settings, current: Callable[[], BrowserCapture | None]
) -> None:
    @server.tool(
        name="browser_navigate",
        description="Open a URL on the watched origins in the page (control).",
        annotations=CONTROL,
        output_schema=compact_schema(ActionResult),
    )
    @as_tool_errors
    async def navigate(
        url: Annotated[
            str, Field(min_length=1, max_length=2000, description="Absolute or relative.")
        ],
        reason: Reason,
    ) -> ActionResult:
        return await logic.page_action(current(), current_caller(s), "navigate", reason, target=url)

    @server.tool(
        name="browser_click",
        description="Click an element of the page (control).",
        annotations=CONTROL,
        output_schema=compact_schema(ActionResult),
    )
    @as_tool_errors
    async def click(selector: Selector, reason: Reason) -> ActionResult:
        return await logic.page_action(
            current(), current_caller(s), "click", reason, target=selector
        )

    @server.tool(
        name="browser_fill",
        description="Type a value into a form field (control; the value is never recorded).",
        annotations=CONTROL,
        output_schema=compact_schema(ActionResult),
    )
    @as_tool_errors
    async def fill(
        selector: Selector,
        value: Annotated[str, Field(max_length=10_000)],
        reason: Reason,
    ) -> ActionResult:
        return await logic.page_action(
            current(), current_caller(s), "fill", reason, target=selector, value=value
        )

    @server.tool(
        name="browser_reload",
        description="Reload the page (control).",
        annotations=CONTROL,
        output_schema=compact_schema(ActionResult),
    )
    @as_tool_errors
    async def reload(reason: Reason) -> ActionResult:
        return await logic.page_action(current(), current_caller(s), "reload", reason)
