"""``POST /api/v1/alerts`` (Alertmanager's webhook) and ``GET /api/v1/investigations``.

Authorization is the one decision's ``read`` action (:mod:`guilde_core.http.authz`): an
alert changes nothing in the watched system — it opens an investigation, which only reads
(the same tools a read key may call) and writes its own records. So Alertmanager holds a
``read`` key (``http_config.authorization`` in its ``webhook_config``), never one that could
force a breaker; with ``DIAGNOSTIC_AUTH_REQUIRED=true`` a webhook without a key is 401. The
cost a caller can impose is bounded instead: ``DIAGNOSTIC_RATE_LIMIT`` per key on the
requests, ``ALERT_INTAKE_RATE_LIMIT`` on the diagnoses, deduplication by fingerprint.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from dev3000.alerts import (
    AlertIntake,
    AlertmanagerWebhook,
    IntakeResult,
    Investigation,
    InvestigationList,
)
from dev3000.api.state import StateDep
from guilde_core.errors import ServiceUnavailableError
from guilde_core.http.auth import ReadKey
from guilde_core.http.problems import PROBLEM_RESPONSES

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["alerts"], responses=PROBLEM_RESPONSES)


def _intake(state: StateDep) -> AlertIntake:
    if state.alerts is None:
        raise ServiceUnavailableError("alert intake is not running (dev3000 is starting)")
    return state.alerts


@router.post(
    "/alerts",
    summary="Alertmanager webhook: open, deduplicate and close investigations (read scope)",
    description="The body of Alertmanager's `webhook_config` (version 4). Each firing alert "
    "opens an investigation (once per fingerprint) whose diagnosis runs in the background; "
    "each resolved alert closes its investigation. Answers 202 with what each alert did.",
    status_code=202,
    response_model=IntakeResult,
)
async def receive(webhook: AlertmanagerWebhook, state: StateDep, _: ReadKey) -> JSONResponse:
    result = await _intake(state).receive(webhook)
    return JSONResponse(result.model_dump(mode="json"), status_code=202)


@router.get(
    "/investigations",
    summary="Investigations opened by alerts, newest first",
    response_model=InvestigationList,
)
async def list_investigations(
    state: StateDep,
    _: ReadKey,
    status: Annotated[Literal["open", "resolved"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> InvestigationList:
    return _intake(state).list(status=status, limit=limit)


@router.get(
    "/investigations/{investigation_id}",
    summary="One investigation with its whole diagnosis",
    response_model=Investigation,
)
async def get_investigation(
    investigation_id: Annotated[str, Path(pattern=r"^inv-[0-9a-f]{12}$")],
    state: StateDep,
    _: ReadKey,
) -> Investigation:
    return _intake(state).get(investigation_id)
