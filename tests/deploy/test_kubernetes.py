"""deploy/kubernetes: the base and both overlays rendered (by the small renderer of
tests/deploy/kustomize.py, and by ``kubectl kustomize`` too where kubectl exists, the two compared),
every document validated offline against the Kubernetes JSON schemas that kubernetes-validate bundles
(strict: unknown fields refused) for the oldest and newest versions the recipes claim, the HTTPRoute
(a CRD, not in those schemas) against tests/deploy/schemas, and the wiring checked: probes, ports,
selectors, secrets, names, SSE settings, and that every ANYPORT_* variable is one `anyport serve` reads.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import jsonschema
import kubernetes_validate
import pytest
import yaml

from anyport.protocol import KeyRing
from tests.deploy.kustomize import load_all, render
from tests.deploy.recipes import DEPLOY

KUBE = DEPLOY / "kubernetes"
OVERLAYS = ("gateway-api", "ingress-nginx")
#: PodLifecycleSleepAction (preStop sleep) is on by default from 1.30; the bundled schemas go to 1.37.
VERSIONS = ("1.30.0", "1.37.0")
SCHEMAS = Path(__file__).with_name("schemas")


def serve_envvars() -> set[str]:
    """Every environment variable `anyport serve` reads (its options' envvars), plus ANYPORT_STATE_KEYS."""
    from anyport.cli._main import serve

    names = {p.envvar for p in serve.params if isinstance(p, click.Option) and isinstance(p.envvar, str)}
    return {*names, "ANYPORT_STATE_KEYS"}


def _validate(doc: dict[str, Any]) -> None:
    if doc["apiVersion"].startswith("gateway.networking.k8s.io/"):
        kind = doc["kind"].lower()
        group, version = doc["apiVersion"].split("/")
        schema = json.loads((SCHEMAS / f"{kind}-{group}-{version}.json").read_text())
        jsonschema.Draft202012Validator(schema).validate(doc)
        return
    for version in VERSIONS:
        kubernetes_validate.validate(doc, version, strict=True)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, list[dict[str, Any]]]]:
    """Each overlay rendered from a copy of deploy/kubernetes with a secrets.env made from its example."""
    root = tmp_path_factory.mktemp("kube") / "kubernetes"
    shutil.copytree(KUBE, root, ignore=shutil.ignore_patterns("secrets.env"))
    out: dict[str, list[dict[str, Any]]] = {}
    for name in OVERLAYS:
        folder = root / "overlays" / name
        example = (folder / "secrets.env.example").read_text()
        (folder / "secrets.env").write_text(example.replace("replace-with-the-output-of-anyport-keygen", KeyRing.generate_key()))
        out[name] = render(folder)
        out[f"{name}:folder"] = [{"path": str(folder)}]
    yield out


def _one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name, [(d["kind"], d["metadata"]["name"]) for d in docs])
    return found[0]


