"""Browser check: two dataset versions side by side in the MLflow UI (headless Debian chromium).

Starts the UI the way a user does (``labelcycle ui``) on a project's store, opens the runs table it prints,
finds the two versions' parent runs, ticks both, presses *Compare*, and checks on the page that every param
that differs between them and both versions' primary metric (``evaluate.primary_metric``) are shown.
Screenshots of the runs table and of the compare page are saved.

    python scripts/mlflow_ui_check.py                                   # two synthetic versions
    python scripts/mlflow_ui_check.py --project DIR --version base --version half  # a real project's

Without --project it logs two small versions (the sample fraction differs) through labelcycle's own
stage runs into a temporary project. Needs ``apt-get install chromium chromium-driver``. Exit code 0 when
every check passed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from labelcycle import catalog  # noqa: E402
from webdriver import Browser  # noqa: E402  (the script's folder is put on the path first)

REPO = Path(__file__).resolve().parents[1]
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@t",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@t",
}
#: the two synthetic versions: name, sample.fraction, macro_f1
SYNTHETIC = (("base", 1.0, 0.7134), ("half", 0.5, 0.6621))


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def log_two_versions(root: Path) -> list[str]:
    """A project with two versions logged by labelcycle's stage runs, as two `dvc exp run`s would; names."""
    import yaml

    (root / ".dvc").mkdir(parents=True)
    for name in (catalog.DVC_YAML, catalog.PARAMS):
        shutil.copy(REPO / name, root / name)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "init"]):
        subprocess.run(
            ["git", *args], cwd=root, env={**os.environ, **GIT_ENV}, check=True, capture_output=True
        )
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / catalog.MLFLOW_DB}"
    from labelcycle.tracking.runs import stage_run

    (root / catalog.REPORTS).mkdir()
    for name, fraction, f1 in SYNTHETIC:
        params = yaml.safe_load((root / catalog.PARAMS).read_text())
        params["sample"]["fraction"] = fraction
        (root / catalog.PARAMS).write_text(yaml.safe_dump(params, sort_keys=False))
        reports = {
            "ingest": {"batches": ["b1"], "tables": {"annotations": {"read": 7000}}},
            "split": {"eval_digest": "e" * 32, "eval_items": 400},
            "curate": {"curated_digest": "c" * 32, "action": "relabel"},
            "sample": {
                "curated_digest": "c" * 32,
                "sample_digest": f"{int(fraction * 100):032d}",
                "items_out": int(2000 * fraction),
            },
            "metrics": {
                "accuracy": f1 + 0.1,
                "macro_f1": f1,
                "eval_items": 400,
                "eval_digest": "e" * 32,
                "ci95": {"macro_f1": {"ci_low": f1 - 0.03, "ci_high": f1 + 0.03}},
                "baseline": {"macro_f1": 0.21, "accuracy": 0.47},
            },
        }
        for stage, data in reports.items():
            (root / catalog.report_path(stage)).write_text(json.dumps(data))
        os.environ.update({"LABELCYCLE_PIPELINE_RUN": f"ui-check-{name}", "DVC_EXP_NAME": name})
        for stage in ("split", "curate", "sample", "evaluate"):
            with stage_run(root, stage, {stage: {"synthetic": True}}):
                pass
    for key in ("LABELCYCLE_PIPELINE_RUN", "DVC_EXP_NAME", "MLFLOW_TRACKING_URI"):
        os.environ.pop(key, None)
    return [name for name, _, _ in SYNTHETIC]


