"""A team MLflow tracking server: the command line and environment for ``labelcycle server``.

Lean by default for small machines: one worker process, MLflow's job execution off, bound to
127.0.0.1. SQLite (the project's ``mlflow.db`` and ``mlartifacts/``) is the default backend;
PostgreSQL is the team backend. Artifacts are proxied by the server (``--artifacts-destination`` may be
a local folder or ``s3://bucket/prefix`` with ``MLFLOW_S3_ENDPOINT_URL`` for S3-compatible stores).

Security: bound beyond loopback the server runs MLflow's ``basic-auth`` app (every request needs a
user; the admin password comes from ``MLFLOW_AUTH_ADMIN_PASSWORD`` or a file, never from argv) unless
``insecure_no_auth`` is asked for explicitly. The backend store URI, which may hold a password, reaches
the child through ``MLFLOW_BACKEND_STORE_URI`` so ``ps`` never shows it.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import secrets
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from labelcycle import catalog
from labelcycle.databases import is_postgres
from labelcycle.errors import ConfigError
from labelcycle.masking import mask
from labelcycle.tracking.runs import local_store_uri

LEAN_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
#: the environment variables MLflow reads the backend store and the auth settings from
BACKEND_ENV = "MLFLOW_BACKEND_STORE_URI"
ADMIN_PASSWORD_ENV = "MLFLOW_AUTH_ADMIN_PASSWORD"
ADMIN_USERNAME_ENV = "MLFLOW_AUTH_ADMIN_USERNAME"
AUTH_CONFIG_ENV = "MLFLOW_AUTH_CONFIG_PATH"
#: the key MLflow's auth app signs its CSRF tokens with; kept in the project's state folder (mode 600) so a
#: restarted server (or several servers of one project) accept each other's forms
SECRET_KEY_ENV = "MLFLOW_FLASK_SERVER_SECRET_KEY"
AUTH_APP = "basic-auth"


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server on this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to a public interface


def auth_available() -> bool:
    """Whether MLflow's basic-auth app can start (it needs the ``mlflow[auth]`` extra, Flask-WTF)."""
    return importlib.util.find_spec("flask_wtf") is not None


@dataclass(frozen=True)
class ServerPlan:
    """What ``labelcycle server`` will run (computed without side effects)."""

    backend_store_uri: str
    artifacts_destination: str
    host: str
    port: int
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
    auth: bool = False
    #: (path, text) of the basic-auth ini the server reads; written by the caller before starting
    auth_config: tuple[Path, str] | None = None
    #: (path, key) of a new secret key file the caller writes (mode 600) before starting; None: none to write
    secret_key: tuple[Path, str] | None = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"

    @property
    def needs_database(self) -> bool:
        return is_postgres(self.backend_store_uri)

    def shown(self) -> str:
        """The command as a shell line with the environment it needs, secrets masked (for --dry-run)."""
        names = [BACKEND_ENV] + ([AUTH_CONFIG_ENV] if self.auth else [])
        assigns = [f"{n}={shlex.quote(mask(self.env[n]))}" for n in names if n in self.env]
        if self.auth and ADMIN_PASSWORD_ENV in self.env:
            assigns.append(f"{ADMIN_PASSWORD_ENV}=***")
        return " ".join([*assigns, shlex.join(self.command)])


