"""The kustomize targets of deploy/kubernetes rendered with ``kubectl kustomize``, and what the tests read in them.

Without ``kubectl`` the tests that render are skipped, or fail when ``CI=true``.
"""

from __future__ import annotations

import base64
import functools
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
KUSTOMIZE = DEPLOY / "kubernetes"
BASE = KUSTOMIZE / "base"
SECRET_EXAMPLE = BASE / "secret.example.yaml"

TARGETS = {
    "base": BASE,
    "dev": KUSTOMIZE / "overlays" / "dev",
    "production": KUSTOMIZE / "overlays" / "production",
}

KUBECTL_MISSING = "kubectl not installed: cannot render the kustomize overlays"

APP = "errgate"
METRICS_PORT = 9090
UID = 10001


def kubectl_path() -> str:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        if os.environ.get("CI") == "true":
            pytest.fail(KUBECTL_MISSING)
        pytest.skip(reason=KUBECTL_MISSING)
    return kubectl


@dataclass(frozen=True)
class Rendered:
    target: str
    docs: tuple[dict[str, Any], ...]
    text: str
    stderr: str

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [doc for doc in self.docs if doc["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> dict[str, Any]:
        found = [d for d in self.of_kind(kind) if name is None or d["metadata"]["name"] == name]
        assert len(found) == 1, f"{self.target}: expected one {kind} {name or ''}, found {len(found)}"
        return found[0]

    def named(self, kind: str, name: str) -> dict[str, Any]:
        """A ConfigMap/Secret by the name a reference uses (kustomize appends hash suffixes)."""
        return self.one(kind, name)

    @property
    def deployment(self) -> dict[str, Any]:
        return self.one("Deployment", APP)

    @property
    def job(self) -> dict[str, Any]:
        return self.one("Job", f"{APP}-migrate")

    @property
    def service(self) -> dict[str, Any]:
        return self.one("Service", APP)

    @property
    def networkpolicy(self) -> dict[str, Any]:
        return self.one("NetworkPolicy", APP)


@functools.lru_cache(maxsize=None)
def render(kubectl: str, target: str) -> Rendered:
    proc = subprocess.run(
        [kubectl, "kustomize", str(TARGETS[target])],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"kubectl kustomize {TARGETS[target]} failed:\n{proc.stderr}")
    docs = tuple(doc for doc in yaml.safe_load_all(proc.stdout) if doc)
    return Rendered(target=target, docs=docs, text=proc.stdout, stderr=proc.stderr)


def pod_spec_of(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def container_of(workload: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    containers = pod_spec_of(workload)["containers"]
    if name is None:
        assert len(containers) == 1, f"{workload['metadata']['name']}: expected a single container"
        return containers[0]
    return next(c for c in containers if c["name"] == name)


def ports_of(container: dict[str, Any]) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in container.get("ports", [])}


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, "only matchLabels selectors are used here"
    match = selector.get("matchLabels", {})
    return bool(match) and all(labels.get(k) == v for k, v in match.items())


def pod_labels_of(workload: dict[str, Any]) -> dict[str, str]:
    return workload["spec"]["template"]["metadata"]["labels"]


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def secret_data(secret: dict[str, Any]) -> dict[str, str]:
    data = {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()}
    data.update(secret.get("stringData", {}))
    return data


def yaml_docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def millicores(quantity: str) -> int:
    """A CPU quantity ("250m", "1", "1.5") in thousandths of a core."""
    return int(quantity[:-1]) if quantity.endswith("m") else round(float(quantity) * 1000)


def resource_field(container: dict[str, Any], ref: dict[str, Any]) -> str:
    """What the downward API gives for a CPU ``resourceFieldRef``: the quantity over the divisor, rounded up."""
    assert ref.get("containerName", container["name"]) == container["name"], ref
    section, _, resource = ref["resource"].partition(".")
    assert resource == "cpu", f"only CPU resources are read here: {ref}"
    quantity, divisor = millicores(container["resources"][section]["cpu"]), millicores(str(ref.get("divisor", "1")))
    return str(-(-quantity // divisor))


def effective_env(r: Rendered, workload: dict[str, Any]) -> dict[str, str]:
    """The environment the container gets; Secrets not in the render come from secret.example.yaml."""
    container = container_of(workload)
    example = secret_data(yaml_docs(SECRET_EXAMPLE)[0])
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        assert set(source) == {"configMapRef"}, "Secrets are referenced key by key, not with envFrom"
        env.update(r.named("ConfigMap", source["configMapRef"]["name"])["data"])
    for name, entry in env_of(container).items():
        if "value" in entry:
            env[name] = entry["value"]
            continue
        if "resourceFieldRef" in entry["valueFrom"]:
            env[name] = resource_field(container, entry["valueFrom"]["resourceFieldRef"])
            continue
        ref = entry["valueFrom"]["secretKeyRef"]
        secrets = [s for s in r.of_kind("Secret") if s["metadata"]["name"] == ref["name"]]
        data = secret_data(secrets[0]) if secrets else example
        if ref["key"] in data:
            env[name] = data[ref["key"]]
        else:
            assert ref.get("optional") is True, f"{name}: required key {ref['key']} missing"
    return env
