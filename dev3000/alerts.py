"""Alert intake: Alertmanager's webhook in, one investigation per firing alert, the diagnosis out.

``POST /api/v1/alerts`` (:mod:`dev3000.api.alerts`) hands each webhook to
:class:`AlertIntake`, which for every alert of the notification:

* **firing**, fingerprint not open yet — opens an :class:`Investigation`, records an ``alert``
  and an ``investigation`` event on the timeline (so on the stream), and starts its
  diagnosis in the background, unless ``ALERT_INTAKE_RATE_LIMIT`` investigations were
  already diagnosed in the last minute (the investigation is then opened as
  ``rate_limited``, not diagnosed: an alert storm never becomes a diagnosis storm);
* **firing**, fingerprint already open — a repeat: counted on the open investigation, nothing
  else (Alertmanager re-sends every ``repeat_interval`` and on every group change);
* **resolved** — closes the open investigation of that fingerprint (an ``investigation``
  event, and a ``resolved`` message to the webhook).

The diagnosis comes from a :data:`Diagnoser` the host passes in (dev3000 calls the
``diagnose`` tool of its own aggregate MCP server in process: the agent's offline engine,
which the ``dev3000`` command registers there; dev3000 itself never imports the agent). It
is written back to the timeline and the stream always (an ``investigation`` event with the
root cause, findings and recommendations; the whole diagnosis at
``GET /api/v1/investigations/{id}``), and to ``ALERT_WEBHOOK_URL`` when set — generic JSON
or a Slack incoming-webhook message (``ALERT_WEBHOOK_FORMAT``) — through the resilience
layer (service ``webhooks``: breaker, retries with backoff; a delivery that fails for good is
a dead letter and a ``dead_letter`` event). Everything that leaves is redacted; the webhook
URL (a Slack URL is a credential) is never logged nor shown, only its host.

Investigations are kept in memory (the newest :data:`MAX_INVESTIGATIONS`), per dev3000
process.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from guilde_core.config import ServiceType, Settings
from guilde_core.errors import (
    ConnectionFailedError,
    GuildeError,
    NotFoundError,
    OperationTimeoutError,
    classify,
    error_from_status,
)
from guilde_core.events import EventKind, Severity
from guilde_core.redaction import redact, redact_text
from guilde_core.resilience import resilient_call

__all__ = [
    "DIAGNOSIS_TIMEOUT",
    "MAX_INVESTIGATIONS",
    "AlertIntake",
    "AlertmanagerAlert",
    "AlertmanagerWebhook",
    "Diagnoser",
    "Emit",
    "IntakeResult",
    "Investigation",
    "InvestigationList",
    "slack_message",
    "webhook_body",
]

log = logging.getLogger("dev3000.alerts")

#: investigations kept (the oldest closed ones are forgotten first)
MAX_INVESTIGATIONS = 500
#: longest one diagnosis may take (seconds)
DIAGNOSIS_TIMEOUT = 60.0
#: diagnoses running at once (more wait their turn)
DIAGNOSIS_CONCURRENCY = 2
#: ``diagnoser(question, focus)`` → the diagnosis (a JSON object)
Diagnoser = Callable[[str, str | None], Awaitable[dict[str, Any]]]
#: ``emit(kind=, subject=, summary=, source=, severity=, data=)`` → a timeline event
Emit = Callable[..., Any]

_LABEL_VALUE_MAX = 1024
#: labels that name the component an alert is about, most specific first
_FOCUS_LABELS = ("component", "service", "name", "check", "target", "job")


# --- the webhook (Alertmanager's format, version 4) --------------------------------------------
class AlertmanagerAlert(BaseModel):
    """One alert of a notification."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    status: Literal["firing", "resolved"]
    labels: dict[str, str] = Field(max_length=64)
    annotations: dict[str, str] = Field(default_factory=dict, max_length=64)
    starts_at: datetime | None = Field(None, alias="startsAt")
    ends_at: datetime | None = Field(None, alias="endsAt")
    generator_url: str = Field("", alias="generatorURL", max_length=2048)
    fingerprint: str = Field("", max_length=128, pattern=r"^[A-Za-z0-9_.:-]*$")

    @field_validator("labels", "annotations")
    @classmethod
    def _bounded(cls, value: dict[str, str]) -> dict[str, str]:
        for key, text in value.items():
            if not key or len(key) > 128:
                raise ValueError("label and annotation names are 1-128 characters")
            if len(text) > 4 * _LABEL_VALUE_MAX:
                raise ValueError(f"{key!r} is longer than {4 * _LABEL_VALUE_MAX} characters")
        return value

    @field_validator("labels")
    @classmethod
    def _named(cls, value: dict[str, str]) -> dict[str, str]:
        if not value.get("alertname"):
            raise ValueError("every alert needs an alertname label")
        return value

    def key(self) -> str:
        """Alertmanager's fingerprint, or one of our own over the sorted labels."""
        if self.fingerprint:
            return self.fingerprint
        text = "\x00".join(f"{k}={v}" for k, v in sorted(self.labels.items()))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


