"""``/api/v1/targets``: the runtime targets registry (CRUD, list, bulk).

A target added here is checked at once (the result is returned and stored as
``last_check``), recorded on the timeline, included in deep health from then on — any
change drops the cached deep round, so the next report and stack model already show it —
and persisted (SQLite or Redis, see :mod:`dev3000.targets_store`). Reading needs the ``read``
scope when auth is required; changing needs ``control``.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from dev3000.api.probes import check_target
from dev3000.api.state import AppState, StateDep
from dev3000.targets_store import Target, TargetCreate, TargetPatch
from guilde_core.http.auth import ControlKey, ReadKey
from guilde_core.http.problems import PROBLEM_RESPONSES
from guilde_core.redaction import redact, redact_text

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/targets", tags=["targets"], responses=PROBLEM_RESPONSES)
TargetName = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$", description="Target name")]


class TargetList(BaseModel):
    items: list[Target]
    total: int = Field(description="Matching targets before pagination.")
    limit: int
    offset: int
    next_offset: int | None


class BulkCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    targets: list[TargetCreate] = Field(min_length=1, max_length=100)


class BulkDelete(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"names": ["a"]}]})
    names: list[str] = Field(min_length=1, max_length=100)


class BulkDeleted(BaseModel):
    deleted: list[str]
    missing: list[str]


def public(target: Target) -> Target:
    """``target`` as a response shows it: credentials in its URL (and anything secret in
    its last check) masked. The store keeps the real URL for the checks."""
    return target.model_copy(
        update={"url": redact_text(target.url), "last_check": redact(target.last_check)}
    )


def _changed(state: AppState) -> None:
    """The registry changed: the cached deep round (and one under way, which listed the
    targets before the change) no longer describes the stack; the next reader starts anew."""
    state.health.forget()


async def _check_and_store(state: AppState, target: Target) -> Target:
    result = await check_target(state.health, target)
    checked = target.model_copy(update={"last_check": result})
    try:
        await state.targets.save(checked)
    except Exception:  # the check result is still returned
        return public(checked)
    finally:
        _changed(state)
    return public(checked)


@router.get("", summary="List targets (filters, pagination)", response_model=TargetList)
async def list_targets(
    *,
    kind: Annotated[str | None, Query(pattern=r"^(http|tcp|redis|postgres)$")] = None,
    critical: Annotated[bool | None, Query()] = None,
    tag: Annotated[str | None, Query(max_length=64)] = None,
    q: Annotated[str | None, Query(max_length=100, description="Substring of name or url")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    state: StateDep,
    _: ReadKey,
) -> TargetList:
    items = [public(t) for t in await state.targets.all()]  # q never sees a password
    if kind is not None:
        items = [t for t in items if t.kind == kind]
    if critical is not None:
        items = [t for t in items if t.critical is critical]
    if tag is not None:
        items = [t for t in items if tag in t.tags]
    if q is not None:
        items = [t for t in items if q.lower() in t.name or q.lower() in t.url.lower()]
    page = items[offset : offset + limit]
    nxt = offset + limit if offset + limit < len(items) else None
    return TargetList(items=page, total=len(items), limit=limit, offset=offset, next_offset=nxt)


@router.post("", status_code=201, summary="Add a target (checked at once)", response_model=Target)
async def create_target(
    *,
    response: Response,
    body: Annotated[TargetCreate, Body()],
    state: StateDep,
    _: ControlKey,
) -> Target:
    created = await state.targets.create(body)
    checked = await _check_and_store(state, created)
    _record(state, "added", [checked])
    response.headers["Location"] = f"/api/v1/targets/{created.name}"
    return checked


@router.post(
    "/bulk",
    status_code=201,
    summary="Add several targets at once (all or none)",
    response_model=list[Target],
)
async def bulk_create(
    *,
    body: Annotated[BulkCreate, Body()],
    state: StateDep,
    _: ControlKey,
) -> list[Target]:
    created = await state.targets.create_many(body.targets)
    checked = list(await asyncio.gather(*(_check_and_store(state, t) for t in created)))
    _record(state, "added", checked)
    return checked


@router.post("/bulk-delete", summary="Delete several targets", response_model=BulkDeleted)
async def bulk_delete(
    *,
    body: Annotated[BulkDelete, Body()],
    state: StateDep,
    _: ControlKey,
) -> BulkDeleted:
    gone = await state.targets.delete_many(body.names)
    _changed(state)
    missing = [n for n in body.names if n not in gone]
    if gone:
        state.emit(
            kind="notice",
            source="targets",
            subject=",".join(gone)[:200],
            summary=f"{len(gone)} target(s) removed",
            data={"deleted": gone},
        )
    return BulkDeleted(deleted=gone, missing=missing)


@router.get("/{name}", summary="One target", response_model=Target)
async def get_target(
    *,
    name: TargetName,
    state: StateDep,
    _: ReadKey,
) -> Target:
    return public(await state.targets.get(name))


@router.post("/{name}/check", summary="Check one target now", response_model=Target)
async def check_now(
    *,
    name: TargetName,
    state: StateDep,
    _: ReadKey,
) -> Target:
    return await _check_and_store(state, await state.targets.get(name))


@router.patch("/{name}", summary="Change a target (re-checked at once)", response_model=Target)
async def update_target(
    *,
    name: TargetName,
    body: Annotated[TargetPatch, Body()],
    state: StateDep,
    _: ControlKey,
) -> Target:
    updated = await state.targets.update(name, body)
    return await _check_and_store(state, updated)


@router.put("/{name}", summary="Replace a target (re-checked at once)", response_model=Target)
async def replace_target(
    *,
    name: TargetName,
    body: Annotated[TargetCreate, Body()],
    state: StateDep,
    _: ControlKey,
) -> Target:
    from guilde_core.errors import InvalidInputError

    if body.name != name:
        raise InvalidInputError(f"body.name {body.name!r} does not match the path {name!r}")
    current = await state.targets.get(name)
    replaced = Target(
        **body.model_dump(), created_at=current.created_at, updated_at=current.updated_at
    )
    replaced = replaced.model_copy(update={"updated_at": _now()})
    await state.targets.save(replaced)
    return await _check_and_store(state, replaced)


@router.delete("/{name}", status_code=204, summary="Remove a target")
async def delete_target(
    *,
    name: TargetName,
    state: StateDep,
    _: ControlKey,
) -> Response:
    await state.targets.delete(name)
    _changed(state)
    state.emit(kind="notice", source="targets", subject=name, summary=f"target {name} removed")
    return Response(status_code=204)


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def _record(state: AppState, verb: str, targets: list[Target]) -> None:
    for target in targets:
        check = target.last_check or {}
        status = check.get("status", "unknown")
        state.emit(
            kind="notice",
            source="targets",
            subject=target.name,
            severity="info" if status == "healthy" else "warning",
            summary=f"target {target.name} {verb}: {status}",
            data={"url": redact_text(target.url), "kind": target.kind, "check": check},
        )
