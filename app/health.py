"""Liveness and readiness probes (paths shared with deploy/ manifests and their tests)."""

LIVENESS_PATH = "/-/liveness"
READINESS_PATH = "/-/readiness"
METRICS_PATH = "/metrics"