def auth_ini(database_uri: str, admin_username: str) -> str:
    """MLflow basic-auth settings: its user store and admin user (the password comes from the env)."""
    return (
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = {database_uri}\n"
        f"admin_username = {admin_username}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )


def plan_server(
    root: Path,
    backend_store_uri: str | None = None,
    artifacts_destination: str | None = None,
    host: str = "127.0.0.1",
    port: int = 5000,
    workers: int = 1,
    allowed_hosts: str | None = None,
    cors_allowed_origins: str | None = None,
    auth: bool | None = None,
    insecure_no_auth: bool = False,
    admin_password: str | None = None,
) -> ServerPlan:
    """The command and environment of a lean MLflow tracking server for the project at ``root``.

    Args:
        auth: force basic auth on (True) or off (False); None: on exactly when ``host`` is not loopback.
        insecure_no_auth: allow a server beyond loopback without authentication (the caller warns).
        admin_password: the basic-auth admin password (else ``MLFLOW_AUTH_ADMIN_PASSWORD``).

    Raises:
        ConfigError: auth is needed but no admin password is given, or it is turned off beyond loopback
            without ``insecure_no_auth``.
    """
    backend = backend_store_uri or local_store_uri(root)
    if backend.startswith("postgres://"):
        backend = "postgresql://" + backend[len("postgres://") :]
    artifacts = artifacts_destination or str((root / catalog.MLARTIFACTS).resolve())
    beyond = not is_loopback(host)
    if auth is None:
        auth = beyond and not insecure_no_auth
    if beyond and not auth and not insecure_no_auth:
        raise ConfigError(
            f"--host {host} opens the server to the network without authentication; keep auth on (set "
            f"{ADMIN_PASSWORD_ENV} or --admin-password-file) or pass --insecure-no-auth explicitly"
        )
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
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
    if cors_allowed_origins:
        cmd += ["--cors-allowed-origins", cors_allowed_origins]
    env = {**os.environ, **LEAN_ENV, BACKEND_ENV: backend}
    auth_config = secret_key = None
    if auth:
        password = admin_password or os.environ.get(ADMIN_PASSWORD_ENV)
        if not password:
            raise ConfigError(
                f"the server on {host} needs authentication: set {ADMIN_PASSWORD_ENV} or pass "
                "--admin-password-file FILE (the admin password; users then log in with "
                "MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD)"
            )
        if not auth_available():
            raise ConfigError(
                "the server's basic auth needs MLflow's auth extra (Flask-WTF), which is not installed: "
                "pip install 'mlflow[auth]'; or bind --host 127.0.0.1"
            )
        state = catalog.state_dir(root) / "server"
        ini = state / "basic_auth.ini"
        user = os.environ.get(ADMIN_USERNAME_ENV) or "admin"
        auth_config = (ini, auth_ini(f"sqlite:///{(state / 'basic_auth.db').resolve()}", user))
        env.update({ADMIN_PASSWORD_ENV: password, AUTH_CONFIG_ENV: str(ini.resolve())})
        key_file = state / "flask_secret_key"
        if not env.get(SECRET_KEY_ENV):
            if key_file.exists():
                env[SECRET_KEY_ENV] = key_file.read_text().strip()
            else:
                env[SECRET_KEY_ENV] = secrets.token_hex(32)
                secret_key = (key_file, env[SECRET_KEY_ENV])
        cmd[4:4] = ["--app-name", AUTH_APP]
    return ServerPlan(backend, artifacts, host, port, cmd, env, bool(auth), auth_config, secret_key)


#: seconds the guard waits for the server to stop after SIGTERM before it kills the group
STOP_GRACE = 10.0


def guard_command(command: list[str]) -> list[str]:
    """``command`` run under :func:`guard` as a child of this process (see there)."""
    return [sys.executable, "-m", "labelcycle.tracking.server", str(os.getpid()), *command]


def guard(parent: int, command: list[str]) -> int:
    """Run ``command`` in this process's group and stop the whole group when ``parent`` dies or a signal
    comes: the MLflow CLI starts uvicorn/gunicorn children of its own, which would outlive it.

    Meant to be started in a new session by ``labelcycle server``: on Linux ``PR_SET_PDEATHSIG`` turns the
    wrapper's death (even by SIGKILL) into SIGTERM here; SIGTERM, SIGINT and SIGHUP stop the group.
    """
    import signal
    import subprocess

    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        return 128 + signal.SIGTERM  # the wrapper died before the guard armed itself
    stopping: list[int] = []

    def stop(signum, frame):
        stopping.append(signum)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        os.killpg(os.getpgrp(), signal.SIGTERM)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)
    proc = subprocess.Popen(command)
    while True:
        try:
            rc = proc.wait(timeout=STOP_GRACE if stopping else None)
            break
        except subprocess.TimeoutExpired:
            os.killpg(os.getpgrp(), signal.SIGKILL)  # takes the guard too: nothing is left listening
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.killpg(os.getpgrp(), signal.SIGTERM)  # worker processes that outlived the server's main process
    if stopping:
        return 128 + stopping[0]
    return 128 - rc if rc < 0 else rc


if __name__ == "__main__":  # pragma: no cover - run by labelcycle server as its child
    sys.exit(guard(int(sys.argv[1]), sys.argv[2:]))
