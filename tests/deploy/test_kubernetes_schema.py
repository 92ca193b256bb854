"""Every rendered manifest, and the Secret example, validated strictly against the Kubernetes schemas.

Each document of every kustomize target (the base and both overlays) is validated with
kubernetes-validate in strict mode (unknown fields are errors) against Kubernetes
``K8S_VERSION``, the newest release whose schemas kubernetes-validate bundles (1.37 with
kubernetes-validate 1.37.0; no network needed).

Custom resources: kubernetes-validate only has schemas for built-in kinds, and its CLI
merely prints a WARN for a kind it has no schema for and still exits 0 -- which would also
let a built-in kind with a mistyped apiVersion through unvalidated. So the tests call its
Python API instead: every built-in kind must validate strictly, and ``SchemaNotFoundError``
is accepted only for the kinds in ``CRD_KINDS`` (the Prometheus Operator ServiceMonitor of
the production overlay), whose shape is checked here by ``_check_servicemonitor_shape``
(known fields only, the types the CRD requires).
"""

from __future__ import annotations

import re
from typing import Any, Callable

import kubernetes_validate
import pytest

from tests.deploy.manifests import KUSTOMIZE, REPO, SECRET_EXAMPLE, Rendered, yaml_docs

# Newest Kubernetes release covered by the installed kubernetes-validate (see module docstring).
K8S_VERSION = "1.37.0"


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


# Kinds without a bundled schema, checked by hand instead: (apiVersion, kind) -> checker.
CRD_KINDS: dict[tuple[str, str], Callable[[dict[str, Any]], None]] = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): _check_servicemonitor_shape,
}


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
    (doc,) = yaml_docs(SECRET_EXAMPLE)
    _validate_strict(doc, SECRET_EXAMPLE.name)


def test_every_yaml_file_starts_with_a_comment() -> None:
    files = sorted(KUSTOMIZE.rglob("*.yaml"))
    assert files
    for path in files:
        assert path.read_text().startswith("#"), f"{path.relative_to(REPO)} has no comment header"
