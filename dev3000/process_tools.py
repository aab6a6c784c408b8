"""MCP tools over the supervised ``--run`` processes: ``process_list`` (read) and
``process_restart`` (a control action: the one gate,
:func:`guilde_core.http.authz.authorize_control`, per call, then the audited
``control_action`` event with the caller's key id and reason)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any

from fastmcp import FastMCP
from pydantic import BaseModel, Field

from dev3000.supervisor import Supervisor
from guilde_core.config import Settings
from guilde_core.errors import NotFoundError, ServiceUnavailableError
from guilde_core.http.authz import Caller, authorize_control, control_event
from servers.common import CONTROL, READ_ONLY, as_tool_errors, compact_schema, current_caller

__all__ = ["ProcessList", "Processes", "register_process_tools", "restart_process"]

#: the supervisors of the host, read at call time (``dev3000 serve --run``; none elsewhere)
Processes = Callable[[], Sequence[Supervisor]]


class ProcessInfo(BaseModel):
    name: str
    command: str
    pid: int | None
    running: bool
    runs: int
    restarts: int
    last_exit: int | None
    log: str = Field(description="Its log source (JSON lines, read by the logs tools).")


class ProcessList(BaseModel):
    processes: list[ProcessInfo]


def _find(processes: Processes, name: str) -> Supervisor:
    found = {s.name: s for s in processes()}
    if name not in found:
        known = ", ".join(found) or "none: start dev3000 serve --run …"
        raise NotFoundError(f"no supervised process {name!r} (known: {known})")
    return found[name]


async def restart_process(
    processes: Processes, caller: Caller, name: str, reason: str
) -> ProcessInfo:
    """Restart one supervised process (a control action: authorized, then audited)."""
    why = authorize_control(caller, reason)
    supervisor = _find(processes, name)
    ok = True
    detail: str | None = None
    try:
        status: dict[str, Any] = await supervisor.restart()
    except Exception as exc:
        ok, detail, status = False, str(exc)[:300], supervisor.status()
    supervisor.bus.publish(
        control_event(
            caller,
            source="process",
            action="process_restart",
            subject=name,
            reason=why,
            ok=ok,
            data={"pid": status.get("pid"), "detail": detail},
        )
    )
    if not ok:
        raise ServiceUnavailableError(detail or f"{name} could not be restarted")
    return ProcessInfo.model_validate(status)


def register_process_tools(server: FastMCP, settings: Settings, processes: Processes) -> None:
    """Add ``process_list`` and ``process_restart`` to the aggregate."""
    if not settings.mcp_tools_enabled:
        return

    @server.tool(
        name="process_list",
        description="The dev servers dev3000 supervises (--run): pid, runs, restarts, log.",
        annotations=READ_ONLY,
        output_schema=None,
    )
    @as_tool_errors
    async def process_list() -> ProcessList:
        return ProcessList(processes=[ProcessInfo.model_validate(s.status()) for s in processes()])

    @server.tool(
        name="process_restart",
        description="Restart a supervised dev server now (control; a reason is required).",
        annotations=CONTROL,
        output_schema=compact_schema(ProcessInfo),
    )
    @as_tool_errors
    async def process_restart(
        name: Annotated[str, Field(min_length=1, max_length=100, description="From process_list.")],
        reason: Annotated[str, Field(min_length=3, max_length=500, description="Why.")],
    ) -> ProcessInfo:
        return await restart_process(processes, current_caller(settings), name, reason)