class AlertmanagerWebhook(BaseModel):
    """A notification of Alertmanager's ``webhook_config`` (format version 4)."""

    model_config = ConfigDict(
        extra="ignore",
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {
                    "version": "4",
                    "status": "firing",
                    "receiver": "dev3000",
                    "groupKey": '{}:{alertname="HighErrorRate"}',
                    "alerts": [
                        {
                            "status": "firing",
                            "labels": {"alertname": "HighErrorRate", "severity": "critical"},
                            "annotations": {"summary": "Stack error rate 12% (over 5%)"},
                            "startsAt": "2026-01-02T15:04:05Z",
                            "fingerprint": "c0ffee1234567890",
                        }
                    ],
                }
            ]
        },
    )

    version: str = Field("4", max_length=8)
    status: Literal["firing", "resolved"] = "firing"
    receiver: str = Field("", max_length=200)
    group_key: str = Field("", alias="groupKey", max_length=2048)
    truncated_alerts: int = Field(0, alias="truncatedAlerts", ge=0)
    external_url: str = Field("", alias="externalURL", max_length=2048)
    alerts: list[AlertmanagerAlert] = Field(min_length=1, max_length=200)


# --- investigations ----------------------------------------------------------------------------
DiagnosisStatus = Literal["pending", "running", "done", "failed", "rate_limited", "unavailable"]
DeliveryStatus = Literal["off", "pending", "sent", "failed"]


class Investigation(BaseModel):
    """What one firing alert opened, and what was found."""

    id: str
    fingerprint: str
    alertname: str
    severity: str
    summary: str
    labels: dict[str, str]
    annotations: dict[str, str]
    status: Literal["open", "resolved"] = "open"
    question: str
    focus: str | None = None
    opened_at: datetime
    updated_at: datetime
    resolved_at: datetime | None = None
    occurrences: int = Field(1, description="Firing notifications received for it.")
    diagnosis_status: DiagnosisStatus = "pending"
    diagnosis: dict[str, Any] | None = Field(
        None, description="The diagnosis (root cause, findings, evidence, recommendations)."
    )
    diagnosis_error: str | None = None
    delivery: DeliveryStatus = Field("off", description="The write-back to ALERT_WEBHOOK_URL.")
    delivery_error: str | None = None


class InvestigationList(BaseModel):
    investigations: list[Investigation]
    total: int
    open: int


class IntakeResult(BaseModel):
    """What one webhook did, alert by alert."""

    opened: list[str] = Field(default_factory=list, description="Investigations opened.")
    repeated: list[str] = Field(default_factory=list, description="Already open: counted.")
    resolved: list[str] = Field(default_factory=list, description="Investigations closed.")
    rate_limited: list[str] = Field(
        default_factory=list, description="Opened but not diagnosed (ALERT_INTAKE_RATE_LIMIT)."
    )
    ignored: int = Field(0, description="Resolved alerts with no open investigation.")


def _now() -> datetime:
    return datetime.now(UTC)


def _severity(alert: AlertmanagerAlert) -> Severity:
    value = alert.labels.get("severity", "").lower()
    if value in ("critical", "page"):
        return "critical"
    if value in ("error", "major"):
        return "error"
    if value in ("warning", "warn", "minor"):
        return "warning"
    return "info" if value in ("info", "none") else "warning"


def _focus(labels: dict[str, str]) -> str | None:
    for name in _FOCUS_LABELS:
        if labels.get(name):
            return labels[name][:100]
    return None


def _question(alert: AlertmanagerAlert) -> str:
    name = alert.labels["alertname"]
    summary = alert.annotations.get("summary") or alert.annotations.get("description") or ""
    where = ", ".join(
        f"{k}={v}" for k, v in sorted(alert.labels.items()) if k not in ("alertname", "severity")
    )
    text = f"Alert {name} is firing" + (f" ({where})" if where else "")
    if summary:
        text += f": {summary}"
    return text[:1900] + ". What is the root cause?"


