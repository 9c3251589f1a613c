"""A small kustomize for the tests: renders the overlays of deploy/kubernetes without the kustomize
binary, for the features the recipes use (resources: files and folders, namespace, strategic-merge
patches of maps by kind and name, images, secretGenerator from env files without a name hash).
Anything else in a kustomization.yaml is refused, so the recipes cannot drift past what is checked.
Where ``kubectl kustomize`` exists, the tests compare both renderings."""

from __future__ import annotations

import base64
import copy
from pathlib import Path
from typing import Any

import yaml

KNOWN = {"apiVersion", "kind", "resources", "namespace", "patches", "images", "secretGenerator", "generatorOptions"}
#: Kinds that have no namespace (the ones the recipes use).
CLUSTER_SCOPED = {"Namespace"}


def load_all(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _merge(base: Any, patch: Any) -> Any:
    """Strategic merge, as far as the recipes need it: maps merge key by key, anything else is replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            out[key] = _merge(base[key], value) if key in base else copy.deepcopy(value)
        return out
    return copy.deepcopy(patch)


def _env_file(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path}: {line!r} is not KEY=VALUE"
        out[key.strip()] = value
    return out


def _set_image(docs: list[dict[str, Any]], name: str, new: str) -> None:
    for doc in docs:
        spec = doc.get("spec", {}).get("template", {}).get("spec", {})
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            image: str = container["image"]
            if image.split("@")[0].rsplit(":", 1)[0] == name:
                container["image"] = new


def render(folder: Path) -> list[dict[str, Any]]:
    """The documents ``kustomize build folder`` would print (order aside)."""
    k = yaml.safe_load((folder / "kustomization.yaml").read_text())
    unknown = set(k) - KNOWN
    assert not unknown, f"{folder}: kustomization fields this renderer does not know: {unknown}"
    assert k["kind"] == "Kustomization"
    docs: list[dict[str, Any]] = []
    for entry in k.get("resources", []):
        path = (folder / entry).resolve()
        docs += render(path) if path.is_dir() else load_all(path)
    for patch in k.get("patches", []):
        assert set(patch) == {"path"}, f"only patches given by path: {patch}"
        for p in load_all(folder / patch["path"]):
            targets = [d for d in docs if d["kind"] == p["kind"] and d["metadata"]["name"] == p["metadata"]["name"]]
            assert len(targets) == 1, f"patch {p['kind']}/{p['metadata']['name']} matches {len(targets)} resources"
            index = docs.index(targets[0])
            docs[index] = _merge(targets[0], p)
    for image in k.get("images", []):
        assert set(image) <= {"name", "newName", "newTag"}, image
        _set_image(docs, image["name"], f"{image.get('newName', image['name'])}:{image['newTag']}")
    options = k.get("generatorOptions", {})
    for gen in k.get("secretGenerator", []):
        assert set(gen) <= {"name", "envs", "type"}, gen
        assert options.get("disableNameSuffixHash") is True, "names with a hash suffix are not rendered here"
        data: dict[str, str] = {}
        for env in gen.get("envs", []):
            data.update(_env_file(folder / env))
        docs.append({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": gen["name"]}, "type": gen.get("type", "Opaque"),
            "data": {key: base64.b64encode(value.encode()).decode() for key, value in data.items()},
        })
    if "namespace" in k:
        for doc in docs:
            if doc["kind"] not in CLUSTER_SCOPED:
                doc["metadata"]["namespace"] = k["namespace"]
    return docs
