"""Browser check: two pipeline versions side by side in the MLflow UI (headless Debian chromium).

Builds (or reuses) an MLflow store holding two pipeline versions (evaluate runs with dataset inputs
carrying labelcycle digests, params and metrics), starts `mlflow server` on a free port, asserts through
the REST API that both runs expose their dataset inputs, params and metrics, opens the runs compare page
in headless chromium and saves a screenshot.

    python scripts/mlflow_ui_check.py [--store sqlite:///mlflow.db --runs ID1,ID2] [--out docs/img/mlflow_compare.png]

Without --store it logs two small synthetic versions into a temporary store. Exit code 0 when every
check passed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def log_two_versions(root: Path) -> list[str]:
    """Two pipeline versions (aggregate.method differs) logged the way the stages log them."""
    os.environ["LABELCYCLE_PIPELINE_RUN"] = ""
    from labelcycle.tracking.runs import stage_run
    from labelcycle.versioning.digest import table_digest

    ids = []
    rng = np.random.default_rng(0)
    for method, acc in (("majority_vote", 0.81), ("dawid_skene", 0.84)):
        os.environ["LABELCYCLE_PIPELINE_RUN"] = f"ui-check-{method}"
        os.environ["DVC_EXP_NAME"] = f"exp-{method}"
        curated = pd.DataFrame({"item_id": [f"i{i}" for i in range(200)],
                                "label": rng.choice(["ok", "misleading", "prohibited"], 200)})
        eval_split = curated.head(80)
        with stage_run(root, "evaluate", {"aggregate": {"method": method}, "sample": {"fraction": 1.0}}) as run:
            run.log_dataset(curated, "curated", "training", table_digest(curated), "data/curated/dataset.parquet")
            run.log_dataset(eval_split, "eval", "evaluation", table_digest(eval_split), "data/split/eval.parquet")
            run.log_metrics({"accuracy": acc, "macro_f1": acc - 0.05, "log_loss": 0.5 - acc / 4})
            run.set_tags({"eval_digest": table_digest(eval_split)})
            ids.append(run.run_id)
    os.environ.pop("DVC_EXP_NAME", None)
    os.environ.pop("LABELCYCLE_PIPELINE_RUN", None)
    return ids


def api(base: str, path: str, **query: str) -> dict:
    url = f"{base}/api/2.0/mlflow/{path}?{urllib.parse.urlencode(query)}"
    with urllib.request.urlopen(url, timeout=30) as resp:
        return json.loads(resp.read())


def wait_up(base: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"mlflow server exited with {proc.returncode}")
        try:
            urllib.request.urlopen(f"{base}/health", timeout=2)
            return
        except OSError:
            time.sleep(1)
    raise SystemExit(f"mlflow server did not answer at {base} within {timeout:.0f}s")


def check_runs(base: str, run_ids: list[str]) -> list[dict]:
    """Both runs expose dataset inputs with digests, params and metrics (what the compare page shows)."""
    runs = []
    for rid in run_ids:
        run = api(base, "runs/get", run_id=rid)["run"]
        inputs = run.get("inputs", {}).get("dataset_inputs", [])
        params = {p["key"]: p["value"] for p in run["data"].get("params", [])}
        metrics = {m["key"]: m["value"] for m in run["data"].get("metrics", [])}
        assert inputs and all(d["dataset"].get("digest") for d in inputs), f"run {rid}: no dataset inputs with digests"
        assert "aggregate.method" in params, f"run {rid}: params lack aggregate.method: {sorted(params)}"
        assert "accuracy" in metrics, f"run {rid}: metrics lack accuracy: {sorted(metrics)}"
        runs.append({"run_id": rid, "datasets": [d["dataset"]["name"] for d in inputs],
                     "aggregate.method": params["aggregate.method"], "accuracy": metrics["accuracy"]})
    assert len({r["aggregate.method"] for r in runs}) == len(runs), "the two versions have the same params"
    return runs


def screenshot(url: str, out: Path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("chromium not found; install Debian's: apt-get install -y chromium")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        cmd = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1500,1700",
               "--virtual-time-budget=20000", f"--screenshot={out}", url]
        subprocess.run(cmd, check=True, capture_output=True, timeout=180)
    if not out.exists() or out.stat().st_size < 10_000:
        raise SystemExit(f"the screenshot {out} is missing or blank")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", default=None, help="MLflow backend store URI (default: a temporary one)")
    ap.add_argument("--runs", default=None, help="two run ids, comma-separated (with --store)")
    ap.add_argument("--out", type=Path, default=Path("docs/img/mlflow_compare.png"))
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        if args.store:
            store, run_ids = args.store, args.runs.split(",")
        else:
            store = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
            os.environ["MLFLOW_TRACKING_URI"] = store
            run_ids = log_two_versions(Path(tmp))
        import mlflow

        exp_id = mlflow.MlflowClient(store).get_run(run_ids[0]).info.experiment_id
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        mlflow_bin = Path(sys.executable).with_name("mlflow")
        server = subprocess.Popen(
            [str(mlflow_bin), "server", "--backend-store-uri", store, "--host", "127.0.0.1", "--port", str(port),
             "--workers", "1", "--default-artifact-root", (Path(tmp) / "artifacts").as_uri()],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        try:
            wait_up(base, server)
            runs = check_runs(base, run_ids)
            url = (f"{base}/#/compare-runs?runs={urllib.parse.quote(json.dumps(run_ids))}"
                   f"&experiments={urllib.parse.quote(json.dumps([exp_id]))}")
            screenshot(url, args.out)
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
    print(json.dumps({"ok": True, "url": url, "screenshot": str(args.out), "runs": runs}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
