"""A small, strict kustomize for the subset ``deploy/k8s`` uses, so CI can build the overlays
without the kustomize binary.

Supported kustomization fields: ``resources`` (files and directories with their own
kustomization), ``namespace``, ``images`` (``newName`` / ``newTag`` / ``digest``) and
``patches`` given inline as RFC 6902 JSON patches with a ``target`` (kind, name). Anything
else raises :class:`KustomizeError`, so a manifest change that needs more is noticed, not
silently mis-rendered. Where ``kubectl`` is installed, ``tests/docs/test_deploy.py`` checks
this renderer's output equals ``kubectl kustomize``'s.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

__all__ = ["KustomizeError", "apply_json_patch", "build"]

Resource = dict[str, Any]

_SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "images", "patches"}
_CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
    "IngressClass",
}
_POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


class KustomizeError(ValueError):
    """The kustomization uses something this renderer does not support, or is wrong."""


def _load_yaml_docs(path: Path) -> list[Resource]:
    docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    for doc in docs:
        if not isinstance(doc, dict) or "kind" not in doc:
            raise KustomizeError(f"{path}: not a Kubernetes resource")
    return docs


def build(directory: Path) -> list[Resource]:
    """Render the kustomization in ``directory`` into a list of resources."""
    kfile = directory / "kustomization.yaml"
    if not kfile.is_file():
        raise KustomizeError(f"{directory}: no kustomization.yaml")
    spec = yaml.safe_load(kfile.read_text(encoding="utf-8")) or {}
    unknown = set(spec) - _SUPPORTED
    if unknown:
        raise KustomizeError(f"{kfile}: unsupported field(s) {sorted(unknown)}")
    resources: list[Resource] = []
    for entry in spec.get("resources", []):
        target = (directory / entry).resolve()
        if target.is_dir():
            resources.extend(build(target))
        elif target.is_file():
            resources.extend(_load_yaml_docs(target))
        else:
            raise KustomizeError(f"{kfile}: resource {entry!r} not found")
    for image in spec.get("images", []):
        _set_image(resources, image)
    for patch in spec.get("patches", []):
        _apply_patch(resources, patch, kfile)
    if namespace := spec.get("namespace"):
        for res in resources:
            if res["kind"] not in _CLUSTER_SCOPED:
                res.setdefault("metadata", {})["namespace"] = namespace
    return resources


def _containers(res: Resource) -> list[dict[str, Any]]:
    if res["kind"] not in _POD_TEMPLATE_KINDS:
        return []
    pod = res.get("spec", {}).get("template", {}).get("spec", {})
    return [*pod.get("initContainers", []), *pod.get("containers", [])]


def _split_image(image: str) -> tuple[str, str | None, str | None]:
    digest = None
    if "@" in image:
        image, digest = image.split("@", 1)
    tag = None
    name = image
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = image.rsplit(":", 1)
    return name, tag, digest


def _set_image(resources: list[Resource], rule: dict[str, Any]) -> None:
    for res in resources:
        for container in _containers(res):
            name, tag, digest = _split_image(container["image"])
            if name != rule["name"]:
                continue
            name = rule.get("newName", name)
            if "digest" in rule:
                container["image"] = f"{name}@{rule['digest']}"
            elif "newTag" in rule:
                container["image"] = f"{name}:{rule['newTag']}"
            else:
                container["image"] = (
                    name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
                )


def _apply_patch(resources: list[Resource], patch: dict[str, Any], kfile: Path) -> None:
    if set(patch) - {"target", "patch"} or "target" not in patch or "patch" not in patch:
        raise KustomizeError(f"{kfile}: only inline patches with a target are supported")
    target = patch["target"]
    if set(target) - {"kind", "name"}:
        raise KustomizeError(f"{kfile}: patch targets may only name kind and name")
    ops = yaml.safe_load(patch["patch"])
    if not isinstance(ops, list):
        raise KustomizeError(f"{kfile}: only JSON 6902 patches (a list of operations)")
    matched = [
        res
        for res in resources
        if res["kind"] == target.get("kind", res["kind"])
        and res.get("metadata", {}).get("name") == target.get("name", res["metadata"]["name"])
    ]
    if not matched:
        raise KustomizeError(f"{kfile}: patch target {target} matches no resource")
    for res in matched:
        patched = apply_json_patch(res, ops)
        res.clear()
        res.update(patched)


def _tokens(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise KustomizeError(f"bad JSON pointer {pointer!r}")
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def _walk(doc: Any, tokens: list[str], pointer: str) -> Any:
    for token in tokens:
        if isinstance(doc, list):
            try:
                doc = doc[int(token)]
            except (ValueError, IndexError) as exc:
                raise KustomizeError(f"path {pointer!r}: no index {token!r}") from exc
        elif isinstance(doc, dict):
            if token not in doc:
                raise KustomizeError(f"path {pointer!r}: no member {token!r}")
            doc = doc[token]
        else:
            raise KustomizeError(f"path {pointer!r}: cannot descend into a scalar")
    return doc


def apply_json_patch(document: Resource, operations: list[dict[str, Any]]) -> Resource:
    """Apply RFC 6902 ``add`` / ``remove`` / ``replace`` / ``test`` operations to a copy."""
    doc = copy.deepcopy(document)
    for op in operations:
        kind, pointer = op.get("op"), op.get("path", "")
        tokens = _tokens(pointer)
        if not tokens:
            raise KustomizeError("operations on the whole document are not supported")
        parent = _walk(doc, tokens[:-1], pointer)
        last = tokens[-1]
        if kind == "test":
            if _walk(doc, tokens, pointer) != op["value"]:
                raise KustomizeError(f"test failed at {pointer!r}")
        elif kind == "add":
            value = copy.deepcopy(op["value"])
            if isinstance(parent, list):
                if last == "-":
                    parent.append(value)
                else:
                    parent.insert(int(last), value)
            elif isinstance(parent, dict):
                parent[last] = value
            else:
                raise KustomizeError(f"path {pointer!r}: parent is a scalar")
        elif kind in ("remove", "replace"):
            _walk(doc, tokens, pointer)  # must exist
            if kind == "remove":
                del parent[int(last) if isinstance(parent, list) else last]
            else:
                parent[int(last) if isinstance(parent, list) else last] = copy.deepcopy(op["value"])
        else:
            raise KustomizeError(f"unsupported JSON patch operation {kind!r}")
    return doc