def test_every_file_of_the_base_is_valid_on_its_own() -> None:
    files = sorted((KUBE / "base").glob("*.yaml"))
    docs = [d for f in files if f.name != "kustomization.yaml" for d in load_all(f)]
    assert {d["kind"] for d in docs} >= {
        "Deployment", "Service", "ConfigMap", "PodDisruptionBudget", "HorizontalPodAutoscaler", "ServiceAccount", "NetworkPolicy",
    }
    for doc in docs:
        _validate(doc)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_overlay_renders_to_valid_resources(rendered: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    docs = rendered[overlay]
    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in docs)
    route = ("HTTPRoute", "anyport") if overlay == "gateway-api" else ("Ingress", "anyport")
    assert route in kinds and ("Secret", "anyport-secrets") in kinds and ("Namespace", "mcp") in kinds, kinds
    for doc in docs:
        _validate(doc)
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "mcp", doc["metadata"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubectl_kustomize_renders_the_same(rendered: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    """Where kubectl (with its built-in kustomize) is installed, it agrees with the small renderer."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: the overlays were rendered by tests/deploy/kustomize.py only")
    folder = rendered[f"{overlay}:folder"][0]["path"]
    out = subprocess.run([kubectl, "kustomize", folder], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    theirs = [d for d in yaml.safe_load_all(out.stdout) if d]

    def key(d: dict[str, Any]) -> str:
        return f"{d['kind']}/{d['metadata']['name']}"

    assert sorted(theirs, key=key) == sorted(rendered[overlay], key=key)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_wiring_of_each_overlay(rendered: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    docs = rendered[overlay]
    deployment = _one(docs, "Deployment", "anyport")
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    container = pod["spec"]["containers"][0]
    assert container["image"] == "registry.example.com/anyport:0.1.0"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    port = {p["name"]: p["containerPort"] for p in container["ports"]}["http"]
    env = {e["name"]: e for e in container["env"]}
    assert env["ANYPORT_PORT"]["value"] == str(port)
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True and pod["spec"]["securityContext"]["runAsUser"] == 10001
    assert container["securityContext"]["readOnlyRootFilesystem"] is True

    service = _one(docs, "Service", "anyport")
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert service["spec"].get("sessionAffinity", "None") == "None"
    assert _one(docs, "PodDisruptionBudget", "anyport")["spec"]["selector"]["matchLabels"].items() <= labels.items()
    hpa = _one(docs, "HorizontalPodAutoscaler", "anyport")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "anyport"}
    assert hpa["spec"]["minReplicas"] >= 2

    # Every secret and config value the pod reads exists, and every variable is one anyport reads.
    secret = _one(docs, "Secret", "anyport-secrets")
    values = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    for e in env.values():
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            assert ref["name"] == "anyport-secrets" and ref["key"] in values, ref
    config = _one(docs, "ConfigMap", container["envFrom"][0]["configMapRef"]["name"])
    known = serve_envvars()
    assert set(env) | set(config["data"]) <= known, (set(env) | set(config["data"])) - known

    # The Redis of the URL is the Service of the recipe.
    redis = _one(docs, "Service", "anyport-redis")
    assert values["ANYPORT_REDIS_URL"] == f"redis://anyport-redis:{redis['spec']['ports'][0]['port']}/0"

    # The public name of the route is the one the Host check admits; SSE settings; no stickiness.
    allowed = config["data"]["ANYPORT_ALLOWED_HOSTS"].split()
    if overlay == "gateway-api":
        route = _one(docs, "HTTPRoute", "anyport")
        assert route["spec"]["hostnames"] == allowed
        rule = route["spec"]["rules"][0]
        assert rule["backendRefs"] == [{"name": "anyport", "port": service["spec"]["ports"][0]["port"]}]
        assert {m["path"]["value"] for m in rule["matches"]} == {"/mcp", "/sse", "/messages"}
        assert rule["timeouts"]["request"] == "1h"
        assert "sessionPersistence" not in rule
    else:
        ingress = _one(docs, "Ingress", "anyport")
        notes = ingress["metadata"]["annotations"]
        assert notes["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
        assert int(notes["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
        assert not any("affinity" in k or "upstream-hash-by" in k for k in notes), notes
        assert [r["host"] for r in ingress["spec"]["rules"]] == allowed
        backends = {p["backend"]["service"]["name"] for r in ingress["spec"]["rules"] for p in r["http"]["paths"]}
        assert backends == {"anyport"}


def test_a_schema_violation_is_caught() -> None:
    """The validation is not vacuous: a misspelt field and a wrong HTTPRoute duration are refused."""
    deployment = load_all(KUBE / "base" / "deployment.yaml")[0]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(deployment)
    route = load_all(KUBE / "overlays" / "gateway-api" / "httproute.yaml")[0]
    route["spec"]["rules"][0]["timeouts"]["request"] = "one hour"
    with pytest.raises(jsonschema.ValidationError):
        _validate(route)
