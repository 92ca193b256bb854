"""The installed errgate's version, from the package metadata (pyproject.toml's)."""

from __future__ import annotations

from importlib import metadata


def installed_version() -> str | None:
    """None when run from a checkout that was never installed."""
    try:
        return metadata.version("errgate")
    except metadata.PackageNotFoundError:
        return None
