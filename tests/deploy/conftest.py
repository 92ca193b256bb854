"""Fixtures of the deployment tests: each kustomize target rendered once."""

from __future__ import annotations

import pytest

from tests.deploy.manifests import TARGETS, Rendered, kubectl_path, render


@pytest.fixture(scope="module", params=list(TARGETS))
def rendered(request: pytest.FixtureRequest) -> Rendered:
    return render(kubectl_path(), request.param)


@pytest.fixture(scope="module")
def base() -> Rendered:
    return render(kubectl_path(), "base")


@pytest.fixture(scope="module")
def dev() -> Rendered:
    return render(kubectl_path(), "dev")


@pytest.fixture(scope="module")
def production() -> Rendered:
    return render(kubectl_path(), "production")
