"""The deployment files (deploy/) against the service's contract.

Every kustomize target (the base and both overlays) is rendered with ``kubectl kustomize``
and each rendered document is validated with kubernetes-validate in strict mode (unknown
fields are errors) against Kubernetes ``K8S_VERSION``, the newest release whose schemas
kubernetes-validate bundles (1.37 with kubernetes-validate 1.37.0; no network needed).
Then the manifests are checked against what ``errgate`` expects: probe paths and ports come
from ``app.health`` / ``app.config``, and the environment the Deployment builds is fed to
``Settings.from_env`` so the service's own parser accepts it.

Custom resources: kubernetes-validate only has schemas for built-in kinds, and its CLI
merely prints a WARN for a kind it has no schema for and still exits 0 -- which would also
let a built-in kind with a mistyped apiVersion through unvalidated. So the tests call its
Python API instead: every built-in kind must validate strictly, and ``SchemaNotFoundError``
is accepted only for the kinds in ``CRD_KINDS`` (the Prometheus Operator ServiceMonitor of
the production overlay), whose shape is checked here by ``_check_servicemonitor_shape``
(known fields only, the types the CRD requires).

Skip rule: without ``kubectl`` the rendering tests are skipped, or fail when ``CI=true``.
The Dockerfile tests only parse text and always run.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from app.config import DEFAULT_PORT, Settings
from app.health import LIVENESS_PATH, METRICS_PATH, READINESS_PATH

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
KUSTOMIZE = DEPLOY / "kubernetes"
BASE = KUSTOMIZE / "base"
SECRET_EXAMPLE = BASE / "secret.example.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"

TARGETS = {
    "base": BASE,
    "dev": KUSTOMIZE / "overlays" / "dev",
    "production": KUSTOMIZE / "overlays" / "production",
}

# Newest Kubernetes release covered by the installed kubernetes-validate (see module docstring).
K8S_VERSION = "1.37.0"
# Kinds without a bundled schema, checked by hand instead: (apiVersion, kind) -> checker
# (filled in below, after the checker functions are defined).
CRD_KINDS: dict[tuple[str, str], Callable[[dict[str, Any]], None]] = {}

KUBECTL_MISSING = "kubectl not installed: cannot render the kustomize overlays"

APP = "errgate"
IMAGE = "registry.example.com/errgate:0.1.0"
METRICS_PORT = 9090
UID = 10001
# errgate drains in-flight requests this long after SIGTERM (ERRGATE_SHUTDOWN_GRACE_SECONDS default).
DRAIN_SECONDS = 20
PRODUCTION_HOST = "errgate.example.com"


# --------------------------------------------------------------------------- rendering


def _kubectl() -> str:
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
def _render(kubectl: str, target: str) -> Rendered:
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


@pytest.fixture(scope="module", params=list(TARGETS))
def rendered(request: pytest.FixtureRequest) -> Rendered:
    return _render(_kubectl(), request.param)


@pytest.fixture(scope="module")
def base() -> Rendered:
    return _render(_kubectl(), "base")


@pytest.fixture(scope="module")
def dev() -> Rendered:
    return _render(_kubectl(), "dev")


@pytest.fixture(scope="module")
def production() -> Rendered:
    return _render(_kubectl(), "production")


# --------------------------------------------------------------------------- helpers


def _pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def _container(workload: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    containers = _pod_spec(workload)["containers"]
    if name is None:
        assert len(containers) == 1, f"{workload['metadata']['name']}: expected a single container"
        return containers[0]
    return next(c for c in containers if c["name"] == name)


def _container_ports(container: dict[str, Any]) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in container.get("ports", [])}


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, "only matchLabels selectors are used here"
    match = selector.get("matchLabels", {})
    return bool(match) and all(labels.get(k) == v for k, v in match.items())


def _pod_labels(workload: dict[str, Any]) -> dict[str, str]:
    return workload["spec"]["template"]["metadata"]["labels"]


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def _secret_data(secret: dict[str, Any]) -> dict[str, str]:
    data = {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()}
    data.update(secret.get("stringData", {}))
    return data


def _load_yaml_docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _effective_env(r: Rendered, workload: dict[str, Any]) -> dict[str, str]:
    """The environment the container gets; Secrets not in the render come from secret.example.yaml."""
    container = _container(workload)
    example = _secret_data(_load_yaml_docs(SECRET_EXAMPLE)[0])
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        assert set(source) == {"configMapRef"}, "Secrets are referenced key by key, not with envFrom"
        env.update(r.named("ConfigMap", source["configMapRef"]["name"])["data"])
    for name, entry in _env(container).items():
        if "value" in entry:
            env[name] = entry["value"]
            continue
        ref = entry["valueFrom"]["secretKeyRef"]
        secrets = [s for s in r.of_kind("Secret") if s["metadata"]["name"] == ref["name"]]
        data = _secret_data(secrets[0]) if secrets else example
        if ref["key"] in data:
            env[name] = data[ref["key"]]
        else:
            assert ref.get("optional") is True, f"{name}: required key {ref['key']} missing"
    return env


def _prestop_sleep_seconds(container: dict[str, Any]) -> int:
    pre_stop = container.get("lifecycle", {}).get("preStop")
    if pre_stop is None:
        return 0
    if "sleep" in pre_stop:
        return int(pre_stop["sleep"]["seconds"])
    command = pre_stop["exec"]["command"]
    assert command[0] in ("sleep", "/bin/sleep", "/usr/bin/sleep"), command
    return int(command[1])


def _check_servicemonitor_shape(doc: dict[str, Any]) -> None:
    """A hand-written subset of the monitoring.coreos.com/v1 ServiceMonitor schema."""
    assert set(doc) <= {"apiVersion", "kind", "metadata", "spec"}
    assert isinstance(doc["metadata"]["name"], str) and doc["metadata"]["name"]
    spec = doc["spec"]
    assert set(spec) <= {
        "selector", "endpoints", "namespaceSelector", "jobLabel", "targetLabels",
        "podTargetLabels", "sampleLimit", "attachMetadata",
    }, spec
    selector = spec["selector"]
    assert set(selector) <= {"matchLabels", "matchExpressions"}
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in selector["matchLabels"].items())
    assert isinstance(spec["endpoints"], list) and spec["endpoints"]
    duration = re.compile(r"^((\d+)h)?((\d+)m)?((\d+)s)?((\d+)ms)?$")
    for endpoint in spec["endpoints"]:
        assert set(endpoint) <= {
            "port", "targetPort", "path", "scheme", "interval", "scrapeTimeout", "honorLabels",
            "honorTimestamps", "params", "relabelings", "metricRelabelings", "tlsConfig",
            "bearerTokenSecret", "authorization", "basicAuth", "followRedirects",
        }, endpoint
        assert isinstance(endpoint["port"], str), "scrape the Service port by name"
        assert endpoint.get("path", "/metrics").startswith("/")
        for key in ("interval", "scrapeTimeout"):
            if key in endpoint:
                assert duration.match(endpoint[key]) and endpoint[key], f"{key}: {endpoint[key]!r}"


CRD_KINDS[("monitoring.coreos.com/v1", "ServiceMonitor")] = _check_servicemonitor_shape


# --------------------------------------------------------------------------- schema validation


def test_kubernetes_validate_supports_the_pinned_version() -> None:
    latest = kubernetes_validate.latest_version()
    major_minor = tuple(int(x) for x in K8S_VERSION.split(".")[:2])
    assert tuple(int(x) for x in latest.split(".")[:2]) >= major_minor, (
        f"kubernetes-validate {kubernetes_validate.__version__} only knows Kubernetes up to {latest}; "
        f"upgrade it to validate against {K8S_VERSION}"
    )


def _validate_strict(doc: dict[str, Any], where: str) -> None:
    ident = f"{where}: {doc['kind']}/{doc['metadata']['name']}"
    try:
        validated = kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        check = CRD_KINDS.get((doc["apiVersion"], doc["kind"]))
        assert check is not None, f"{ident}: no schema for {doc['apiVersion']} in Kubernetes {K8S_VERSION}"
        check(doc)
        return
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(str(p) for p in exc.path)
        pytest.fail(f"{ident} is invalid for Kubernetes {exc.version} at {path}: {exc.message}")
    # Not silently validated against an older schema set.
    assert validated == ".".join(K8S_VERSION.split(".")[:2]), ident


def test_rendered_manifests_validate_strictly(rendered: Rendered) -> None:
    assert rendered.docs
    for doc in rendered.docs:
        _validate_strict(doc, rendered.target)


def test_kustomize_renders_without_warnings(rendered: Rendered) -> None:
    assert "warning" not in rendered.stderr.lower(), rendered.stderr


def test_secret_example_validates_strictly() -> None:
    (doc,) = _load_yaml_docs(SECRET_EXAMPLE)
    _validate_strict(doc, SECRET_EXAMPLE.name)


def test_every_yaml_file_starts_with_a_comment() -> None:
    files = sorted(KUSTOMIZE.rglob("*.yaml"))
    assert files
    for path in files:
        assert path.read_text().startswith("#"), f"{path.relative_to(REPO)} has no comment header"


# --------------------------------------------------------------------------- the errgate Deployment


def test_image_is_pinned(rendered: Rendered) -> None:
    for workload in (rendered.deployment, rendered.job):
        assert _container(workload)["image"] == IMAGE


def test_ports_and_probes_match_the_service(rendered: Rendered) -> None:
    container = _container(rendered.deployment)
    assert _container_ports(container) == {"http": DEFAULT_PORT, "metrics": METRICS_PORT}
    for probe, path in (
        ("livenessProbe", LIVENESS_PATH),
        ("readinessProbe", READINESS_PATH),
        # The start-up probe must not depend on the database either, or a DB outage
        # during a rollout would restart pods that are otherwise fine.
        ("startupProbe", LIVENESS_PATH),
    ):
        http_get = container[probe]["httpGet"]
        assert http_get["path"] == path, probe
        assert http_get["port"] == "http", probe
    assert container["livenessProbe"]["httpGet"]["path"] != container["readinessProbe"]["httpGet"]["path"]


def test_container_environment_is_accepted_by_the_service(rendered: Rendered) -> None:
    container = _container(rendered.deployment)
    env = _effective_env(rendered, rendered.deployment)
    ports = _container_ports(container)
    settings = Settings.from_env(env)
    assert settings.host == "0.0.0.0"
    assert settings.port == ports["http"] == DEFAULT_PORT
    assert settings.metrics_port == ports["metrics"]
    assert settings.database_url, "DATABASE_URL must be set: no embedded PostgreSQL in Kubernetes"
    assert env["HOME"] == "/tmp"
    assert Path(env["ERRGATE_DATA_DIR"]).is_relative_to("/tmp")
    for key in ("ERRGATE_EXTERNAL_URL", "ERRGATE_LOG_LEVEL", "ERRGATE_EVENT_RETENTION_DAYS", "ERRGATE_WORKERS"):
        assert key in env, f"{key} missing from the ConfigMap"
    assert settings.event_retention_days == 90
    assert settings.workers == 1


def test_secrets_are_referenced_by_key(rendered: Rendered) -> None:
    env = _env(_container(rendered.deployment))
    secret_names = set()
    for name, optional in (("DATABASE_URL", False), ("ERRGATE_ROOT_TOKEN", True), ("SENTRY_DSN", True)):
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref["key"] == name
        assert bool(ref.get("optional", False)) is optional, name
        secret_names.add(ref["name"])
    assert len(secret_names) == 1
    (secret_name,) = secret_names
    if rendered.target == "dev":
        assert "DATABASE_URL" in _secret_data(rendered.named("Secret", secret_name))
    else:
        # Created by the operator: referenced by its plain name, never rendered.
        assert secret_name == APP


def test_graceful_shutdown_fits_the_grace_period(rendered: Rendered) -> None:
    pod = _pod_spec(rendered.deployment)
    container = _container(rendered.deployment)
    grace = pod["terminationGracePeriodSeconds"]
    assert grace > DRAIN_SECONDS
    drain = Settings.from_env(_effective_env(rendered, rendered.deployment)).shutdown_grace_seconds
    # The preStop hook runs before SIGTERM and counts against the grace period.
    assert _prestop_sleep_seconds(container) + drain < grace


def test_rolling_update_never_reduces_capacity(rendered: Rendered) -> None:
    strategy = rendered.deployment["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0
    assert strategy["rollingUpdate"]["maxSurge"] == 1


def _check_hardened(r: Rendered, workload: dict[str, Any]) -> None:
    name = workload["metadata"]["name"]
    pod = _pod_spec(workload)
    container = _container(workload)
    assert pod["automountServiceAccountToken"] is False, name
    assert pod["enableServiceLinks"] is False, f"{name}: service links would set ERRGATE_PORT=tcp://..."
    account = r.one("ServiceAccount", pod["serviceAccountName"])
    assert account["automountServiceAccountToken"] is False

    pod_sc = pod["securityContext"]
    assert pod_sc["runAsNonRoot"] is True
    assert pod_sc["runAsUser"] == pod_sc["runAsGroup"] == pod_sc["fsGroup"] == UID
    assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}

    sc = container["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc.get("runAsUser", UID) == UID
    assert sc["allowPrivilegeEscalation"] is False
    assert sc.get("privileged", False) is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc.get("seccompProfile", pod_sc["seccompProfile"]) == {"type": "RuntimeDefault"}

    # The only writable path: /tmp on an emptyDir.
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "/tmp" in mounts, name
    assert "emptyDir" in volumes[mounts["/tmp"]], name

    resources = container["resources"]
    for section in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(resources[section]), f"{name}: resources.{section}"


def test_deployment_is_hardened(rendered: Rendered) -> None:
    _check_hardened(rendered, rendered.deployment)


def test_migration_job(rendered: Rendered) -> None:
    job = rendered.job
    _check_hardened(rendered, job)
    container = _container(job)
    argv = container.get("command", ["errgate"]) + container.get("args", [])
    assert argv == ["errgate", "migrate"]
    assert _container(rendered.deployment)["command"] + _container(rendered.deployment)["args"] == [
        "errgate",
        "serve",
    ]
    assert _pod_spec(job)["restartPolicy"] in ("Never", "OnFailure")
    assert isinstance(job["spec"]["backoffLimit"], int)
    assert job["spec"]["ttlSecondsAfterFinished"] > 0
    # Same database as the server.
    assert _env(container)["DATABASE_URL"] == _env(_container(rendered.deployment))["DATABASE_URL"]
    assert Settings.from_env(_effective_env(rendered, job)).database_url
    # Not selected by the server's Service or PDB.
    assert not _selects({"matchLabels": rendered.service["spec"]["selector"]}, _pod_labels(job))


def test_service_routes_to_named_container_ports(rendered: Rendered) -> None:
    service = rendered.service
    deployment = rendered.deployment
    assert _selects({"matchLabels": service["spec"]["selector"]}, _pod_labels(deployment))
    assert _selects(deployment["spec"]["selector"], _pod_labels(deployment))
    container_ports = _container_ports(_container(deployment))
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    for port in ports.values():
        assert port["targetPort"] in container_ports, f"targetPort {port['targetPort']!r} is not a container port"
    assert ports["http"]["port"] == 80 and ports["http"]["targetPort"] == "http"
    assert ports["metrics"]["port"] == METRICS_PORT and ports["metrics"]["targetPort"] == "metrics"


def test_networkpolicy(rendered: Rendered) -> None:
    policy = rendered.networkpolicy["spec"]
    deployment = rendered.deployment
    assert _selects(policy["podSelector"], _pod_labels(deployment))
    assert _selects(policy["podSelector"], _pod_labels(rendered.job))
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]

    # Ingress: exactly the container's ports, by name or number.
    container_ports = _container_ports(_container(deployment))
    allowed = []
    for rule in policy["ingress"]:
        for port in rule["ports"]:
            assert port.get("protocol", "TCP") == "TCP"
            value = port["port"]
            allowed.append(container_ports[value] if isinstance(value, str) else value)
    assert sorted(allowed) == sorted(container_ports.values())

    # Egress: PostgreSQL and DNS only.
    egress = {
        (port["port"], port.get("protocol", "TCP")) for rule in policy["egress"] for port in rule["ports"]
    }
    assert egress == {(5432, "TCP"), (53, "UDP"), (53, "TCP")}


def test_pod_disruption_budget_and_autoscaler(rendered: Rendered) -> None:
    deployment = rendered.deployment
    if rendered.target == "dev":
        # Single replica: no autoscaling, and minAvailable 1 would block every node drain.
        assert rendered.of_kind("PodDisruptionBudget") == rendered.of_kind("HorizontalPodAutoscaler") == []
        return
    pdb = rendered.one("PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert _selects(pdb["spec"]["selector"], _pod_labels(deployment))
    hpa = rendered.one("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": APP}
    assert hpa["spec"]["minReplicas"] == 2
    assert hpa["spec"]["maxReplicas"] == 10
    assert {
        "type": "Resource",
        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
    } in hpa["spec"]["metrics"]
    assert deployment["spec"]["replicas"] == hpa["spec"]["minReplicas"]


# --------------------------------------------------------------------------- secrets


def test_no_real_secret_outside_dev(rendered: Rendered) -> None:
    example = _secret_data(_load_yaml_docs(SECRET_EXAMPLE)[0])
    for value in example.values():
        assert value not in rendered.text, "secret.example.yaml leaked into the rendered output"
    if rendered.target != "dev":
        assert rendered.of_kind("Secret") == []


def test_secret_example_is_an_unreferenced_placeholder() -> None:
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    listed = [
        entry
        for key in ("resources", "components", "patches", "patchesStrategicMerge")
        for entry in kustomization.get(key) or []
    ]
    assert not any(SECRET_EXAMPLE.name in json.dumps(entry) for entry in listed)
    text = SECRET_EXAMPLE.read_text()
    assert "kubectl create secret generic errgate" in text
    assert "--from-literal=DATABASE_URL=" in text
    (doc,) = _load_yaml_docs(SECRET_EXAMPLE)
    assert doc["kind"] == "Secret" and doc["metadata"]["name"] == APP
    data = _secret_data(doc)
    assert "DATABASE_URL" in data
    assert all("CHANGE-ME" in value for value in data.values())
    # The placeholders still parse, so the example documents the expected formats.
    Settings.from_env({"DATABASE_URL": data["DATABASE_URL"], "ERRGATE_ROOT_TOKEN": data["ERRGATE_ROOT_TOKEN"]})


# --------------------------------------------------------------------------- overlays


def test_base(base: Rendered) -> None:
    assert base.deployment["spec"]["replicas"] == 2
    for doc in base.docs:
        assert doc["metadata"]["labels"]["app.kubernetes.io/name"] == APP, doc["metadata"]["name"]


def test_dev_overlay(dev: Rendered) -> None:
    assert dev.deployment["spec"]["replicas"] == 1
    assert dev.of_kind("HorizontalPodAutoscaler") == []
    assert dev.of_kind("PodDisruptionBudget") == [], "minAvailable 1 with 1 replica blocks node drains"

    postgres = dev.one("StatefulSet", "errgate-postgres")
    container = _container(postgres)
    assert container["image"] == "postgres:15"
    assert postgres["spec"]["replicas"] == 1
    pod_sc = _pod_spec(postgres)["securityContext"]
    assert pod_sc["runAsNonRoot"] is True and pod_sc["runAsUser"] == 999
    assert container["securityContext"]["allowPrivilegeEscalation"] is False

    (claim,) = postgres["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    mount = next(m for m in container["volumeMounts"] if m["name"] == claim["metadata"]["name"])
    pgdata = Path(_env(container)["PGDATA"]["value"])
    assert pgdata.is_relative_to(mount["mountPath"]) and pgdata != Path(mount["mountPath"])

    # Its Service, under the name DATABASE_URL uses.
    service = dev.one("Service", "errgate-postgres")
    assert postgres["spec"]["serviceName"] == "errgate-postgres"
    assert _selects({"matchLabels": service["spec"]["selector"]}, _pod_labels(postgres))
    assert not _selects({"matchLabels": service["spec"]["selector"]}, _pod_labels(dev.deployment))
    assert [p["port"] for p in service["spec"]["ports"]] == [5432]

    env = _effective_env(dev, dev.deployment)
    url = urlsplit(env["DATABASE_URL"])
    assert (url.hostname, url.port or 5432) == ("errgate-postgres", 5432)
    password_ref = _env(container)["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]
    secret = _secret_data(dev.named("Secret", password_ref["name"]))
    assert url.password == secret[password_ref["key"]]
    assert "dev" in url.password, "the dev password must look like what it is"

    # errgate -> postgres is allowed: errgate's egress to 5432 has no peer restriction
    # (or one that selects the postgres pods), and postgres accepts the errgate pods.
    errgate_policy = dev.networkpolicy["spec"]
    assert any(
        any(p["port"] == 5432 for p in rule["ports"])
        and (not rule.get("to") or any(_selects(peer.get("podSelector", {}), _pod_labels(postgres)) for peer in rule["to"]))
        for rule in errgate_policy["egress"]
    )
    assert not _selects(errgate_policy["podSelector"], _pod_labels(postgres))
    postgres_policies = [
        p for p in dev.of_kind("NetworkPolicy") if _selects(p["spec"]["podSelector"], _pod_labels(postgres))
    ]
    for policy in postgres_policies:
        assert any(
            any(_selects(peer["podSelector"], _pod_labels(w)) for peer in rule.get("from", []))
            and any(p["port"] in ("postgres", 5432) for p in rule["ports"])
            for rule in policy["spec"]["ingress"]
            for w in (dev.deployment, dev.job)
        )


def test_production_overlay(production: Rendered) -> None:
    service = production.service
    service_ports = {p["name"]: p for p in service["spec"]["ports"]}

    assert production.one("HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]["name"] == APP

    monitor = production.one("ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert "namespace" not in monitor["metadata"]
    assert _selects(monitor["spec"]["selector"], service["metadata"]["labels"])
    others = [s for s in production.of_kind("Service") if s is not service]
    assert not any(_selects(monitor["spec"]["selector"], s["metadata"]["labels"]) for s in others)
    (endpoint,) = monitor["spec"]["endpoints"]
    assert service_ports[endpoint["port"]]["targetPort"] == "metrics"
    assert endpoint.get("path", "/metrics") == METRICS_PATH

    ingress = production.one("Ingress")
    assert ingress["apiVersion"] == "networking.k8s.io/v1"
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == PRODUCTION_HOST
    (tls,) = ingress["spec"]["tls"]
    assert tls["hosts"] == [PRODUCTION_HOST] and tls["secretName"]
    routes = {}
    for path in rule["http"]["paths"]:
        assert path["pathType"] == "Prefix"
        backend = path["backend"]["service"]
        assert backend["name"] == service["metadata"]["name"]
        port = backend["port"]
        assert port.get("name") == "http" or port.get("number") == service_ports["http"]["port"]
        routes[path["path"]] = backend
    assert set(routes) == {"/api/", "/errortracking/"}

    env = _effective_env(production, production.deployment)
    assert env["ERRGATE_EXTERNAL_URL"] == f"https://{PRODUCTION_HOST}"
    assert Settings.from_env(env).external_url == f"https://{PRODUCTION_HOST}"


# --------------------------------------------------------------------------- Dockerfile


@dataclass
class Instruction:
    keyword: str
    args: str


def _dockerfile_stages() -> list[list[Instruction]]:
    logical: list[str] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # comment lines inside a continuation are ignored by Docker
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    assert not pending, "dangling line continuation"
    stages: list[list[Instruction]] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        instruction = Instruction(keyword.upper(), args.strip())
        if instruction.keyword == "FROM":
            stages.append([])
        assert stages, f"{instruction.keyword} before the first FROM"
        stages[-1].append(instruction)
    return stages


def _from_image(stage: list[Instruction]) -> str:
    words = [w for w in stage[0].args.split() if not w.startswith("--")]
    return words[0]


def _json_args(instruction: Instruction) -> list[str]:
    value = json.loads(instruction.args)
    assert isinstance(value, list), f"{instruction.keyword} must use the exec (JSON) form"
    return value


def test_dockerfile_is_multi_stage_on_python_311_slim() -> None:
    stages = _dockerfile_stages()
    assert len(stages) >= 2
    assert all(_from_image(stage) == "python:3.11-slim" for stage in stages)
    builder_names = {stage[0].args.split()[-1] for stage in stages[:-1] if " AS " in stage[0].args.upper()}
    final = stages[-1]
    # The final stage copies only from a builder stage (the virtualenv), never from the context.
    copies = [i for i in final if i.keyword in ("COPY", "ADD")]
    assert copies
    for copy in copies:
        assert copy.keyword == "COPY"
        source = re.search(r"--from=(\S+)", copy.args)
        assert source and source.group(1) in builder_names, copy.args
        assert shlex.split(copy.args)[-2] == "/opt/venv", copy.args


def test_dockerfile_final_stage_has_no_build_tools() -> None:
    final = _dockerfile_stages()[-1]
    for instruction in final:
        if instruction.keyword != "RUN":
            continue
        words = set(re.split(r"[\s;&|]+", instruction.args))
        for tool in ("gcc", "g++", "cc", "make", "build-essential", "clang", "python3-dev", "libpq-dev"):
            assert tool not in words, f"final stage installs {tool}: {instruction.args}"
        assert "pip" not in words, "dependencies belong in the builder stage"


def test_dockerfile_runtime_user_entrypoint_and_env() -> None:
    final = _dockerfile_stages()[-1]
    users = [i.args for i in final if i.keyword == "USER"]
    assert users, "the final stage must switch to a non-root USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0, "USER must be numeric so runAsNonRoot can verify it"
    assert not gid or (gid.isdigit() and int(gid) != 0)

    # The same uid as the manifests (read from the source files: no kubectl needed).
    for name in ("deployment.yaml", "migrate-job.yaml"):
        (workload,) = _load_yaml_docs(BASE / name)
        pod = _pod_spec(workload)
        assert pod["securityContext"]["runAsUser"] == int(uid) == UID
        if gid:
            assert pod["securityContext"]["runAsGroup"] == int(gid)

    (entrypoint,) = [i for i in final if i.keyword == "ENTRYPOINT"]
    assert _json_args(entrypoint) == ["errgate"]
    (cmd,) = [i for i in final if i.keyword == "CMD"]
    assert _json_args(cmd) == ["serve"]

    exposed = {word.split("/")[0] for i in final if i.keyword == "EXPOSE" for word in i.args.split()}
    assert exposed >= {str(DEFAULT_PORT), str(METRICS_PORT)}

    env = dict(
        word.split("=", 1) for i in final if i.keyword == "ENV" for word in shlex.split(i.args)
    )
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["ERRGATE_HOST"] == "0.0.0.0"


def test_dockerignore_keeps_the_context_small() -> None:
    patterns = [
        line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]
    for required in (".git", ".venv", "tests", ".pytest_cache", "deploy/kubernetes"):
        assert required in patterns, required
    assert any("__pycache__" in p for p in patterns)
    assert any(".pyc" in p or ".py[cod]" in p for p in patterns)
    # What the image build needs must stay in the context.
    for needed in ("app", "sql", "pyproject.toml", "*", "deploy", "deploy/Dockerfile"):
        assert needed not in patterns, needed
