"""API keys with scopes, and how each HTTP surface asks the one authorization decision.

``DIAGNOSTIC_API_KEYS`` is a comma-separated list of ``<key>:<scopes>`` where scopes is
``read`` or ``read+control`` and the key is given plainly or as ``sha256:<hex>`` (so no
plaintext need be stored). Keys are kept only as SHA-256 digests in memory; a presented key
is hashed and compared with every stored digest by :func:`hmac.compare_digest` (no early
exit), so timing does not reveal which key, or how much of it, matched.

Keys are sent as ``X-API-Key: <key>`` or ``Authorization: Bearer <key>`` (WebSocket and SSE
clients that cannot set headers may pass ``?token=<key>``; see :func:`extract_token`).

Reusable pieces:

* :class:`Keyring` — the parsed keys and the :class:`~guilde_core.http.authz.Posture` they
  go with; ``keyring.identify(token)`` → :class:`Principal` or None.
* :func:`authenticate` — who is calling (a key that matches none is 401), then the one
  decision (:func:`guilde_core.http.authz.decide`) for an action through a surface.
* :func:`require_scope` — a FastAPI dependency factory (``Depends(require_scope("control"))``).
* :class:`AuthGuard` — an ASGI wrapper that protects a mounted app (the MCP endpoint) and
  hands the :class:`~guilde_core.http.authz.Caller` to it in ``scope["state"]``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from guilde_core.config import Settings
from guilde_core.errors import ConfigurationError
from guilde_core.http.authz import (
    ANONYMOUS,
    Action,
    AuthFailure,
    Caller,
    Posture,
    Principal,
    Surface,
    Unauthenticated,
)
from guilde_core.http.problems import problem_response

__all__ = [
    "ANONYMOUS",
    "API_KEY_HEADER",
    "BEARER",
    "AuthFailure",
    "AuthGuard",
    "ControlKey",
    "Keyring",
    "Principal",
    "ReadKey",
    "ScopeName",
    "authenticate",
    "authenticate_connection",
    "caller_of",
    "control_posture_issue",
    "extract_token",
    "hash_key",
    "identify",
    "parse_api_keys",
    "refusal_response",
    "require_scope",
]

ScopeName = Action
_SCOPE_SETS: dict[str, frozenset[str]] = {
    "read": frozenset({"read"}),
    "read+control": frozenset({"read", "control"}),
    "control+read": frozenset({"read", "control"}),
}
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_VARIABLE = "DIAGNOSTIC_API_KEYS"


def hash_key(key: str) -> str:
    """Hex SHA-256 of a key (what ``sha256:<hex>`` entries hold)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class _Entry:
    digest: bytes
    scopes: frozenset[str]
    key_id: str


def parse_api_keys(spec: str | None) -> list[_Entry]:
    """Parse ``DIAGNOSTIC_API_KEYS``; raise :class:`ConfigurationError` naming the variable."""
    entries: list[_Entry] = []
    if not spec or not spec.strip():
        return entries
    for position, raw in enumerate(spec.split(","), start=1):
        item = raw.strip()
        if not item:
            continue
        if ":" not in item:
            raise ConfigurationError(
                f"{_VARIABLE}: entry {position} has no scopes; write <key>:read or <key>:read+control"
            )
        key, scopes_text = item.rsplit(":", 1)
        scopes = _SCOPE_SETS.get(scopes_text.strip().lower())
        if scopes is None:
            raise ConfigurationError(
                f"{_VARIABLE}: entry {position} has unknown scopes {scopes_text.strip()!r}; "
                "use read or read+control"
            )
        key = key.strip()
        if key.lower().startswith("sha256:"):
            hex_digest = key[len("sha256:") :].strip()
            if not _HEX64.match(hex_digest):
                raise ConfigurationError(
                    f"{_VARIABLE}: entry {position} is not sha256:<64 hex digits>"
                )
            digest = bytes.fromhex(hex_digest)
        else:
            if not key:
                raise ConfigurationError(f"{_VARIABLE}: entry {position} has an empty key")
            digest = hashlib.sha256(key.encode("utf-8")).digest()
        entries.append(_Entry(digest=digest, scopes=scopes, key_id=digest.hex()[:8]))
    return entries


