"""The one authorization decision, and the one audit record of a control action.

Every surface asks :func:`decide` — REST routes, the MCP endpoint and each MCP control tool
*per call*, the timeline's SSE and WebSocket stream, the ``/timeline`` page, stdio MCP and
the ``dev3000 breakers`` command line — with the same three things:

* the **principal**: an API key (its id and scopes), :data:`ANONYMOUS` (no key sent) or the
  local operator (:func:`local_operator`: stdio, the command line);
* the **action**: ``read`` or ``control`` (anything that changes the watched system);
* the **surface** it came through (:data:`Surface`);

under the :class:`Posture` the configuration sets (auth required, the control switch,
whether dev3000 is exposed). The answer is allow, or a refusal with its HTTP status (401 /
403), a problem code and a reason naming the fix:

========================  =================================================================
principal                 rule, in order
========================  =================================================================
anonymous                 401 when ``DIAGNOSTIC_AUTH_REQUIRED=true``; ``control`` is 403
                          (``control_needs_key``) when exposed — outside development or
                          bound to a non-loopback address; otherwise allowed
API key                   403 (``forbidden``) when its scopes lack the action
local operator            scopes ``read``, plus ``control`` when
                          ``DIAGNOSTIC_CONTROL_ENABLED=true``; 403 (``forbidden``) otherwise
any, ``control`` over     403 (``control_disabled``) unless
MCP or stdio              ``DIAGNOSTIC_CONTROL_ENABLED=true``
========================  =================================================================

Every accepted control action, whatever its surface, is recorded by :func:`control_event`:
one ``control_action`` timeline event with the surface, key id, action, subject, reason and
outcome.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol

from guilde_core.errors import AuthenticationError, InvalidInputError
from guilde_core.events import TimelineEvent, make_event

__all__ = [
    "ANONYMOUS",
    "REASON_MAX",
    "REASON_MIN",
    "SWITCHED_SURFACES",
    "Action",
    "AuthFailure",
    "Caller",
    "ControlDisabled",
    "ControlNeedsKey",
    "Decision",
    "Forbidden",
    "Posture",
    "Principal",
    "Surface",
    "Unauthenticated",
    "authorize_control",
    "check_reason",
    "control_event",
    "decide",
    "exposure",
    "is_loopback",
    "local_operator",
]

Action = Literal["read", "control"]
#: where a call came from: the REST API, MCP over streamable HTTP (``/mcp``), MCP over the
#: legacy SSE transport (``/sse``), the timeline's SSE stream, its WebSocket, the
#: ``/timeline`` page, MCP over stdio, the ``dev3000`` command line
Surface = Literal["rest", "mcp", "mcp-sse", "sse", "websocket", "page", "stdio", "cli"]
#: surfaces whose control actions also need ``DIAGNOSTIC_CONTROL_ENABLED=true``
SWITCHED_SURFACES: frozenset[Surface] = frozenset({"mcp", "mcp-sse", "stdio"})

REASON_MIN = 3
REASON_MAX = 500


@dataclass(frozen=True)
class Principal:
    """Who is calling: ``key_id`` is a short, non-secret fingerprint of the key (or
    ``anonymous`` / ``local``), ``scopes`` what it holds."""

    key_id: str
    scopes: frozenset[str]
    anonymous: bool = False

    def has(self, scope: str) -> bool:
        return scope in self.scopes


#: the caller that sent no key; what it may do is the posture's business (:func:`decide`)
ANONYMOUS = Principal(key_id="anonymous", scopes=frozenset(), anonymous=True)


class _Settings(Protocol):
    """The settings the posture is read from (``guilde_core.config.Settings``)."""

    @property
    def dev3000_mode(self) -> str: ...
    @property
    def dev3000_host(self) -> str: ...
    @property
    def diagnostic_auth_required(self) -> bool: ...
    @property
    def diagnostic_control_enabled(self) -> bool: ...


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a bind address or a host name) only reaches this machine."""
    name = host.strip().strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def exposure(mode: str, bind_host: str) -> str | None:
    """Why callers other than this machine's may reach the server, or None: a profile other
    than development, or a bind address that is not loopback."""
    reasons = []
    if mode != "development":
        reasons.append(f"DEV3000_MODE={mode}")
    if not is_loopback(bind_host):
        reasons.append(f"bound to {bind_host or 'every address'}, not loopback")
    return "; ".join(reasons) or None


@dataclass(frozen=True)
class Posture:
    """What the configuration says about access, besides the keys themselves."""

    #: ``DIAGNOSTIC_AUTH_REQUIRED``: callers without a key get 401
    auth_required: bool = False
    #: ``DIAGNOSTIC_CONTROL_ENABLED``: control through MCP and by the local operator
    control_enabled: bool = False
    #: why anonymous control is refused here (:func:`exposure`); None: development on loopback
    exposed: str | None = None

    @classmethod
    def from_settings(cls, settings: _Settings, *, bind_host: str | None = None) -> Posture:
        """The posture of ``settings``; ``bind_host`` overrides ``DEV3000_HOST`` (the
        address the server really binds)."""
        host = settings.dev3000_host if bind_host is None else bind_host
        return cls(
            auth_required=bool(settings.diagnostic_auth_required),
            control_enabled=bool(settings.diagnostic_control_enabled),
            exposed=exposure(settings.dev3000_mode, host),
        )


def local_operator(posture: Posture) -> Principal:
    """The person at this machine (stdio MCP, the command line): read-only unless
    ``DIAGNOSTIC_CONTROL_ENABLED=true`` gives it ``control`` too."""
    scopes = {"read", "control"} if posture.control_enabled else {"read"}
    return Principal(key_id="local", scopes=frozenset(scopes))