def start_ui(project: Path, port: int, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """``labelcycle ui`` in the project; the process and the runs-table URL it printed."""
    log = Path(tempfile.mkstemp(suffix=".log")[1])
    proc = subprocess.Popen(
        [sys.executable, "-m", "labelcycle.cli", "ui", "--port", str(port)],
        cwd=project,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.time() + 120
    url = None
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"labelcycle ui exited with {proc.returncode}: {log.read_text()[-2000:]}")
        text = log.read_text()
        if url is None and "the project's runs: " in text:
            url = text.split("the project's runs: ", 1)[1].split()[0]
        if url:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
                return proc, url
            except OSError:
                pass
        time.sleep(1)
    raise SystemExit(f"the MLflow UI did not come up on port {port}: {log.read_text()[-2000:]}")


def stop(proc: subprocess.Popen) -> None:
    import signal

    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def api(base: str, path: str, body: dict) -> dict:
    req = urllib.request.Request(
        f"{base}/api/2.0/mlflow/{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def parent_runs(base: str, experiment_id: str, names: list[str]) -> list[dict]:
    """The parent runs named ``names`` (through the REST API), with their datasets, params and metrics."""
    runs = api(
        base,
        "runs/search",
        {
            "experiment_ids": [experiment_id],
            "max_results": 500,
            "filter": "tags.`labelcycle.kind` = 'version'",
        },
    ).get("runs", [])
    by_name = {r["info"]["run_name"]: r for r in runs}
    missing = [n for n in names if n not in by_name]
    assert not missing, f"no parent run named {missing}; parent runs: {sorted(by_name)}"
    out = []
    for name in names:
        run = by_name[name]
        params = {p["key"]: p["value"] for p in run["data"].get("params", [])}
        metrics = {m["key"]: m["value"] for m in run["data"].get("metrics", [])}
        datasets = {
            d["dataset"]["name"]: d["dataset"]["digest"]
            for d in run.get("inputs", {}).get("dataset_inputs", [])
        }
        assert datasets, f"parent run {name}: no dataset inputs"
        out.append(
            {
                "name": name,
                "run_id": run["info"]["run_id"],
                "params": params,
                "metrics": metrics,
                "datasets": datasets,
            }
        )
    return out


#: the cells after the first of the compare page's table row whose first cell is ``arguments[0]``
ROW_JS = """
    for (const tr of document.querySelectorAll('tr')) {
      const cells = Array.from(tr.querySelectorAll('th, td')).map(c => (c.innerText || '').trim());
      if (cells.length > 2 && cells[0] === arguments[0]) return cells.slice(1);
    }
    return null;"""
#: the compare page's metrics are a virtualised grid of names beside a grid of values: the value cells in
#: the row (same ``top``) of the metric named ``arguments[0]``, left to right
METRIC_JS = """
    const a = Array.from(document.querySelectorAll('a[title="Plot chart"]')).find(x => x.innerText.trim() === arguments[0]);
    if (!a) return null;
    const row = a.parentElement, grid = row.closest('[role=grid]');
    for (const g of document.querySelectorAll('[role=grid]')) {
      if (g === grid) continue;
      const cells = Array.from(g.querySelectorAll('div'))
          .filter(c => c.style && c.style.position === 'absolute' && c.style.top === row.style.top);
      if (cells.length) return cells.sort((x, y) => parseFloat(x.style.left) - parseFloat(y.style.left))
          .map(c => c.innerText.trim());
    }
    return null;"""


def click_button(browser: Browser, text: str | None = None, label: str | None = None) -> bool:
    return bool(
        browser.js(
            """
        const b = Array.from(document.querySelectorAll('button')).find(x =>
            (arguments[0] !== null && (x.innerText || '').trim() === arguments[0]) ||
            (arguments[1] !== null && x.getAttribute('aria-label') === arguments[1]));
        if (b) { b.click(); return true; } return false;""",
            text,
            label,
        )
    )


def check_in_browser(runs_url: str, runs: list[dict], out_dir: Path) -> dict:
    """Runs table -> tick both versions -> Compare; the differing params and the primary metric are shown."""
    names = [r["name"] for r in runs]
    primary = runs[0]["params"].get("evaluate.primary_metric", "macro_f1")
    keys = sorted(set(runs[0]["params"]) | set(runs[1]["params"]))
    differing = [k for k in keys if runs[0]["params"].get(k) != runs[1]["params"].get(k)]
    assert differing, "the two versions have the same params"
    with Browser(1500, 2000) as browser:
        browser.get(runs_url)
        browser.wait_for(
            "return arguments[0].every(n => Array.from(document.querySelectorAll('[role=row]'))"
            ".some(r => (r.innerText || '').split('\\n').some(t => t.trim() === n)));",
            f"the runs table to list {names}",
            90,
            names,
        )
        click_button(browser, label="Close")  # the assistant side panel, if shown
        ticked = browser.js(
            """
            const out = [];
            for (const name of arguments[0]) {
              const row = Array.from(document.querySelectorAll('[role=row]'))
                  .find(r => (r.innerText || '').split('\\n').some(t => t.trim() === name) && r.querySelector('input[type=checkbox]'));
              if (row) { row.querySelector('input[type=checkbox]').click(); out.push(name); }
            }
            return out;""",
            names,
        )
        assert ticked == names, f"could not tick {names} in the runs table (ticked {ticked})"
        browser.wait_for(
            "return Array.from(document.querySelectorAll('button')).some(x => x.innerText.trim() === 'Compare');",
            "the Compare button",
        )
        runs_png = browser.screenshot(out_dir / "mlflow_runs.png")
        assert click_button(browser, text="Compare")
        browser.wait_for(
            "return location.href.includes('compare-runs') && "
            "document.body.innerText.includes('Show diff only');",
            "the compare page",
            90,
        )
        click_button(browser, label="Parameters - Show diff only")
        time.sleep(1)
        shown_params = {}
        for key in differing:
            cells = browser.wait_for(ROW_JS, f"param {key} on the compare page", 30, key)
            expected = [r["params"].get(key, "") for r in runs]
            assert [c.strip() for c in cells[:2]] == expected, (
                f"param {key}: page shows {cells}, runs have {expected}"
            )
            shown_params[key] = cells[:2]
        click_button(browser, label="Metrics - Show diff only")  # the grid renders the rows in view only
        metric_cells = browser.wait_for(
            METRIC_JS, f"the primary metric {primary} on the compare page", 30, primary
        )
        values = [r["metrics"][primary] for r in runs]
        for cell, value in zip(metric_cells, values, strict=False):
            assert abs(float(cell.replace(",", "")) - value) < 5e-4, (
                f"{primary}: page shows {metric_cells}, runs have {values}"
            )
        browser.js("""const v = Array.from(document.querySelectorAll('*')).find(e => e.children.length === 0 &&
                          (e.innerText || '').trim() === 'Run details'); if (v) v.scrollIntoView();""")
        time.sleep(1)
        compare_png = browser.screenshot(out_dir / "mlflow_compare.png")
        url = browser.js("return location.href;")
    for png in (runs_png, compare_png):
        assert png.stat().st_size > 10_000, f"the screenshot {png} is blank"
    return {
        "compare_url": url,
        "differing_params": shown_params,
        "primary_metric": {primary: metric_cells[:2]},
        "screenshots": [str(runs_png), str(compare_png)],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--project", type=Path, default=None, help="a project whose store holds the versions")
    ap.add_argument(
        "--version", action="append", default=[], help="a parent run's name (twice, with --project)"
    )
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "img", help="folder for the screenshots")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        if args.project:
            project, names = args.project.resolve(), args.version
            if len(names) != 2:
                ap.error("--project needs two --version NAME")
        else:
            project = Path(tmp) / "proj"
            names = log_two_versions(project)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")])),
        }
        if not os.environ.get("MLFLOW_TRACKING_URI", "").startswith("http"):
            env.pop("MLFLOW_TRACKING_URI", None)
            env["MLFLOW_TRACKING_URI"] = f"sqlite:///{project / catalog.MLFLOW_DB}"
        port = free_port()
        proc, runs_url = start_ui(project, port, env)
        try:
            parsed = urllib.parse.urlparse(runs_url)
            assert parsed.fragment.startswith("/experiments/") and parsed.fragment.endswith("/runs"), runs_url
            base = f"{parsed.scheme}://{parsed.netloc}"
            runs = parent_runs(base, parsed.fragment.split("/")[2], names)
            result = check_in_browser(runs_url, runs, args.out)
        finally:
            stop(proc)
    print(json.dumps({"ok": True, "runs_url": runs_url, **result}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
