"""The kustomize targets one by one: the base, the dev overlay with its PostgreSQL, the production
overlay with its Ingress and ServiceMonitor; and no real secret in any of them."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from app.config import Settings
from app.health import METRICS_PATH
from tests.deploy.manifests import (
    APP, BASE, SECRET_EXAMPLE, Rendered, container_of, effective_env, env_of, pod_labels_of, pod_spec_of,
    secret_data, selects, yaml_docs,
)

PRODUCTION_HOST = "errgate.example.com"


def test_no_real_secret_outside_dev(rendered: Rendered) -> None:
    example = secret_data(yaml_docs(SECRET_EXAMPLE)[0])
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
    (doc,) = yaml_docs(SECRET_EXAMPLE)
    assert doc["kind"] == "Secret" and doc["metadata"]["name"] == APP
    data = secret_data(doc)
    assert "DATABASE_URL" in data
    assert all("CHANGE-ME" in value for value in data.values())
    # The placeholders still parse, so the example documents the expected formats.
    Settings.from_env({"DATABASE_URL": data["DATABASE_URL"], "ERRGATE_ROOT_TOKEN": data["ERRGATE_ROOT_TOKEN"]})


def test_base(base: Rendered) -> None:
    assert base.deployment["spec"]["replicas"] == 2
    for doc in base.docs:
        assert doc["metadata"]["labels"]["app.kubernetes.io/name"] == APP, doc["metadata"]["name"]


def test_dev_overlay(dev: Rendered) -> None:
    assert dev.deployment["spec"]["replicas"] == 1
    assert dev.of_kind("HorizontalPodAutoscaler") == []
    assert dev.of_kind("PodDisruptionBudget") == [], "minAvailable 1 with 1 replica blocks node drains"

    postgres = dev.one("StatefulSet", "errgate-postgres")
    container = container_of(postgres)
    assert container["image"] == "postgres:15"
    assert postgres["spec"]["replicas"] == 1
    pod_sc = pod_spec_of(postgres)["securityContext"]
    assert pod_sc["runAsNonRoot"] is True and pod_sc["runAsUser"] == 999
    assert container["securityContext"]["allowPrivilegeEscalation"] is False

    (claim,) = postgres["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    mount = next(m for m in container["volumeMounts"] if m["name"] == claim["metadata"]["name"])
    pgdata = Path(env_of(container)["PGDATA"]["value"])
    assert pgdata.is_relative_to(mount["mountPath"]) and pgdata != Path(mount["mountPath"])

    # Its Service, under the name DATABASE_URL uses.
    service = dev.one("Service", "errgate-postgres")
    assert postgres["spec"]["serviceName"] == "errgate-postgres"
    assert selects({"matchLabels": service["spec"]["selector"]}, pod_labels_of(postgres))
    assert not selects({"matchLabels": service["spec"]["selector"]}, pod_labels_of(dev.deployment))
    assert [p["port"] for p in service["spec"]["ports"]] == [5432]

    env = effective_env(dev, dev.deployment)
    url = urlsplit(env["DATABASE_URL"])
    assert (url.hostname, url.port or 5432) == ("errgate-postgres", 5432)
    password_ref = env_of(container)["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]
    secret = secret_data(dev.named("Secret", password_ref["name"]))
    assert url.password == secret[password_ref["key"]]
    assert "dev" in url.password, "the dev password must look like what it is"

    # errgate -> postgres is allowed: errgate's egress to 5432 has no peer restriction
    # (or one that selects the postgres pods), and postgres accepts the errgate pods.
    errgate_policy = dev.networkpolicy["spec"]
    assert any(
        any(p["port"] == 5432 for p in rule["ports"])
        and (not rule.get("to") or any(selects(peer.get("podSelector", {}), pod_labels_of(postgres)) for peer in rule["to"]))
        for rule in errgate_policy["egress"]
    )
    assert not selects(errgate_policy["podSelector"], pod_labels_of(postgres))
    postgres_policies = [
        p for p in dev.of_kind("NetworkPolicy") if selects(p["spec"]["podSelector"], pod_labels_of(postgres))
    ]
    for policy in postgres_policies:
        assert any(
            any(selects(peer["podSelector"], pod_labels_of(w)) for peer in rule.get("from", []))
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
    assert selects(monitor["spec"]["selector"], service["metadata"]["labels"])
    others = [s for s in production.of_kind("Service") if s is not service]
    assert not any(selects(monitor["spec"]["selector"], s["metadata"]["labels"]) for s in others)
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

    env = effective_env(production, production.deployment)
    assert env["ERRGATE_EXTERNAL_URL"] == f"https://{PRODUCTION_HOST}"
    assert Settings.from_env(env).external_url == f"https://{PRODUCTION_HOST}"