# --- refusals ---------------------------------------------------------------------------------
class AuthFailure(AuthenticationError):
    """A refusal of :func:`decide`: 401 or 403 with a problem code naming why."""

    @property
    def status(self) -> int:
        return self.http_status


class Unauthenticated(AuthFailure):
    """No key where one is required, or a key that matches none configured."""

    code: ClassVar[str] = "authentication"
    http_status: ClassVar[int] = 401


class Forbidden(AuthFailure):
    """The principal lacks the action's scope."""

    code: ClassVar[str] = "forbidden"
    http_status: ClassVar[int] = 403


class ControlNeedsKey(Forbidden):
    """Anonymous control where dev3000 is exposed."""

    code: ClassVar[str] = "control_needs_key"


class ControlDisabled(Forbidden):
    """Control through MCP or stdio while ``DIAGNOSTIC_CONTROL_ENABLED`` is off."""

    code: ClassVar[str] = "control_disabled"


# --- the decision ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Decision:
    """The answer: ``status`` 200 (allowed), 401 or 403; ``code`` and ``reason`` say why."""

    principal: Principal
    action: Action
    surface: Surface
    status: int = 200
    code: str = "allowed"
    reason: str = "allowed"
    refusal: type[AuthFailure] | None = None

    @property
    def allowed(self) -> bool:
        return self.refusal is None

    def require(self) -> Principal:
        """The principal when allowed; else raise the refusal."""
        if self.refusal is not None:
            raise self.refusal(self.reason)
        return self.principal


def _refuse(
    principal: Principal, action: Action, surface: Surface, refusal: type[AuthFailure], why: str
) -> Decision:
    return Decision(
        principal,
        action,
        surface,
        status=refusal.http_status,
        code=refusal.code,
        reason=why,
        refusal=refusal,
    )


def decide(principal: Principal, action: Action, surface: Surface, posture: Posture) -> Decision:
    """May ``principal`` do ``action`` through ``surface`` under ``posture``? (module doc)"""
    if principal.anonymous:
        if posture.auth_required:
            return _refuse(
                principal,
                action,
                surface,
                Unauthenticated,
                # worded so that redaction (which masks "Authorization: <value>") keeps it whole
                "an API key is required: send it in the X-API-Key header or as a Bearer "
                "token in the Authorization header",
            )
        if action == "control" and posture.exposed:
            return _refuse(
                principal,
                action,
                surface,
                ControlNeedsKey,
                f"control needs an API key with the 'control' scope here ({posture.exposed}): "
                "add <key>:read+control to DIAGNOSTIC_API_KEYS and send it as X-API-Key",
            )
    elif not principal.has(action):
        why = (
            "the local operator may only read: set DIAGNOSTIC_CONTROL_ENABLED=true to allow "
            "control over stdio and the command line"
            if principal.key_id == "local"
            else f"the API key lacks the {action!r} scope"
        )
        return _refuse(principal, action, surface, Forbidden, why)
    if action == "control" and surface in SWITCHED_SURFACES and not posture.control_enabled:
        return _refuse(
            principal,
            action,
            surface,
            ControlDisabled,
            f"control through {'MCP' if surface != 'stdio' else 'stdio MCP'} is disabled: "
            "set DIAGNOSTIC_CONTROL_ENABLED=true to allow it",
        )
    return Decision(principal, action, surface)


@dataclass(frozen=True)
class Caller:
    """Who calls, through which surface, under which posture: all :func:`decide` needs
    besides the action. The HTTP guards build it per request; the MCP tools read it from
    their call's request (or make the local operator's over stdio)."""

    principal: Principal
    surface: Surface
    posture: Posture

    @classmethod
    def local(cls, posture: Posture, surface: Surface = "stdio") -> Caller:
        return cls(local_operator(posture), surface, posture)

    def decide(self, action: Action) -> Decision:
        return decide(self.principal, action, self.surface, self.posture)

    def require(self, action: Action) -> Principal:
        """The principal when ``action`` is allowed; else the refusal is raised."""
        return self.decide(action).require()


# --- the gate and the audit record -------------------------------------------------------------
def authorize_control(caller: Caller, reason: str) -> str:
    """THE gate of every control action (REST, each MCP call, the browser's page actions,
    process restarts, the command line): the decision for ``control``, then the reason every
    such action carries. Returns the reason, stripped; raises the refusal
    (:class:`AuthFailure`) or :class:`InvalidInputError`."""
    caller.require("control")
    return check_reason(reason)


def check_reason(reason: str) -> str:
    """The reason every control action needs, stripped: :data:`REASON_MIN`-:data:`REASON_MAX`
    characters, else :class:`InvalidInputError`."""
    text = reason.strip()
    if not REASON_MIN <= len(text) <= REASON_MAX:
        raise InvalidInputError(
            f"a reason of {REASON_MIN}-{REASON_MAX} characters is required "
            "(it is recorded with the action)"
        )
    return text


def control_event(
    caller: Caller,
    *,
    source: str,
    action: str,
    subject: str,
    reason: str,
    ok: bool = True,
    data: dict[str, Any] | None = None,
) -> TimelineEvent:
    """THE audit record of a control action, on every surface: a ``control_action`` event
    saying who (key id, never the key), through what, did what to what, why, and how it went."""
    outcome = "done" if ok else "failed"
    principal = caller.principal
    return make_event(
        source=source,
        kind="control_action",
        severity="warning" if ok else "error",
        subject=subject[:200],
        summary=f"{action} {subject} by {principal.key_id} via {caller.surface} ({outcome}): "
        f"{reason}"[:300],
        data={
            **(data or {}),
            "action": action,
            "key_id": principal.key_id,
            "surface": caller.surface,
            "reason": reason,
            "ok": ok,
        },
    )
