"""A team MLflow tracking server: the command line and environment for ``labelcycle server``.

Lean by default for small machines: one worker process, MLflow's job execution off, bound to
127.0.0.1. SQLite (the project's ``mlflow.db`` and ``mlartifacts/``) is the default backend;
PostgreSQL is the team backend. Artifacts are proxied by the server (``--artifacts-destination`` may be
a local folder or ``s3://bucket/prefix`` with ``MLFLOW_S3_ENDPOINT_URL`` for S3-compatible stores).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from labelcycle import catalog
from labelcycle.databases import is_postgres
from labelcycle.tracking.runs import local_store_uri

LEAN_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


@dataclass(frozen=True)
class ServerPlan:
    """What ``labelcycle server`` will run (computed without side effects)."""

    backend_store_uri: str
    artifacts_destination: str
    host: str
    port: int
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"

    @property
    def needs_database(self) -> bool:
        return is_postgres(self.backend_store_uri)


def plan_server(
    root: Path,
    backend_store_uri: str | None = None,
    artifacts_destination: str | None = None,
    host: str = "127.0.0.1",
    port: int = 5000,
    workers: int = 1,
    allowed_hosts: str | None = None,
) -> ServerPlan:
    """The command and environment of a lean MLflow tracking server for the project at ``root``."""
    backend = backend_store_uri or local_store_uri(root)
    if backend.startswith("postgres://"):
        backend = "postgresql://" + backend[len("postgres://") :]
    artifacts = artifacts_destination or str((root / catalog.MLARTIFACTS).resolve())
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        backend,
        "--artifacts-destination",
        artifacts,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    if allowed_hosts:
        cmd += ["--allowed-hosts", allowed_hosts]
    env = {**os.environ, **LEAN_ENV}
    return ServerPlan(backend, artifacts, host, port, cmd, env)
