"""Control actions of the MCP areas: the one gate they pass and the audit event they leave.

A *control* action changes the watched system (drive the watched page, restart a supervised
process). Every such tool calls :func:`authorize_control` before acting and publishes
:func:`control_event` after: the decision lives here and nowhere else, so a single
authorization decision (principal × action × surface) can replace :func:`authorize_control`
without touching the tools.

Today's rule, the same as circuit control: the ``DIAGNOSTIC_CONTROL_ENABLED`` switch must be
on, and a caller that came with an API key must hold the ``control`` scope. A caller without
a key (stdio, in-process, or HTTP with authentication optional) is trusted as the local
operator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from guilde_core.config import Settings
from guilde_core.errors import AuthenticationError, PermanentError
from guilde_core.events import TimelineEvent, make_event

__all__ = ["LOCAL", "Actor", "authorize_control", "control_event"]


@dataclass(frozen=True)
class Actor:
    """Who asks for a control action: a key fingerprint (never the key) and its scopes.

    ``scopes`` is None for a caller that presented no key (the local operator).
    """

    key_id: str
    scopes: frozenset[str] | None = None
    surface: str = "mcp"

    @classmethod
    def from_principal(cls, principal: Any, surface: str = "mcp") -> Actor:
        """From the HTTP layer's principal (``key_id``, ``scopes``, ``anonymous``)."""
        if principal is None or getattr(principal, "anonymous", False):
            return cls("anonymous", None, surface)
        scopes = getattr(principal, "scopes", None)
        return cls(
            str(getattr(principal, "key_id", "unknown")),
            frozenset(scopes) if scopes is not None else frozenset(),
            surface,
        )


#: the operator at the terminal (stdio MCP, in-process calls)
LOCAL = Actor("local", None, "stdio")


def authorize_control(settings: Settings, actor: Actor, *, action: str, reason: str) -> str:
    """Allow ``action`` for ``actor`` or raise; returns the cleaned reason.

    Raises :class:`PermanentError` when control is switched off or no reason is given, and
    :class:`AuthenticationError` (403) when the caller's key lacks the ``control`` scope.
    """
    if not settings.diagnostic_control_enabled:
        raise PermanentError(
            f"{action} is a control action and control is disabled: "
            "set DIAGNOSTIC_CONTROL_ENABLED=true to allow it"
        )
    if actor.scopes is not None and "control" not in actor.scopes:
        raise AuthenticationError(
            f"{action} needs an API key with the 'control' scope", status_code=403
        )
    cleaned = reason.strip()
    if len(cleaned) < 3:
        raise PermanentError("a reason is required (it is recorded with the action)")
    return cleaned[:500]


def control_event(
    actor: Actor,
    *,
    source: str,
    action: str,
    subject: str,
    reason: str,
    data: dict[str, Any] | None = None,
    ok: bool = True,
    correlation_id: str | None = None,
) -> TimelineEvent:
    """The audited ``control_action`` event: who (key id), what, on what, why, outcome."""
    outcome = "done" if ok else "failed"
    return make_event(
        source=source,
        kind="control_action",
        severity="warning" if ok else "error",
        subject=subject,
        summary=f"{action} {subject} by {actor.key_id} ({outcome}): {reason}",
        data={
            "action": action,
            "key_id": actor.key_id,
            "surface": actor.surface,
            "reason": reason,
            "ok": ok,
            **(data or {}),
        },
        correlation_id=correlation_id,
    )