@dataclass
class Keyring:
    """The configured keys, hashed, and the posture they go with (auth required, the control
    switch, exposure: :class:`~guilde_core.http.authz.Posture`)."""

    entries: list[_Entry] = field(default_factory=list)
    posture: Posture = field(default_factory=Posture)

    @property
    def required(self) -> bool:
        """``DIAGNOSTIC_AUTH_REQUIRED``: callers without a key get 401."""
        return self.posture.auth_required

    @property
    def has_control_key(self) -> bool:
        """Whether any configured key holds the ``control`` scope."""
        return any("control" in entry.scopes for entry in self.entries)

    @classmethod
    def from_spec(
        cls, spec: str | None, *, required: bool = False, posture: Posture | None = None
    ) -> Keyring:
        return cls(entries=parse_api_keys(spec), posture=posture or Posture(auth_required=required))

    @classmethod
    def from_settings(cls, settings: Settings, *, bind_host: str | None = None) -> Keyring:
        """The keys and posture of ``settings``; ``bind_host``: the address the server
        really binds, when not ``DEV3000_HOST``."""
        secret = settings.diagnostic_api_keys
        spec = secret.get_secret_value() if secret is not None else None
        return cls.from_spec(spec, posture=Posture.from_settings(settings, bind_host=bind_host))

    def identify(self, token: str | None) -> Principal | None:
        """The principal of ``token`` or None; constant-time over every stored digest."""
        if not token:
            return None
        presented = hashlib.sha256(token.encode("utf-8")).digest()
        found: _Entry | None = None
        for entry in self.entries:
            if hmac.compare_digest(presented, entry.digest) and found is None:
                found = entry
        if found is None:
            return None
        return Principal(key_id=found.key_id, scopes=found.scopes)


def extract_token(headers: Mapping[str, str], query: Mapping[str, str] | None = None) -> str | None:
    """The key sent as ``X-API-Key``, ``Authorization: Bearer`` or (stream) ``?token=``."""
    value = headers.get("x-api-key")
    if value:
        return value.strip()
    auth = headers.get("authorization")
    if auth:
        scheme, _, credentials = auth.partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
    if query is not None:
        token = query.get("token") or query.get("api_key")
        if token:
            return token.strip()
    return None


def identify(token: str | None, keyring: Keyring) -> Principal:
    """Who is calling: the key's principal, :data:`ANONYMOUS` without a key; a key that
    matches none configured is 401 (always, even when auth is optional)."""
    if not token:
        return ANONYMOUS
    principal = keyring.identify(token)
    if principal is None:
        raise Unauthenticated("invalid API key")
    return principal


def authenticate(
    token: str | None,
    keyring: Keyring,
    *,
    action: Action = "read",
    surface: Surface = "rest",
    protected: bool = True,
) -> Principal:
    """:func:`identify` the caller, then (for a ``protected`` resource) ask the one decision
    whether it may do ``action`` through ``surface``; a refusal is raised
    (:class:`~guilde_core.http.authz.AuthFailure`, 401 or 403). An unprotected resource
    (anonymous callers get a reduced answer) only identifies."""
    principal = identify(token, keyring)
    if protected:
        Caller(principal, surface, keyring.posture).require(action)
    return principal


def control_posture_issue(
    settings: Settings, *, bind_host: str | None = None
) -> tuple[str, str] | None:
    """Why nobody could control this server as configured, and the fix; None when someone
    can. It is so when the server is exposed (outside development or on a non-loopback
    address: anonymous control is refused), anonymous callers are accepted and no configured
    key holds the ``control`` scope. ``dev3000 doctor``, ``dev3000 config check`` and the
    start-up log report it."""
    if not (settings.diagnostic_mode or settings.dev3000_enabled):
        return None  # no surface to control through
    try:
        keyring = Keyring.from_settings(settings, bind_host=bind_host)
    except ConfigurationError:
        return None  # the keys themselves are reported as invalid
    posture = keyring.posture
    if posture.exposed is None or posture.auth_required or keyring.has_control_key:
        return None
    return (
        f"control without an API key is refused here ({posture.exposed}) and no key in "
        "DIAGNOSTIC_API_KEYS holds the 'control' scope",
        "add <key>:read+control to DIAGNOSTIC_API_KEYS (and DIAGNOSTIC_AUTH_REQUIRED=true "
        "so reads need a key too)",
    )


