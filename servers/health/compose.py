"""The services of a Compose file and what each depends on (``DEV3000_COMPOSE_FILE``).

Only ``services.<name>.image`` and ``services.<name>.depends_on`` (the list form or the
mapping form with conditions) are read: the stack model uses them for nodes and "depends on"
edges, nothing is started or probed from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field

__all__ = ["ComposeService", "load_compose"]

MAX_BYTES = 1_000_000


class ComposeService(BaseModel):
    """One service of the compose file."""

    name: str
    image: str | None = None
    depends_on: list[str] = Field(default_factory=list)

    @property
    def image_name(self) -> str | None:
        """The image's repository name without registry, namespace or tag
        (``docker.io/library/postgres:16`` → ``postgres``)."""
        if not self.image:
            return None
        last = self.image.rsplit("/", 1)[-1]
        return last.split("@", 1)[0].split(":", 1)[0] or None


def _depends(raw: Any) -> list[str] | None:
    if raw is None:
        return []
    if isinstance(raw, list) and all(isinstance(x, str) for x in raw):
        return list(raw)
    if isinstance(raw, Mapping) and all(isinstance(k, str) for k in raw):
        return list(raw)
    return None


def load_compose(path: str) -> tuple[list[ComposeService], list[str]]:
    """The services of the compose file at ``path``, and one message per problem (the file
    unreadable or not a compose file, a service whose ``depends_on`` is malformed)."""
    p = Path(path)
    try:
        if p.stat().st_size > MAX_BYTES:
            return [], [f"compose file {p.name}: larger than {MAX_BYTES // 1000} kB"]
        data: Any = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        return [], [f"compose file {p.name}: cannot read ({type(exc).__name__})"]
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        return [], [f"compose file {p.name}: not valid YAML ({first})"]
    services = data.get("services") if isinstance(data, Mapping) else None
    if not isinstance(services, Mapping):
        return [], [f"compose file {p.name}: no services mapping"]
    out: list[ComposeService] = []
    problems: list[str] = []
    for name, body in services.items():
        if not isinstance(name, str) or not isinstance(body, Mapping | None):
            problems.append(f"compose file {p.name}: service {name!r} is not a mapping")
            continue
        body = body or {}
        depends = _depends(body.get("depends_on"))
        if depends is None:
            problems.append(f"compose file {p.name}: service {name}: depends_on not understood")
            depends = []
        image = body.get("image")
        out.append(
            ComposeService(
                name=name, image=image if isinstance(image, str) else None, depends_on=depends
            )
        )
    return out, problems