def _brief(diagnosis: dict[str, Any] | None) -> dict[str, Any]:
    """The part of a diagnosis an event and a message carry (the rest: GET by id)."""
    if not diagnosis:
        return {}
    root = diagnosis.get("root_cause") or {}
    findings = [
        {k: f.get(k) for k in ("title", "component", "category", "severity")}
        for f in (diagnosis.get("findings") or [])[:5]
        if isinstance(f, dict)
    ]
    return {
        "status": diagnosis.get("status"),
        "root_cause": {k: root.get(k) for k in ("component", "category", "summary", "confidence")},
        "findings": findings,
        "recommendations": list(diagnosis.get("recommendations") or [])[:4],
        "evidence": len(diagnosis.get("evidence") or []),
        "mode": diagnosis.get("mode"),
    }


# --- the write-back payloads -----------------------------------------------------------------
def webhook_body(event: str, investigation: Investigation) -> dict[str, Any]:
    """The generic JSON payload: the event name and the investigation (diagnosis brief)."""
    data = investigation.model_dump(mode="json", exclude={"diagnosis"})
    data["diagnosis"] = _brief(investigation.diagnosis) or None
    body: dict[str, Any] = redact({"event": event, "investigation": data})
    return body


def slack_message(event: str, investigation: Investigation) -> dict[str, Any]:
    """A Slack incoming-webhook message (``text`` plus ``blocks``) for the same event."""
    inv = investigation
    brief = _brief(inv.diagnosis)
    if event == "investigation.resolved":
        head = f":white_check_mark: *{inv.alertname}* resolved (investigation `{inv.id}`)"
        lines = [head]
    else:
        icon = ":rotating_light:" if inv.severity == "critical" else ":warning:"
        head = f"{icon} *{inv.alertname}* ({inv.severity}): {inv.summary}"
        lines = [head]
        root = brief.get("root_cause") or {}
        if root.get("summary"):
            lines.append(
                f"*Root cause* ({root.get('component')}, {root.get('category')}, "
                f"confidence {root.get('confidence')}): {root.get('summary')}"
            )
        elif inv.diagnosis_status != "done":
            lines.append(f"Diagnosis {inv.diagnosis_status}: {inv.diagnosis_error or ''}".strip())
        for rec in brief.get("recommendations") or []:
            lines.append(f"• {rec}")
        lines.append(f"Investigation `{inv.id}`")
    text = redact_text("\n".join(lines))[:3000]
    return {
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
    }


