"""A real Label Studio server round trip (slow): export tasks, annotate through its API, import the export.

Label Studio (``label-studio`` 1.23.2, :data:`LS_VERSION`) lives in a virtual environment of its own,
made by ``scripts/labelstudio_env.sh`` when absent (``LABELCYCLE_LS_VENV``, default
``~/.cache/labelcycle/venv-labelstudio``), because its pins may clash with the project's. The test
skips with the reason when pip cannot reach a package index to install it.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from tests.conftest import REPO_ROOT, demo_project, dvc, free_port, lc, stop_process_group

from labelcycle import catalog

pytestmark = pytest.mark.slow

LS_VERSION = "1.23.2"
SCRIPT = REPO_ROOT / "scripts" / "labelstudio_env.sh"
TOKEN = "labelcycle-test-token-0123456789"


@pytest.fixture(scope="module")
def label_studio() -> Path:
    """The ``label-studio`` executable of its own venv, installed by the script when absent."""
    venv = Path(
        os.environ.get("LABELCYCLE_LS_VENV", Path.home() / ".cache" / "labelcycle" / "venv-labelstudio")
    )
    res = subprocess.run(
        ["bash", str(SCRIPT), str(venv)],
        capture_output=True,
        text=True,
        timeout=1800,
        env={**os.environ, "LABELCYCLE_LS_VERSION": LS_VERSION},
    )
    if res.returncode == 3:
        pytest.skip(f"label-studio {LS_VERSION} is not installed and cannot be: {res.stderr.strip()}")
    assert res.returncode == 0, f"{SCRIPT} failed:\n{res.stdout}\n{res.stderr[-3000:]}"
    return venv / "bin" / "label-studio"


class LabelStudio:
    """``label-studio start`` on 127.0.0.1 with a fresh data folder, one user and a legacy API token."""

    def __init__(self, executable: Path, data_dir: Path) -> None:
        self.executable, self.data_dir = executable, data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir / "server.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 600) -> LabelStudio:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "LABEL_STUDIO_BASE_DATA_DIR": str(self.data_dir),
            "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
            "LABEL_STUDIO_COLLECT_ANALYTICS": "false",
            "LABEL_STUDIO_LATEST_VERSION_CHECK": "false",
            "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
            "SENTRY_DSN": "",
            "FRONTEND_SENTRY_DSN": "",
        }
        cmd = [
            str(self.executable),
            "start",
            "--no-browser",
            *("--data-dir", str(self.data_dir)),
            *("--internal-host", "127.0.0.1", "--port", str(self.port)),
            *("--username", "reviewer@example.com", "--password", "review-pass-123"),
            *("--user-token", TOKEN, "--enable-legacy-api-token"),
        ]
        self.proc = subprocess.Popen(
            cmd,
            cwd=self.data_dir,
            env=env,
            stdout=self.log.open("a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"label-studio exited: {self.log.read_text()[-3000:]}")
            try:
                self.api("GET", "/api/current-user/whoami")
                return self
            except (OSError, urllib.error.HTTPError):
                time.sleep(2)
        raise RuntimeError(f"label-studio not up after {timeout}s: {self.log.read_text()[-3000:]}")

    def api(self, method: str, path: str, body: object = None) -> object:
        req = urllib.request.Request(
            self.url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Token {TOKEN}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                raw = r.read()
        except urllib.error.HTTPError as exc:
            if exc.code >= 500 or method == "GET" and path.endswith("whoami"):
                raise
            raise AssertionError(f"{method} {path}: {exc.code} {exc.read()[:2000]!r}") from None
        return json.loads(raw) if raw else None

    def stop(self) -> None:
        if self.proc is not None:
            stop_process_group(self.proc)
            self.proc = None


def _choice(label: str) -> list[dict]:
    return [{"from_name": "label", "to_name": "item", "type": "choices", "value": {"choices": [label]}}]


def test_label_studio_round_trip_adds_the_reviewed_labels_as_a_new_raw_batch(tmp_path, label_studio):
    """Tasks out, 8 tasks in Label Studio: one left, one skipped, one submitted twice, 3 labels changed;
    then the left one is annotated and a second export of the whole project adds only that judgement."""
    project = demo_project(tmp_path / "proj", n_items=300)
    res = dvc(project, "repro", "aggregate", "train_error_model")
    assert res.returncode == 0, res.stdout + res.stderr
    lc(
        project,
        *("review", "export", "--budget", "8", "--format", "label-studio"),
        *("-o", "tasks.json", "--label-config", "config.xml"),
    )
    tasks = json.loads((project / "tasks.json").read_text())
    labels = ("ok", "misleading", "prohibited")
    before = batches(project)

    server = LabelStudio(label_studio, tmp_path / "label-studio").start()
    try:
        assert server.api("GET", "/api/version")["release"] == LS_VERSION
        me = server.api("GET", "/api/current-user/whoami")
        config = (project / "config.xml").read_text()
        pid = server.api("POST", "/api/projects", {"title": "labelcycle review", "label_config": config})[
            "id"
        ]
        imported = server.api("POST", f"/api/projects/{pid}/import", tasks)
        assert (imported["task_count"], imported["prediction_count"]) == (8, 8)
        ls_tasks = sorted(
            server.api("GET", f"/api/tasks?project={pid}&page_size=100")["tasks"], key=lambda t: t["id"]
        )
        expected, changed = {}, 0
        for n, task in enumerate(ls_tasks):
            (pred,) = server.api("GET", f"/api/predictions?task={task['id']}")
            suggested = pred["result"][0]["value"]["choices"][0]
            assert suggested == task["data"]["lc_current_label"]
            assert pred["model_version"] == tasks[0]["predictions"][0]["model_version"]
            if n == 0:
                continue  # left for later: not annotated
            path = f"/api/tasks/{task['id']}/annotations"
            if n == 1:
                server.api("POST", path, {"result": [], "was_cancelled": True})  # skipped
                continue
            label = labels[(labels.index(suggested) + 1) % 3] if n % 2 == 0 else suggested
            if n == 2:  # a first submission the reviewer later corrects: the latest one counts
                server.api("POST", path, {"result": _choice(suggested), "lead_time": 1.0})
                time.sleep(1.1)
            server.api("POST", path, {"result": _choice(label), "lead_time": 3.0})
            expected[task["data"]["item_id"]] = label
            changed += label != suggested
        # all tasks, as the export dialog does when asked to: the unannotated one is counted too
        export_url = f"/api/projects/{pid}/export?exportType=JSON&download_all_tasks=true"
        (project / "export.json").write_text(json.dumps(server.api("GET", export_url), indent=1))

        res = lc(project, "review", "import", "export.json")
        assert (
            "set aside: 1 tasks nobody annotated, 1 annotations skipped by the reviewer (was_cancelled), "
            "1 earlier submissions by the same reviewer" in res.stdout
        ), res.stdout
        (new,) = batches(project) - before
        batch = pd.read_csv(project / catalog.RAW / new / "annotations.csv", dtype={"item_id": str})
        assert len(batch) == 6
        assert dict(zip(batch["item_id"], batch["label"], strict=True)) == expected
        reviewer = f"reviewer:labelstudio-user-{me['id']}"
        assert set(batch["annotator_id"]) == {reviewer}
        suggested_by_item = {t["data"]["item_id"]: t["data"]["lc_current_label"] for t in tasks}
        assert sum(batch["label"] != batch["item_id"].map(suggested_by_item)) == changed == 3
        assert batch["duration_s"].tolist() == [3.0] * 6
        assert set(batch["batch_id"]) == {f"labelstudio-{pid}"}

        again = lc(project, "review", "import", "export.json")
        assert "was already imported as batch" in again.stdout
        assert batches(project) - before == {new}

        # the task left for later is annotated; the next export holds all annotations again
        last = ls_tasks[0]
        server.api("POST", f"/api/tasks/{last['id']}/annotations", {"result": _choice("prohibited")})
        (project / "export2.json").write_text(json.dumps(server.api("GET", export_url), indent=1))
    finally:
        server.stop()

    res = lc(project, "review", "import", "export2.json")
    assert "1 reviewed labels" in res.stdout and "6 annotations imported before" in res.stdout, res.stdout
    (second,) = batches(project) - before - {new}
    batch2 = pd.read_csv(project / catalog.RAW / second / "annotations.csv", dtype={"item_id": str})
    assert batch2[["item_id", "label"]].values.tolist() == [[last["data"]["item_id"], "prohibited"]]

    res = dvc(project, "repro", "ingest")  # the pipeline takes both batches in as they are
    assert res.returncode == 0, res.stdout + res.stderr
    ann = pd.read_parquet(project / catalog.ANNOTATIONS)
    assert (ann["annotator_id"] == reviewer).sum() == 7
    quarantine = pd.read_parquet(project / catalog.QUARANTINE)
    assert not quarantine.astype(str).apply(lambda c: c.str.contains(reviewer, regex=False)).any().any()


def batches(project: Path) -> set[str]:
    return {p.name for p in (project / catalog.RAW).iterdir() if p.is_dir()}
