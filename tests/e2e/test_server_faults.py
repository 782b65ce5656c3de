"""`labelcycle server` killed by any signal leaves no MLflow listening (issue 16, finding 10), and a server
bound beyond loopback answers nobody without credentials (finding 3)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

import psutil
import pytest
from tests.conftest import BIN, free_port

from labelcycle import catalog

pytestmark = pytest.mark.slow


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _wait(cond, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.3)
    return cond()


def _start(tmp_path, port: int, *extra: str, env: dict | None = None) -> tuple[subprocess.Popen, list]:
    cmd = [
        str(BIN / "labelcycle"),
        "server",
        "--port",
        str(port),
        "--repo",
        str(tmp_path),
        "--backend-store-uri",
        f"sqlite:///{tmp_path / 'mlflow.db'}",
        "--artifacts-destination",
        str(tmp_path / "artifacts"),
        *extra,
    ]
    wrapper = subprocess.Popen(
        cmd, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    assert _wait(lambda: _listening(port) or wrapper.poll() is not None, 120) and wrapper.poll() is None, (
        "the server never listened"
    )
    family = psutil.Process(wrapper.pid).children(recursive=True)
    return wrapper, family


@pytest.mark.parametrize(
    "sig",
    [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGKILL],
    ids=lambda s: signal.Signals(s).name,
)
def test_killing_the_server_wrapper_by_any_signal_leaves_no_mlflow_listening(tmp_path, sig):
    port = free_port()
    wrapper, family = _start(tmp_path, port)
    assert family, "the MLflow server runs as the wrapper's descendants"
    wrapper.send_signal(sig)
    wrapper.wait(timeout=60)
    assert _wait(lambda: not _listening(port), 30), f"MLflow still listens on {port} after {sig!r}"
    _, alive = psutil.wait_procs(family, timeout=30)
    assert alive == [], f"left running: {[p.pid for p in alive]}"


def test_a_server_beyond_loopback_refuses_requests_without_credentials(tmp_path):
    import requests

    pytest.importorskip("flask_wtf", reason="MLflow's basic-auth app needs mlflow[auth]")

    port = free_port()
    wrapper, family = _start(
        tmp_path, port, "--host", "0.0.0.0", env={"MLFLOW_AUTH_ADMIN_PASSWORD": "Adm1n-pass-word!"}
    )
    try:
        url = f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search?max_results=1"
        assert requests.get(url, timeout=10).status_code == 401
        assert requests.get(url, auth=("admin", "Adm1n-pass-word!"), timeout=10).status_code == 200
        key_file = catalog.state_dir(tmp_path) / "server" / "flask_secret_key"
        assert key_file.stat().st_mode & 0o077 == 0, "the CSRF secret key is readable by others"
    finally:
        wrapper.send_signal(signal.SIGTERM)
        wrapper.wait(timeout=60)
        psutil.wait_procs(family, timeout=30)