# --- the intake --------------------------------------------------------------------------------
class AlertIntake:
    """The investigations of one dev3000, and what opens, diagnoses and closes them."""

    def __init__(
        self,
        settings: Callable[[], Settings],
        emit: Emit,
        diagnoser: Diagnoser | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        diagnosis_timeout: float = DIAGNOSIS_TIMEOUT,
    ) -> None:
        self._settings = settings
        self._emit = emit
        self.diagnoser = diagnoser
        self._clock = clock
        self._timeout = diagnosis_timeout
        self._items: OrderedDict[str, Investigation] = OrderedDict()
        self._open: dict[str, str] = {}  # fingerprint → id of its open investigation
        self._diagnosed: deque[float] = deque()  # when each diagnosis was started
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(DIAGNOSIS_CONCURRENCY)
        self._lock = asyncio.Lock()

    # --- reading ---------------------------------------------------------------------------
    def list(self, *, status: str | None = None, limit: int = 50) -> InvestigationList:
        items = [i for i in reversed(self._items.values()) if status in (None, i.status)]
        return InvestigationList(
            investigations=[i.model_copy() for i in items[:limit]],
            total=len(items),
            open=len(self._open),
        )

    def get(self, investigation_id: str) -> Investigation:
        found = self._items.get(investigation_id)
        if found is None:
            raise NotFoundError(f"no investigation {investigation_id!r}")
        return found.model_copy()

    # --- the webhook -----------------------------------------------------------------------
    async def receive(self, webhook: AlertmanagerWebhook) -> IntakeResult:
        """Apply one notification (see the module doc); diagnoses run in the background."""
        result = IntakeResult()
        async with self._lock:
            for alert in webhook.alerts:
                if alert.status == "firing":
                    self._firing(alert, result)
                else:
                    self._resolved(alert, result)
        return result

    def _firing(self, alert: AlertmanagerAlert, result: IntakeResult) -> None:
        fingerprint = alert.key()
        current = self._open.get(fingerprint)
        if current is not None:
            inv = self._items[current]
            inv.occurrences += 1
            inv.updated_at = _now()
            result.repeated.append(inv.id)
            return
        settings = self._settings()
        now = _now()
        inv = Investigation(
            id=f"inv-{uuid.uuid4().hex[:12]}",
            fingerprint=fingerprint,
            alertname=alert.labels["alertname"][:200],
            severity=_severity(alert),
            summary=(alert.annotations.get("summary") or alert.labels["alertname"])[:500],
            labels={k: v[:_LABEL_VALUE_MAX] for k, v in alert.labels.items()},
            annotations={k: v[:_LABEL_VALUE_MAX] for k, v in alert.annotations.items()},
            question=_question(alert),
            focus=_focus(alert.labels),
            opened_at=now,
            updated_at=now,
            delivery="pending" if settings.alert_webhook_url else "off",
        )
        inv = redact(inv)
        self._remember(inv)
        result.opened.append(inv.id)
        self._event(
            "alert",
            inv,
            f"alert {inv.alertname} firing: {inv.summary}",
            severity=_severity(alert),
            data={"status": "firing", "labels": inv.labels, "annotations": inv.annotations},
        )
        limited = self._rate_limited(settings.alert_intake_rate_limit)
        if limited:
            inv.diagnosis_status = "rate_limited"
            inv.diagnosis_error = (
                f"more than {settings.alert_intake_rate_limit} investigations in the last "
                "minute (ALERT_INTAKE_RATE_LIMIT): opened, not diagnosed"
            )
            result.rate_limited.append(inv.id)
        elif self.diagnoser is None:
            inv.diagnosis_status = "unavailable"
            inv.diagnosis_error = (
                "no diagnosis engine in this dev3000 (the `dev3000` command registers the "
                "agent's diagnose tool)"
            )
        self._event(
            "investigation",
            inv,
            f"investigation {inv.id} opened for {inv.alertname}"
            + (f" ({inv.diagnosis_status})" if inv.diagnosis_status != "pending" else ""),
            data={"status": "open", "diagnosis_status": inv.diagnosis_status},
        )
        if inv.diagnosis_status == "pending":
            self._spawn(self._diagnose(inv.id))
        elif inv.delivery == "pending":
            self._spawn(self._deliver(inv.id, "investigation.opened"))

    def _resolved(self, alert: AlertmanagerAlert, result: IntakeResult) -> None:
        current = self._open.pop(alert.key(), None)
        if current is None:
            result.ignored += 1
            return
        inv = self._items[current]
        inv.status = "resolved"
        inv.resolved_at = inv.updated_at = _now()
        result.resolved.append(inv.id)
        self._event(
            "alert",
            inv,
            f"alert {inv.alertname} resolved",
            data={"status": "resolved", "labels": inv.labels},
        )
        self._event(
            "investigation",
            inv,
            f"investigation {inv.id} closed: {inv.alertname} resolved",
            data={"status": "resolved", "diagnosis_status": inv.diagnosis_status},
        )
        if self._settings().alert_webhook_url:
            self._spawn(self._deliver(inv.id, "investigation.resolved"))

    def _remember(self, inv: Investigation) -> None:
        self._items[inv.id] = inv
        self._open[inv.fingerprint] = inv.id
        while len(self._items) > MAX_INVESTIGATIONS:
            oldest = next(
                (k for k, v in self._items.items() if v.status == "resolved"),
                next(iter(self._items)),
            )
            dropped = self._items.pop(oldest)
            if self._open.get(dropped.fingerprint) == oldest:
                del self._open[dropped.fingerprint]

    def _rate_limited(self, per_minute: int) -> bool:
        now = self._clock()
        while self._diagnosed and now - self._diagnosed[0] >= 60.0:
            self._diagnosed.popleft()
        if len(self._diagnosed) >= per_minute:
            return True
        self._diagnosed.append(now)
        return False

    def _event(
        self,
        kind: EventKind,
        inv: Investigation,
        summary: str,
        *,
        severity: Severity = "info",
        data: dict[str, Any] | None = None,
    ) -> None:
        self._emit(
            kind=kind,
            source="alerts",
            subject=inv.alertname,
            summary=summary[:300],
            severity=severity,
            data={"investigation_id": inv.id, "fingerprint": inv.fingerprint, **(data or {})},
        )

    def _spawn(self, work: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- diagnosis and write-back -----------------------------------------------------------
    async def _diagnose(self, investigation_id: str) -> None:
        inv = self._items.get(investigation_id)
        if inv is None or self.diagnoser is None:
            return
        async with self._slots:
            inv.diagnosis_status = "running"
            try:
                diagnosis = await asyncio.wait_for(
                    self.diagnoser(inv.question, inv.focus), self._timeout
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                typed = classify(exc)
                inv.diagnosis_status = "failed"
                inv.diagnosis_error = redact_text(
                    f"the diagnosis took longer than {self._timeout:g} s"
                    if isinstance(exc, TimeoutError)
                    else f"{typed.code}: {typed.message}"
                )[:500]
                log.warning("diagnosis of %s failed: %s", inv.id, type(exc).__name__)
            else:
                inv.diagnosis = redact(diagnosis)
                inv.diagnosis_status = "done"
        inv.updated_at = _now()
        brief = _brief(inv.diagnosis)
        root = brief.get("root_cause") or {}
        self._event(
            "investigation",
            inv,
            (
                f"investigation {inv.id} ({inv.alertname}): {root.get('summary') or 'no cause'}"
                if inv.diagnosis_status == "done"
                else f"investigation {inv.id} ({inv.alertname}): diagnosis failed: "
                f"{inv.diagnosis_error}"
            ),
            severity="warning" if inv.diagnosis_status == "done" else "error",
            data={
                "status": inv.status,
                "diagnosis_status": inv.diagnosis_status,
                "diagnosis": brief or None,
                "error": inv.diagnosis_error,
            },
        )
        if inv.delivery == "pending":
            await self._deliver(inv.id, "investigation.diagnosed")

    async def _deliver(self, investigation_id: str, event: str) -> None:
        """Post ``event`` to ALERT_WEBHOOK_URL through the resilience layer."""
        inv = self._items.get(investigation_id)
        settings = self._settings()
        secret = settings.alert_webhook_url
        if inv is None or secret is None:
            return
        url = secret.get_secret_value()
        host = urlsplit(url).hostname or "?"
        body = (
            slack_message(event, inv)
            if settings.alert_webhook_format == "slack"
            else webhook_body(event, inv)
        )

        async def attempt(limit: float | None) -> None:
            # errors name the host only: the URL (a credential for Slack) never reaches an
            # error text, a log line or a dead letter
            try:
                async with httpx.AsyncClient(
                    timeout=limit or 10.0, follow_redirects=False
                ) as client:
                    response = await client.post(url, json=body)
            except httpx.TimeoutException:
                raise OperationTimeoutError(
                    f"webhook {host} did not answer in time", service="webhooks"
                ) from None
            except httpx.TransportError as exc:
                raise ConnectionFailedError(
                    f"webhook {host} unreachable ({type(exc).__name__})", service="webhooks"
                ) from None
            if response.status_code >= 300:
                # the status decides: 429 and 5xx are retried, other answers are permanent
                raise error_from_status(
                    response.status_code,
                    f"webhook {host} answered HTTP {response.status_code}",
                    headers=response.headers,
                    service="webhooks",
                )

        try:
            await resilient_call(
                "webhooks",
                attempt,
                service_type=ServiceType.THIRD_PARTY_API,
                payload={"webhook_host": host, "event": event, "body": body},
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            typed = exc if isinstance(exc, GuildeError) else classify(exc, service="webhooks")
            reason = redact_text(typed.message.replace(url, f"<webhook {host}>"))[:300]
            inv.delivery, inv.delivery_error = "failed", f"{typed.code}: {reason}"
            self._event(
                "dead_letter",
                inv,
                f"write-back of {inv.id} to {host} failed for good: {typed.code}",
                severity="error",
                data={"service": "webhooks", "event": event, "error": inv.delivery_error},
            )
            return
        inv.delivery, inv.delivery_error = "sent", None

    async def drain(self, wait: float = 5.0) -> None:
        """Wait for running diagnoses and deliveries up to ``wait`` seconds; cancel the rest."""
        pending = list(self._tasks)
        if not pending:
            return
        _done, still = await asyncio.wait(pending, timeout=wait)
        for task in still:
            task.cancel()
        for task in still:
            with contextlib.suppress(BaseException):
                await task
