"""deploy/Dockerfile and .dockerignore, parsed as text (no Docker needed): stages, user, entrypoint, context."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass

from app.config import DEFAULT_PORT
from tests.deploy.manifests import BASE, DEPLOY, METRICS_PORT, REPO, UID, pod_spec_of, yaml_docs

DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"


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
        (workload,) = yaml_docs(BASE / name)
        pod = pod_spec_of(workload)
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
