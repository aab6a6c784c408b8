"""Reach a sandbox's ``/_chaos`` control endpoint: :class:`ChaosClient`.

    client = ChaosClient("http://127.0.0.1:8000", token)
    client.inject("db-latency", delay_ms=500, ttl_s=60)
    client.status()          # active faults
    client.clear("db-latency")  # or client.clear() for all

The token is the sandbox's (``SandboxConfig.chaos_token``, or the 0600 file it wrote:
:func:`read_token`). Only loopback URLs are accepted.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from guilde_core.errors import AuthenticationError, InvalidInputError, NotFoundError

__all__ = ["ChaosClient", "ChaosError", "ensure_loopback", "read_token"]


class ChaosError(InvalidInputError):
    """The sandbox refused a chaos request (the message is its problem detail)."""


def ensure_loopback(url: str) -> str:
    """``url`` if its host is loopback, else :class:`InvalidInputError`."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return url
    try:
        if ipaddress.ip_address(host).is_loopback:
            return url
    except ValueError:
        pass
    raise InvalidInputError(f"refusing non-loopback target {host or url!r}: loopback only")


def read_token(path: str | Path | None = None) -> str:
    """The chaos token from ``path`` or ``SANDBOX_CHAOS_TOKEN`` / ``SANDBOX_CHAOS_TOKEN_FILE``."""
    if path is None:
        direct = os.environ.get("SANDBOX_CHAOS_TOKEN")
        if direct:
            return direct
        env_path = os.environ.get("SANDBOX_CHAOS_TOKEN_FILE")
        if not env_path:
            raise InvalidInputError(
                "no chaos token: pass --token-file, or set SANDBOX_CHAOS_TOKEN(_FILE)"
            )
        path = env_path
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise InvalidInputError(f"{exc.strerror} (the chaos token file {path})") from None


class ChaosClient:
    """Synchronous client of one sandbox's chaos endpoint."""

    def __init__(self, url: str, token: str, *, timeout: float = 10.0) -> None:
        self.url = ensure_loopback(url).rstrip("/")
        self._headers = {"authorization": f"Bearer {token}"}
        self._timeout = timeout

    def _call(self, method: str, path: str, json: Any = None) -> Any:
        try:
            response = httpx.request(
                method,
                f"{self.url}/_chaos/{path}",
                json=json,
                headers=self._headers,
                timeout=self._timeout,
            )
        except httpx.HTTPError as exc:
            raise ChaosError(f"cannot reach the sandbox at {self.url}: {exc}") from None
        if response.status_code >= 400:
            try:
                detail = str(response.json().get("detail", response.text))
            except ValueError:
                detail = response.text
            if response.status_code == 401:
                raise AuthenticationError(f"chaos endpoint refused the token: {detail}")
            if response.status_code == 404:
                raise NotFoundError(detail)
            raise ChaosError(detail)
        return response.json()

    def catalogue(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "faults")["faults"]
        return result

    def status(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "status")["active"]
        return result

    def inject(self, fault_id: str, **params: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", f"faults/{fault_id}", params)
        return result

    def clear(self, fault_id: str | None = None) -> list[str]:
        path = f"faults/{fault_id}" if fault_id else "faults"
        return list(self._call("DELETE", path)["cleared"])

    def reload(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "reload")
        return result
