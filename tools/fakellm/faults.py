"""Runtime faults of the fake LLM providers.

A fault applies to one endpoint (``openai`` = ``/v1/chat/completions``, ``anthropic`` =
``/v1/messages``, ``models`` = ``/v1/models``, or ``*`` for all) and fires either on the
next ``times`` matching requests or at random with probability ``rate`` (until cleared or
``ttl`` seconds have passed). Kinds:

======================  ====================================================================
``rate_limit``          429 with ``Retry-After`` (``retry_after`` seconds, default ``"1"``)
``server_error``        500
``unavailable``         503
``overloaded``          529 with Anthropic's ``overloaded_error`` body
``auth``                401 (``authentication_error``)
``status``              any ``status`` given
``slow``                answer normally after ``delay`` seconds
``hang``                never answer (until the client disconnects or ``delay``, default 30 s)
``malformed``           200 with a body that is not valid JSON
``drop``                close the connection mid-response (mid-stream when streaming)
======================  ====================================================================
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["ENDPOINTS", "FaultBook", "FaultKind", "FaultSpec"]

FaultKind = Literal[
    "rate_limit",
    "server_error",
    "unavailable",
    "overloaded",
    "auth",
    "status",
    "slow",
    "hang",
    "malformed",
    "drop",
]
Endpoint = Literal["openai", "anthropic", "models", "*"]
ENDPOINTS: tuple[str, ...] = ("openai", "anthropic", "models")

STATUS_OF: dict[str, int] = {
    "rate_limit": 429,
    "server_error": 500,
    "unavailable": 503,
    "overloaded": 529,
    "auth": 401,
}


class FaultSpec(BaseModel):
    """One fault: what, where, and how often."""

    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    endpoint: Endpoint = "*"
    times: int | None = Field(default=None, ge=1, le=100_000)
    rate: float | None = Field(default=None, gt=0.0, le=1.0)
    status: int | None = Field(default=None, ge=400, le=599)
    retry_after: str | None = None
    delay: float | None = Field(default=None, ge=0.0, le=300.0)
    ttl: float | None = Field(default=None, gt=0.0, le=3600.0)
    id: str = Field(default_factory=lambda: uuid.uuid4().hex[:8])

    @model_validator(mode="after")
    def _shape(self) -> FaultSpec:
        if self.times is not None and self.rate is not None:
            raise ValueError("give either times (next N requests) or rate (probability), not both")
        if self.times is None and self.rate is None:
            self.times = 1
        if self.kind == "status" and self.status is None:
            raise ValueError("kind 'status' needs a status code")
        return self

    @property
    def http_status(self) -> int | None:
        """The status this fault answers with, if it is a status fault."""
        if self.kind == "status":
            return self.status
        return STATUS_OF.get(self.kind)


class _Active:
    def __init__(self, spec: FaultSpec) -> None:
        self.spec = spec
        self.remaining = spec.times
        self.expires = time.monotonic() + spec.ttl if spec.ttl else None
        self.fired = 0


class FaultBook:
    """The active faults; :meth:`pick` decides the fault (if any) for one request."""

    def __init__(self, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._active: list[_Active] = []
        self._random = random.Random(seed)
        self.fired: dict[str, int] = {}

    def add(self, spec: FaultSpec) -> FaultSpec:
        with self._lock:
            self._active.append(_Active(spec))
        return spec

    def clear(self, fault_id: str | None = None) -> int:
        """Remove one fault (by id) or all; return how many were removed."""
        with self._lock:
            before = len(self._active)
            if fault_id is None:
                self._active.clear()
            else:
                self._active = [a for a in self._active if a.spec.id != fault_id]
            return before - len(self._active)

    def reset(self) -> None:
        with self._lock:
            self._active.clear()
            self.fired.clear()

    def list(self) -> list[dict[str, object]]:
        with self._lock:
            self._expire()
            return [
                {**a.spec.model_dump(), "remaining": a.remaining, "fired": a.fired}
                for a in self._active
            ]

    def _expire(self) -> None:
        now = time.monotonic()
        self._active = [a for a in self._active if a.expires is None or a.expires > now]

    def pick(self, endpoint: str) -> FaultSpec | None:
        """The fault for one request to ``endpoint`` (counting it), or ``None``."""
        with self._lock:
            self._expire()
            for active in self._active:
                spec = active.spec
                if spec.endpoint not in ("*", endpoint):
                    continue
                if active.remaining is not None:
                    active.remaining -= 1
                    if active.remaining <= 0:
                        self._active.remove(active)
                elif spec.rate is not None and self._random.random() >= spec.rate:
                    continue
                active.fired += 1
                key = f"{endpoint}:{spec.kind}"
                self.fired[key] = self.fired.get(key, 0) + 1
                return spec
            return None
