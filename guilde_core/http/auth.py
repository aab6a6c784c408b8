"""API keys with scopes for the HTTP APIs (dev3000's, agent-web's), streams and the MCP endpoint.

``DIAGNOSTIC_API_KEYS`` is a comma-separated list of ``<key>:<scopes>`` where scopes is
``read`` or ``read+control`` and the key is given plainly or as ``sha256:<hex>`` (so no
plaintext need be stored). Keys are kept only as SHA-256 digests in memory; a presented key
is hashed and compared with every stored digest by :func:`hmac.compare_digest` (no early
exit), so timing does not reveal which key, or how much of it, matched.

Keys are sent as ``X-API-Key: <key>`` or ``Authorization: Bearer <key>`` (WebSocket and SSE
clients that cannot set headers may pass ``?token=<key>``; see :func:`extract_token`).

Reusable pieces:

* :class:`Keyring` — parsed keys; ``keyring.identify(token)`` → :class:`Principal` or None.
* :func:`authenticate` — the one decision (401 / 403 / anonymous / principal) used by REST
  dependencies, the WebSocket/SSE stream and the MCP endpoint.
* :func:`require_scope` — a FastAPI dependency factory (``Depends(require_scope("control"))``).
* :class:`AuthGuard` — an ASGI wrapper that protects a mounted app (the MCP endpoint).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Literal

from fastapi import Depends, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from guilde_core.config import Settings
from guilde_core.errors import AuthenticationError, ConfigurationError

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
    "extract_token",
    "hash_key",
    "parse_api_keys",
    "require_scope",
]

ScopeName = Literal["read", "control"]
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
class Principal:
    """Who is calling: ``key_id`` is a short, non-secret fingerprint of the key."""

    key_id: str
    scopes: frozenset[str]
    anonymous: bool = False

    def has(self, scope: str) -> bool:
        return scope in self.scopes


#: the caller when no key was sent and auth is not required (full access, development)
ANONYMOUS = Principal(key_id="anonymous", scopes=frozenset({"read", "control"}), anonymous=True)


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
    """The configured keys, hashed. ``required`` mirrors ``DIAGNOSTIC_AUTH_REQUIRED``."""

    entries: list[_Entry] = field(default_factory=list)
    required: bool = False

    @classmethod
    def from_spec(cls, spec: str | None, *, required: bool = False) -> Keyring:
        return cls(entries=parse_api_keys(spec), required=required)

    @classmethod
    def from_settings(cls, settings: Settings) -> Keyring:
        secret = settings.diagnostic_api_keys
        spec = secret.get_secret_value() if secret is not None else None
        return cls.from_spec(spec, required=bool(settings.diagnostic_auth_required))

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


class AuthFailure(AuthenticationError):
    """401 (no/unknown key) or 403 (key lacks the scope); carries the HTTP status."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message, status_code=status)
        self.status = status

    @property
    def http_status_code(self) -> int:
        return self.status


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


def authenticate(
    token: str | None,
    keyring: Keyring,
    *,
    scope: ScopeName | None = "read",
    protected: bool = True,
) -> Principal:
    """Decide who is calling and whether they may use ``scope``.

    * a key that matches no configured key → 401 (always, even when auth is optional);
    * no key: 401 when ``keyring.required`` and the resource is ``protected``, otherwise
      :data:`ANONYMOUS`;
    * a valid key lacking ``scope`` → 403.
    """
    if token:
        principal = keyring.identify(token)
        if principal is None:
            raise AuthFailure("invalid API key", status=401)
    elif keyring.required and protected:
        raise AuthFailure(
            "an API key is required: send X-API-Key or Authorization: Bearer", status=401
        )
    else:
        return ANONYMOUS
    if scope is not None and not principal.has(scope):
        raise AuthFailure(f"the API key lacks the {scope!r} scope", status=403)
    return principal


def _keyring_of(conn: HTTPConnection) -> Keyring:
    keyring = getattr(conn.app.state, "keyring", None)
    if not isinstance(keyring, Keyring):
        raise RuntimeError("app.state.keyring is not set (the app factory sets it)")
    return keyring


def authenticate_connection(
    conn: HTTPConnection, *, scope: ScopeName | None = "read", protected: bool = True
) -> Principal:
    """:func:`authenticate` for a Starlette request or WebSocket of an app whose
    ``state.keyring`` is set."""
    token = extract_token(conn.headers, conn.query_params)
    principal = authenticate(token, _keyring_of(conn), scope=scope, protected=protected)
    conn.scope.setdefault("state", {})["principal"] = principal
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


def require_scope(
    scope: ScopeName | None = "read", *, protected: bool = True
) -> Callable[..., Principal]:
    """FastAPI dependency: ``principal = Depends(require_scope("control"))``. The route's
    OpenAPI operation lists the ``ApiKey`` and ``Bearer`` security schemes."""

    def dependency(
        conn: HTTPConnection,
        _api_key: Annotated[str | None, Security(API_KEY_HEADER)] = None,
        _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)] = None,
    ) -> Principal:
        return authenticate_connection(conn, scope=scope, protected=protected)

    return dependency


class AuthGuard:
    """ASGI wrapper: requests to ``app`` must carry a key with ``scope`` when auth is required.

    ``problem`` renders the rejection (the app's problem-details responder).
    """

    def __init__(
        self,
        app: ASGIApp,
        keyring: Callable[[], Keyring],
        problem: Callable[[Scope, AuthFailure], ASGIApp],
        *,
        scope: ScopeName = "read",
    ) -> None:
        self.app = app
        self.keyring = keyring
        self.problem = problem
        self.scope_name: ScopeName = scope

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        try:
            principal = authenticate(
                extract_token(conn.headers, conn.query_params),
                self.keyring(),
                scope=self.scope_name,
            )
        except AuthFailure as failure:
            await self.problem(scope, failure)(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


#: ``_: ReadKey`` in a route's parameters: a key with ``read`` (when auth is required)
ReadKey = Annotated[Principal, Depends(require_scope("read"))]
#: ``principal: ControlKey``: a key with ``read+control`` (anonymous only when auth is optional)
ControlKey = Annotated[Principal, Depends(require_scope("control"))]
