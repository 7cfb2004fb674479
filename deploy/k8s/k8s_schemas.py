"""Rendering the manifests and validating every object against a schema, offline.

Core kinds: kubernetes-validate's bundled Kubernetes JSON schemas, the `-strict` flavour
(unknown fields fail). Custom resources: the `openAPIV3Schema` of the vendored CRD
(deploy/k8s/crds/), made strict the way kubeconform's openapi2jsonschema.py does it —
`additionalProperties: false` wherever `properties` is given (the root included), except where
the CRD itself says `x-kubernetes-preserve-unknown-fields` — and int-or-string made explicit.
A kind with neither fails: nothing is silently let through.

What this cannot see (CEL rules of the CRDs, core-API semantics such as a selector that does not
match its template, CloudNativePG's webhook): `make test-k8s`, against a real kube-apiserver.
"""

from __future__ import annotations

import copy
import functools
import importlib.resources
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from referencing import Registry, Resource

K8S = Path(__file__).resolve().parent
CRDS = K8S / "crds"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: the CRDs are 1.6 MB
OVERLAYS = ("dev", "production")
_BUNDLED = Path(str(importlib.resources.files("kubernetes_validate"))) / "kubernetes-json-schema"
KUBERNETES_VERSION = "1.35"  # the oldest minor the manifests promise to work on (README)


def kustomize() -> list[str]:
    """$KUSTOMIZE (e.g. the pinned one deploy/k8s/tools/install-kustomize.sh fetches), else a
    kustomize on PATH, else kubectl's built-in kustomize."""
    if os.environ.get("KUSTOMIZE"):
        return [os.environ["KUSTOMIZE"], "build"]
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    raise RuntimeError("no kustomize: install kubectl, or set KUSTOMIZE=$(deploy/k8s/tools/install-kustomize.sh)")


@functools.cache
def render(path: str) -> tuple[dict, ...]:
    """`kustomize build` of deploy/k8s/<path> (or of an absolute path), as a list of objects."""
    target = Path(path) if Path(path).is_absolute() else K8S / path
    out = subprocess.run([*kustomize(), str(target)], capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise RuntimeError(f"kustomize build {target} failed:\n{out.stderr}")
    return tuple(d for d in yaml.load_all(out.stdout, Loader=_LOADER) if d)


def _strict(node: Any) -> Any:
    if isinstance(node, dict):
        node = dict(node)
        if node.get("format") == "int-or-string" or node.get("x-kubernetes-int-or-string"):
            rest = {k: v for k, v in node.items() if k not in ("type", "format", "x-kubernetes-int-or-string")}
            return {**rest, "anyOf": [{"type": "string"}, {"type": "integer"}]}
        if node.get("nullable") and isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
        if "properties" in node and "additionalProperties" not in node and not node.get(
            "x-kubernetes-preserve-unknown-fields"
        ):
            node["additionalProperties"] = False
        return {k: (_strict(v) if k not in ("enum", "default", "example") else v) for k, v in node.items()}
    if isinstance(node, list):
        return [_strict(v) for v in node]
    return node


@functools.cache
def crd_schemas() -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) -> strict JSON schema, for every version served by a vendored CRD."""
    schemas = {}
    for path in sorted(CRDS.glob("*.yaml")):
        for crd in yaml.load_all(path.read_text(encoding="utf-8"), Loader=_LOADER):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if not version.get("served"):
                    continue
                schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
                schema.setdefault("properties", {}).update(
                    {"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"}}
                )
                schemas[(f"{group}/{version['name']}", kind)] = _strict(schema)
    return schemas


def problems(obj: dict, version: str = KUBERNETES_VERSION) -> list[str]:
    """Every schema violation of one object ([] when valid); a kind without schema is one."""
    what = f"{obj.get('kind')} {obj.get('metadata', {}).get('name')}"
    key = (obj.get("apiVersion"), obj.get("kind"))
    if key in crd_schemas():
        validator = jsonschema.Draft4Validator(crd_schemas()[key])
        return [f"{what}: {'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(obj)]
    validator = _core_validator(version, *key)
    if validator is None:
        return [f"{what}: no schema for {key[0]} {key[1]} (neither a Kubernetes {version} kind nor a vendored CRD)"]
    return [f"{what}: {'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(obj)]


@functools.cache
def _definitions(version: str) -> Resource:
    return Resource.from_contents(json.loads((_BUNDLED / f"v{version}-local-strict" / "_definitions.json").read_text()))


@functools.cache
def _core_validator(version: str, api_version: str, kind: str) -> jsonschema.Draft202012Validator | None:
    """kubernetes_validate.validate(obj, version, strict=True), with the 5 MB of definitions
    parsed once rather than for every object (the same files, the same validator)."""
    want = tuple(map(int, version.split(".")[:2]))
    bundled = [v for v in kubernetes_validate.utils.all_versions() if tuple(map(int, v.split(".")[:2])) <= want][-1]
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    path = _BUNDLED / f"v{bundled}-local-strict" / f"{kind.lower()}-{group_version}.json"
    if not path.exists():
        return None
    schema = json.loads(path.read_text())
    registry = Resource.from_contents(schema) @ (_definitions(bundled) @ Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)
