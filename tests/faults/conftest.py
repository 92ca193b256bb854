"""Fixtures of the fault tests."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import pytest


@pytest.fixture
def scratch_dir() -> Iterator[Path]:
    """A private directory for data directories and logs, removed afterwards.

    Not pytest's ``tmp_path``: another pytest run on the machine may prune its base directory
    while a test still runs a PostgreSQL cluster or an errgate process inside it.
    """
    path = Path(tempfile.mkdtemp(prefix="errgate-faults-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
