"""The one Host and Origin decision: which names a server answers to, which browser origins
may call it (DNS-rebinding protection, the MCP transport's "servers MUST validate Origin").

A page on ``evil.example.com`` whose name an attacker re-points at 127.0.0.1 reaches a
server on this machine from the victim's browser with ``Host: evil.example.com`` and
``Origin: http://evil.example.com``. :meth:`HostPolicy.check` refuses both before any route,
key or tool sees the request:

* **Host** must name an allowed host — ``localhost``, ``127.0.0.1``, ``[::1]``, the bind
  address (``DEV3000_HOST``, unless it is every address) and ``DEV3000_ALLOWED_HOSTS``
  (``*.example.com`` matches subdomains) — with any port; otherwise **421** (misdirected).
* **Origin**, when a browser sends one, must be an origin of an allowed host (any scheme and
  port) or one listed in ``DEV3000_CORS_ORIGINS``; otherwise **403**. ``Origin: null``
  (sandboxed frames, files) is refused.

An allowed host is a name, not a name and a port: DNS rebinding changes the name.
``DEV3000_CORS_ORIGINS`` is also the CORS allow-list (none by default): browsers on those
origins may read dev3000's answers cross-origin.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

__all__ = ["LOOPBACK_HOSTS", "HostPolicy", "HostRefusal", "host_name", "origin_of"]

#: the names every server answers to
LOOPBACK_HOSTS: tuple[str, ...] = ("localhost", "127.0.0.1", "[::1]")
_UNSPECIFIED = frozenset({"", "0.0.0.0", "::", "[::]"})
_SHOWN = 100  # characters of a refused header quoted back


class _Settings(Protocol):
    @property
    def dev3000_host(self) -> str: ...
    @property
    def dev3000_allowed_hosts(self) -> list[str]: ...
    @property
    def dev3000_cors_origins(self) -> list[str]: ...


def _normal(name: str) -> str | None:
    """A host name in the form the policy compares: lower case, IPv6 in brackets."""
    name = name.strip().lower().rstrip(".")
    if not name:
        return None
    bare = name[1:-1] if name.startswith("[") and name.endswith("]") else name
    try:
        address = ipaddress.ip_address(bare)
    except ValueError:
        if name.startswith("[") or any(c in name for c in "/@\\ :"):
            return None
        return name
    return f"[{address.compressed}]" if address.version == 6 else address.compressed


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of an http(s) URL (lower case), else None."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return f"{parts.scheme}://{parts.hostname.lower()}{port}"


def host_name(header: str | None) -> str | None:
    """The host of a ``Host`` header (its port dropped), normalised; None when unusable."""
    if not header:
        return None
    value = header.strip()
    if value.startswith("["):  # [v6]:port
        end = value.find("]")
        rest = value[end + 1 :] if end >= 0 else ""
        if end < 0 or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
        return _normal(value[: end + 1])
    name, _, port = value.partition(":")
    if port and not port.isdigit():
        return None
    return _normal(name)


@dataclass(frozen=True)
class HostRefusal:
    """Why a request is refused: ``status`` 421 (Host) or 403 (Origin), a problem code and
    a detail naming the setting that would allow it."""

    status: int
    code: str
    detail: str


@dataclass(frozen=True)
class HostPolicy:
    """The allowed host names (``*.suffix`` patterns included) and the CORS origins."""

    hosts: tuple[str, ...] = LOOPBACK_HOSTS
    cors_origins: tuple[str, ...] = ()

    @classmethod
    def build(
        cls, bind_host: str, allowed: Sequence[str] = (), cors_origins: Sequence[str] = ()
    ) -> HostPolicy:
        names = [*LOOPBACK_HOSTS]
        bound = _normal(bind_host) if bind_host.strip().lower() not in _UNSPECIFIED else None
        for name in (bound, *(a if a.startswith("*.") else _normal(a) for a in allowed)):
            if name and name not in names:
                names.append(name.lower())
        origins = tuple(o.lower().rstrip("/") for o in cors_origins)
        return cls(tuple(names), origins)

    @classmethod
    def from_settings(cls, settings: _Settings, *, bind_host: str | None = None) -> HostPolicy:
        """Loopback names, the bind address (``DEV3000_HOST`` or ``bind_host``),
        ``DEV3000_ALLOWED_HOSTS``; ``DEV3000_CORS_ORIGINS``."""
        return cls.build(
            settings.dev3000_host if bind_host is None else bind_host,
            settings.dev3000_allowed_hosts,
            settings.dev3000_cors_origins,
        )

    def allows_host(self, name: str | None) -> bool:
        """Whether ``name`` (from :func:`host_name`) is one of the allowed hosts."""
        if name is None:
            return False
        for allowed in self.hosts:
            if allowed.startswith("*."):
                if name.endswith(allowed[1:]) and len(name) > len(allowed) - 1:
                    return True
            elif name == allowed:
                return True
        return False

    def allows_origin(self, origin: str) -> bool:
        """Whether a browser on ``origin`` may call: a listed CORS origin, or an http(s)
        origin of an allowed host."""
        value = origin.strip().lower().rstrip("/")
        if value in self.cors_origins:
            return True
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises on a port that is not one
        except ValueError:
            return False
        if parts.scheme not in ("http", "https") or parts.path or parts.query:
            return False
        return self.allows_host(host_name(parts.netloc))

    def check(self, headers: Mapping[str, str]) -> HostRefusal | None:
        """None when the request's ``Host`` and ``Origin`` are allowed, else the refusal."""
        host = headers.get("host")
        if not self.allows_host(host_name(host)):
            shown = (host or "")[:_SHOWN]
            return HostRefusal(
                421,
                "host_not_allowed",
                f"Host {shown!r} is not a name of this server: add it to "
                "DEV3000_ALLOWED_HOSTS if it is one (loopback names and DEV3000_HOST are "
                "allowed already)",
            )
        origin = headers.get("origin")
        if origin is not None and not self.allows_origin(origin):
            return HostRefusal(
                403,
                "origin_not_allowed",
                f"Origin {origin[:_SHOWN]!r} may not call this server: a browser origin must "
                "be on an allowed host (DEV3000_ALLOWED_HOSTS) or listed in "
                "DEV3000_CORS_ORIGINS",
            )
        return None
