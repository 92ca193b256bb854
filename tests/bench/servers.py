"""The servers under load: errgate (``errgate serve --workers N``) with a project, or the bare aiohttp handler."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import subprocess
import sys
import uuid
from typing import Iterator

import aiohttp
import orjson
from prometheus_client.parser import text_string_to_metric_families

from app.health import METRICS_PATH
from tests.process import ROOT, wait_ready

ROOT_TOKEN = "glpat-bench-root-token-000000000"
READY_TIMEOUT_SECONDS = 120.0


def run_bare_server(port: int, workers: int = 1) -> None:
    """The framework's ceiling: read the body, answer ``{"id": ...}``, nothing else; ``workers``
    processes share the port with SO_REUSEPORT, as errgate's workers do, on the same event loop."""
    import uvloop
    from aiohttp import web

    if workers > 1:
        children = [
            multiprocessing.get_context("spawn").Process(target=run_bare_server, args=(port, 1)) for _ in range(workers - 1)
        ]
        for child in children:
            child.start()

    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"id": uuid.uuid4().hex}, dumps=lambda v: orjson.dumps(v).decode())

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/api/{project_id}/envelope/", handler)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None, auto_decompress=False,
                reuse_port=True, loop=uvloop.new_event_loop())


@contextlib.contextmanager
def _running(command: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """``command`` in a process group of its own, stopped with every worker it started."""
    server = subprocess.Popen(command, env=env, cwd=ROOT, start_new_session=True)
    try:
        yield server
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def errgate_server(port: int, database_url: str, workers: int) -> contextlib.AbstractContextManager[subprocess.Popen[bytes]]:
    """errgate on ``port`` against ``database_url``; the ``ERRGATE_*`` settings of this environment apply.
    Its log level is ``warning`` unless ``ERRGATE_LOG_LEVEL`` says otherwise: at errgate's default,
    ``info``, every request writes an access line to the benchmark's stderr."""
    env = dict(
        os.environ, DATABASE_URL=database_url, ERRGATE_PORT=str(port), ERRGATE_ROOT_TOKEN=ROOT_TOKEN,
        ERRGATE_LOG_LEVEL=os.environ.get("ERRGATE_LOG_LEVEL", "warning"), ERRGATE_EXTERNAL_URL=f"http://127.0.0.1:{port}",
    )
    return _running([sys.executable, "-m", "app", "serve", "--workers", str(workers)], env)


def bare_server(port: int, workers: int) -> contextlib.AbstractContextManager[subprocess.Popen[bytes]]:
    return _running([sys.executable, "-m", "tests.bench", "--serve-bare", str(port), "--workers", str(workers)],
                    dict(os.environ))


async def tracked_project(server: subprocess.Popen[bytes], base: str, root_token: str = ROOT_TOKEN) -> str:
    """Once errgate is ready: a project with integrated error tracking, made through the REST API; its DSN."""
    await wait_ready(server, base, READY_TIMEOUT_SECONDS)
    async with aiohttp.ClientSession(headers={"PRIVATE-TOKEN": root_token}) as s:
        async with s.post(f"{base}/api/v4/projects", json={"path_with_namespace": "bench/app"}) as r:
            project = await r.json()
        url = f"{base}/api/v4/projects/{project['id']}/error_tracking/settings"
        async with s.put(url, json={"active": True, "integrated": True}):
            pass
        async with s.get(f"{base}/api/v4/projects/{project['id']}/error_tracking/client_keys") as r:
            return (await r.json())[0]["sentry_dsn"]


async def writer_retries(base: str) -> dict[str, float]:
    """errgate's ``errgate_writer_retries_total`` by reason, from its ``/metrics`` (every worker's)."""
    async with aiohttp.ClientSession() as http, http.get(base + METRICS_PATH) as response:
        return retries_metric(await response.text())


def retries_metric(text: str) -> dict[str, float]:
    """``errgate_writer_retries_total`` by reason, from the text of a ``/metrics`` answer."""
    return {
        sample.labels["reason"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples if sample.name == "errgate_writer_retries_total"
    }