def _keyring_of(conn: HTTPConnection) -> Keyring:
    keyring = getattr(conn.app.state, "keyring", None)
    if not isinstance(keyring, Keyring):
        raise RuntimeError("app.state.keyring is not set (the app factory sets it)")
    return keyring


def caller_of(scope: Scope) -> Caller | None:
    """The :class:`~guilde_core.http.authz.Caller` a guard or dependency left on a request's
    scope (None when none ran)."""
    caller = scope.get("state", {}).get("caller")
    return caller if isinstance(caller, Caller) else None


def _remember(scope: Scope, caller: Caller) -> None:
    state = scope.setdefault("state", {})
    state["caller"] = caller
    state["principal"] = caller.principal


def authenticate_connection(
    conn: HTTPConnection,
    *,
    action: Action = "read",
    surface: Surface = "rest",
    protected: bool = True,
) -> Principal:
    """:func:`authenticate` for a Starlette request or WebSocket of an app whose
    ``state.keyring`` is set; the caller is left on the connection's scope."""
    keyring = _keyring_of(conn)
    token = extract_token(conn.headers, conn.query_params)
    principal = authenticate(token, keyring, action=action, surface=surface, protected=protected)
    _remember(conn.scope, Caller(principal, surface, keyring.posture))
    return principal


#: the two ways to send a key, as OpenAPI security schemes. ``auto_error=False``: they only
#: declare; :func:`authenticate` alone decides (and reads the headers itself)
API_KEY_HEADER = APIKeyHeader(
    name="X-API-Key",
    scheme_name="ApiKey",
    description="An API key from DIAGNOSTIC_API_KEYS (scope read, or read+control).",
    auto_error=False,
)
BEARER = HTTPBearer(
    scheme_name="Bearer",
    description="The same API key as `Authorization: Bearer <key>`.",
    auto_error=False,
)


def require_scope(action: Action = "read", *, protected: bool = True) -> Callable[..., Principal]:
    """FastAPI dependency: ``principal = Depends(require_scope("control"))`` (a REST route).
    The route's OpenAPI operation lists the ``ApiKey`` and ``Bearer`` security schemes."""

    def dependency(
        conn: HTTPConnection,
        _api_key: Annotated[str | None, Security(API_KEY_HEADER)] = None,
        _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)] = None,
    ) -> Principal:
        return authenticate_connection(conn, action=action, protected=protected)

    return dependency


def refusal_response(scope: Scope, failure: AuthFailure) -> ASGIApp:
    """The problem document of a refusal (401 with ``WWW-Authenticate``, or 403)."""
    headers = {"WWW-Authenticate": 'Bearer realm="dev3000"'} if failure.status == 401 else None
    return problem_response(
        failure.status,
        failure.message,
        code=failure.code,
        instance=str(scope.get("path", "")),
        headers=headers,
    )


class AuthGuard:
    """ASGI wrapper: a request to ``app`` must be allowed to ``read`` through ``surface``;
    the :class:`~guilde_core.http.authz.Caller` is left in ``scope["state"]["caller"]`` for
    the app (the MCP tools decide their control actions per call with it).

    ``problem`` renders the rejection (default: :func:`refusal_response`).
    """

    def __init__(
        self,
        app: ASGIApp,
        keyring: Callable[[], Keyring],
        problem: Callable[[Scope, AuthFailure], ASGIApp] = refusal_response,
        *,
        surface: Surface = "mcp",
    ) -> None:
        self.app = app
        self.keyring = keyring
        self.problem = problem
        self.surface: Surface = surface

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        keyring = self.keyring()
        try:
            principal = authenticate(
                extract_token(conn.headers, conn.query_params),
                keyring,
                action="read",
                surface=self.surface,
            )
        except AuthFailure as failure:
            await self.problem(scope, failure)(scope, receive, send)
            return
        _remember(scope, Caller(principal, self.surface, keyring.posture))
        await self.app(scope, receive, send)


#: ``_: ReadKey`` in a route's parameters: allowed to read (a key when auth is required)
ReadKey = Annotated[Principal, Depends(require_scope("read"))]
#: ``principal: ControlKey``: allowed to control (the one decision: a key with
#: ``read+control``; anonymous only in development on loopback with auth optional)
ControlKey = Annotated[Principal, Depends(require_scope("control"))]
