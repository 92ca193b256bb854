"""errgate's workloads as rendered (Deployment, migration Job, Service, NetworkPolicy, PDB and autoscaler)
against the service's contract: probe paths and ports from ``app.health`` / ``app.config``, and
the environment the Deployment builds fed to ``Settings.from_env``, the service's own parser."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.config import DEFAULT_PORT, Settings
from app.health import LIVENESS_PATH, READINESS_PATH
from tests.deploy.manifests import (
    APP, METRICS_PORT, UID, Rendered, container_of, effective_env, env_of, millicores, pod_labels_of,
    pod_spec_of, ports_of, secret_data, selects,
)

IMAGE = "registry.example.com/errgate:0.1.0"
# errgate drains in-flight requests this long after SIGTERM (ERRGATE_SHUTDOWN_GRACE_SECONDS default).
DRAIN_SECONDS = 20


def _prestop_sleep_seconds(container: dict[str, Any]) -> int:
    pre_stop = container.get("lifecycle", {}).get("preStop")
    if pre_stop is None:
        return 0
    if "sleep" in pre_stop:
        return int(pre_stop["sleep"]["seconds"])
    command = pre_stop["exec"]["command"]
    assert command[0] in ("sleep", "/bin/sleep", "/usr/bin/sleep"), command
    return int(command[1])


def test_image_is_pinned(rendered: Rendered) -> None:
    for workload in (rendered.deployment, rendered.job):
        assert container_of(workload)["image"] == IMAGE


def test_ports_and_probes_match_the_service(rendered: Rendered) -> None:
    container = container_of(rendered.deployment)
    assert ports_of(container) == {"http": DEFAULT_PORT, "metrics": METRICS_PORT}
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
    container = container_of(rendered.deployment)
    env = effective_env(rendered, rendered.deployment)
    ports = ports_of(container)
    settings = Settings.from_env(env)
    assert settings.host == "0.0.0.0"
    assert settings.port == ports["http"] == DEFAULT_PORT
    assert settings.metrics_port == ports["metrics"]
    assert settings.database_url, "DATABASE_URL must be set: no embedded PostgreSQL in Kubernetes"
    assert env["HOME"] == "/tmp"
    assert Path(env["ERRGATE_DATA_DIR"]).is_relative_to("/tmp")
    for key in ("ERRGATE_EXTERNAL_URL", "ERRGATE_LOG_LEVEL", "ERRGATE_EVENT_RETENTION_DAYS"):
        assert key in env, f"{key} missing from the ConfigMap"
    assert settings.event_retention_days == 90


def test_one_worker_per_requested_core(rendered: Rendered) -> None:
    """Set explicitly: errgate's default counts the cores it may use, which is the node's or the CPU
    limit, not what the scheduler reserved for the pod."""
    container = container_of(rendered.deployment)
    env = effective_env(rendered, rendered.deployment)
    assert "ERRGATE_WORKERS" in env, "ERRGATE_WORKERS must be set (Deployment or ConfigMap)"
    requested = millicores(container["resources"]["requests"]["cpu"])
    settings = Settings.from_env(env)
    assert settings.workers == -(-requested // 1000), f"{rendered.target}: workers and requests.cpu differ"


MEMORY_UNITS = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3}


def test_decoded_bodies_fit_well_inside_the_memory_limit(rendered: Rendered) -> None:
    limit = container_of(rendered.deployment)["resources"]["limits"]["memory"]
    number, unit = limit[:-2], limit[-2:]
    limit_bytes = int(number) * MEMORY_UNITS[unit]
    settings = Settings.from_env(effective_env(rendered, rendered.deployment))
    # A decoded body is parsed into items, so it costs more than its size: a quarter of each
    # worker's share leaves the rest for that, the events waiting for their batch and the runtime.
    assert settings.max_inflight_bytes * settings.workers <= limit_bytes // 4


def test_secrets_are_referenced_by_key(rendered: Rendered) -> None:
    env = env_of(container_of(rendered.deployment))
    secret_names = set()
    for name, optional in (("DATABASE_URL", False), ("ERRGATE_ROOT_TOKEN", True), ("SENTRY_DSN", True)):
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref["key"] == name
        assert bool(ref.get("optional", False)) is optional, name
        secret_names.add(ref["name"])
    assert len(secret_names) == 1
    (secret_name,) = secret_names
    if rendered.target == "dev":
        assert "DATABASE_URL" in secret_data(rendered.named("Secret", secret_name))
    else:
        # Created by the operator: referenced by its plain name, never rendered.
        assert secret_name == APP


def test_graceful_shutdown_fits_the_grace_period(rendered: Rendered) -> None:
    pod = pod_spec_of(rendered.deployment)
    container = container_of(rendered.deployment)
    grace = pod["terminationGracePeriodSeconds"]
    assert grace > DRAIN_SECONDS
    drain = Settings.from_env(effective_env(rendered, rendered.deployment)).shutdown_grace_seconds
    # The preStop hook runs before SIGTERM and counts against the grace period.
    assert _prestop_sleep_seconds(container) + drain < grace


def test_rolling_update_never_reduces_capacity(rendered: Rendered) -> None:
    strategy = rendered.deployment["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0
    assert strategy["rollingUpdate"]["maxSurge"] == 1


def _check_hardened(r: Rendered, workload: dict[str, Any]) -> None:
    name = workload["metadata"]["name"]
    pod = pod_spec_of(workload)
    container = container_of(workload)
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
    container = container_of(job)
    argv = container.get("command", ["errgate"]) + container.get("args", [])
    assert argv == ["errgate", "migrate"]
    assert container_of(rendered.deployment)["command"] + container_of(rendered.deployment)["args"] == [
        "errgate",
        "serve",
    ]
    assert pod_spec_of(job)["restartPolicy"] in ("Never", "OnFailure")
    assert isinstance(job["spec"]["backoffLimit"], int)
    assert job["spec"]["ttlSecondsAfterFinished"] > 0
    # Same database as the server.
    assert env_of(container)["DATABASE_URL"] == env_of(container_of(rendered.deployment))["DATABASE_URL"]
    assert Settings.from_env(effective_env(rendered, job)).database_url
    # Not selected by the server's Service or PDB.
    assert not selects({"matchLabels": rendered.service["spec"]["selector"]}, pod_labels_of(job))


def test_service_routes_to_named_container_ports(rendered: Rendered) -> None:
    service = rendered.service
    deployment = rendered.deployment
    assert selects({"matchLabels": service["spec"]["selector"]}, pod_labels_of(deployment))
    assert selects(deployment["spec"]["selector"], pod_labels_of(deployment))
    container_ports = ports_of(container_of(deployment))
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    for port in ports.values():
        assert port["targetPort"] in container_ports, f"targetPort {port['targetPort']!r} is not a container port"
    assert ports["http"]["port"] == 80 and ports["http"]["targetPort"] == "http"
    assert ports["metrics"]["port"] == METRICS_PORT and ports["metrics"]["targetPort"] == "metrics"


def test_networkpolicy(rendered: Rendered) -> None:
    policy = rendered.networkpolicy["spec"]
    deployment = rendered.deployment
    assert selects(policy["podSelector"], pod_labels_of(deployment))
    assert selects(policy["podSelector"], pod_labels_of(rendered.job))
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]

    # Ingress: exactly the container's ports, by name or number.
    container_ports = ports_of(container_of(deployment))
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
    assert selects(pdb["spec"]["selector"], pod_labels_of(deployment))
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
