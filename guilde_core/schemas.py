"""Compact JSON schemas: what an MCP tool's output schema needs, at a fraction of the size.

:func:`compact_schema` is the one way every MCP tool of the project (the area servers,
dev3000's aggregate, the agent's ``diagnose``) states its output: ``tools/list`` is read into
an assistant's context on every session, so a tool's schema says which top-level fields its
structured content has and their JSON types, and its description says what they mean.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

__all__ = ["compact_schema"]

_JSON_TYPES = ("string", "integer", "number", "boolean", "array", "object", "null")


def _types_of(schema: dict[str, Any]) -> list[str]:
    """The JSON types a property schema allows (a ``$ref`` is an object; ``[]``: any)."""
    if "$ref" in schema:
        return ["object"]
    if "const" in schema or "enum" in schema:
        values = schema.get("enum", [schema.get("const")])
        found = {type(v) for v in values}
        names = {str: "string", int: "integer", float: "number", bool: "boolean"}
        return ["null" if t is type(None) else names.get(t, "string") for t in found]
    kind = schema.get("type")
    if isinstance(kind, str):
        return [kind]
    if isinstance(kind, list):
        return [str(k) for k in kind]
    types: list[str] = []
    for option in (*schema.get("anyOf", ()), *schema.get("oneOf", ())):
        sub = _types_of(option)
        if not sub:
            return []
        types += [t for t in sub if t not in types]
    return types


def compact_schema(model: type[BaseModel]) -> dict[str, Any]:
    """A short output schema for ``model``: its top-level fields with their JSON types, no
    nested definitions, descriptions or required lists. It still types the structured
    content a tool returns (clients validate against it) at a fraction of the full schema's
    size in ``tools/list`` (the tool's description says what the fields mean)."""
    full = model.model_json_schema()
    props: dict[str, Any] = {}
    for name, schema in full.get("properties", {}).items():
        types = sorted(_types_of(schema), key=_JSON_TYPES.index)
        props[name] = {"type": types[0] if len(types) == 1 else types} if types else {}
    return {"type": "object", "properties": props}
