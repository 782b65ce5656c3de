"""Version commands: ``experiments`` (every dataset version side by side) and ``compare`` (two of them)."""

from __future__ import annotations

import atexit
import contextlib
import gc
import json
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import pandas as pd

from labelcycle.cli.options import count_option, find_project, repo_option
from labelcycle.params import EvaluateParams
from labelcycle.versioning.diff import GROUP_COLUMNS


def print_table(df: pd.DataFrame) -> None:
    """A plain aligned text table (floats to 4 decimals, missing values blank); ``(none)`` when empty."""
    if df.empty:
        click.echo("(none)")
        return
    shown = df.copy()
    for col in shown.columns:
        if pd.api.types.is_float_dtype(shown[col]):
            shown[col] = shown[col].map(lambda v: "" if pd.isna(v) else f"{v:.4f}")
    shown = shown.fillna("").astype(str)
    widths = {c: max(len(str(c)), *(len(v) for v in shown[c])) for c in shown.columns}
    click.echo("  ".join(str(c).ljust(widths[c]) for c in shown.columns))
    click.echo("  ".join("-" * widths[c] for c in shown.columns))
    for _, row in shown.iterrows():
        click.echo("  ".join(row[c].ljust(widths[c]) for c in shown.columns))


def _root(repo: Path | None) -> tuple[Path, Path | None]:
    """The folder versions are resolved in (the project, else ``--repo`` or the current folder: folder
    versions work outside a project) and the project itself (None outside one)."""
    project = find_project(repo)
    return project or (repo or Path.cwd()).resolve(), project


@click.command()
@click.argument("versions", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print the versions as a JSON list.")
@repo_option()
def experiments(versions: tuple[str, ...], as_json: bool, repo: Path | None) -> None:
    """List dataset versions (MLflow versions and their parent runs, DVC experiments, the workspace).

    Any value of the version column can be passed to `labelcycle compare` and `labelcycle promote`.
    VERSIONS (optional) narrows the list to those versions, named in the same way: workspace, a git
    revision or tag, a DVC experiment name or an MLflow run id.
    """
    from labelcycle.errors import TrackingError
    from labelcycle.tracking.versions import pipeline_versions, resolve_version, runs_for
    from labelcycle.versioning.versions import select_rows, shown, versions_table

    root, _ = _root(repo)
    try:
        runs = pipeline_versions(root)
    except TrackingError as exc:
        click.echo(f"warning: MLflow runs not listed: {exc}", err=True)
        runs = pd.DataFrame()
    table = versions_table(root, runs)
    if versions:
        wanted = []
        for spec in versions:
            v = resolve_version(root, spec)
            wanted.append(runs_for(root, v) if v.kind != "mlflow_run" and len(runs) else v)
        table = select_rows(table, wanted)
    if as_json:
        click.echo(json.dumps(json.loads(table.to_json(orient="records")), indent=2))
        return
    print_table(shown(table))


#: GIL switch interval while MLflow imports beside the comparison: the import is pure Python and keeps
#: the GIL; at Python's default (5 ms) the main thread waits that long after each numpy call. The paired
#: bootstrap's ranking part, which runs while MLflow imports, makes some 10,000 numpy calls that give the
#: GIL up; 0.1 ms (0.5 ms before) takes 0.4-0.6 CPU-s off a logged 100k-item compare here
OVERLAP_SWITCH_INTERVAL_S = 0.0001


#: the youngest generation's collection threshold while compare runs (Python's default is 700): importing
#: MLflow makes about 260,000 objects, all of them kept, and the collections it set off walked them again
#: and again (0.56 s of collections in a logged 100k-item compare, 0.16 s with this; the other threads
#: wait on the GIL meanwhile)
COMPARE_GC_THRESHOLD = 50_000


@contextmanager
def _few_collections() -> Iterator[None]:
    """Fewer cyclic garbage collections while compare runs, none over what was loaded before it.

    What is already loaded (the imported modules) is frozen out of the collector, the youngest
    generation's threshold is raised to :data:`COMPARE_GC_THRESHOLD`, and both are restored on the way
    out. The comparison's large data is NumPy / Arrow buffers, freed by reference counting either way.
    At interpreter exit whatever is alive is frozen too (:func:`gc.freeze`, registered once), so the
    final collection does not walk MLflow's objects again (about 0.5 s): exit still runs every atexit
    handler and closes every file and the MLflow store as usual.
    """
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(COMPARE_GC_THRESHOLD, *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()
        _freeze_at_exit()


_exit_hook: list[bool] = []


def _freeze_at_exit() -> None:
    if not _exit_hook:
        _exit_hook.append(True)
        atexit.register(gc.freeze)  # last registered, so run first: the others then run as always


class _Tracking:
    """The MLflow side of ``compare``, done on a thread while the main thread loads the versions and runs
    the bootstrap (whose numpy work releases the GIL): import MLflow and its SQL store (about 2 s, most of
    a logged compare's fixed cost) and, when the comparison is to be logged, GitPython (which MLflow imports
    to tag the run with the commit) and the runs that made each version
    (:func:`~labelcycle.tracking.versions.runs_for`, which needs only the versions).

    The main thread's own later imports are done first (the HTML plots' matplotlib), so the two threads
    never import the same modules at once. :meth:`wait` joins the thread, restores the switch interval and
    gives the linked versions, or raises what the thread raised.
    """

    def __init__(self, root: Path, versions: list, html_out: Path | None, link: bool) -> None:
        if html_out is not None:
            from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
            from matplotlib.figure import Figure  # noqa: F401
        self._root, self._versions, self._link = root, versions, link
        self._linked: tuple | None = None
        self._error: BaseException | None = None
        self._interval = sys.getswitchinterval()
        sys.setswitchinterval(OVERLAP_SWITCH_INTERVAL_S)
        self._thread = threading.Thread(target=self._work, name="labelcycle-tracking", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        try:
            import mlflow  # noqa: F401
            import mlflow.store.tracking.sqlalchemy_store  # noqa: F401  # the local SQLite store's

            if self._link:
                # GitPython too (0.1 s), unless the main thread may import it meanwhile: DVC reads the
                # versions that are a git revision or an experiment (and its git backend imports it)
                if all(v.path is not None or v.kind == "mlflow_run" for v in self._versions):
                    with contextlib.suppress(ImportError):
                        import git  # noqa: F401
                from labelcycle.tracking.versions import runs_for

                self._linked = tuple(
                    runs_for(self._root, v) if v.kind != "mlflow_run" else v for v in self._versions
                )
        except BaseException as exc:  # noqa: BLE001  # raised in the main thread by wait()
            self._error = exc

    def wait(self, reraise: bool = True) -> tuple | None:
        self._thread.join()
        sys.setswitchinterval(self._interval)
        if self._error is not None and reraise:
            raise self._error
        return self._linked


@click.command()
@click.argument("base")
@click.argument("candidate")
@click.option("--json", "as_json", is_flag=True, help="Print the full comparison as one JSON object.")
@click.option(
    "--html",
    "html_out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write an offline HTML report (plots inlined) to this file.",
)
@click.option(
    "--metric",
    "primary_metric",
    default=None,
    help="Metric the verdict is made on (default: the project's evaluate.primary_metric, else "
    f"{EvaluateParams().primary_metric}).",
)
@count_option("--n-boot", low=10, default=1000, help="Paired bootstrap resamples.")
@count_option(
    "--n-boot-auc",
    low=10,
    default=200,
    help="Resamples for ROC-AUC / PR-AUC (the costly metrics on large eval sets).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--no-log", is_flag=True, help="Do not log the comparison to MLflow.")
@repo_option()
def compare(
    base, candidate, as_json, html_out, primary_metric, n_boot, n_boot_auc, seed, no_log, repo
) -> None:
    """Compare two dataset versions by downstream impact on the frozen gold eval split.

    BASE and CANDIDATE: `workspace`, a project folder, a DVC experiment name, a git revision or tag, or an
    MLflow run id (any stage run of a pipeline run). Uses the saved per-item predictions (no retraining).
    """
    from threadpoolctl import threadpool_limits  # scikit-learn's dependency; 5 ms to import

    # one BLAS thread: compare runs its own threads (overall and slice bootstraps, data diffs, MLflow), and
    # OpenBLAS's extra thread spun on a core they need (a third more CPU per product). The numbers are those
    # of a one-thread BLAS on every machine: the bootstrap's products are the same bits with any thread
    # count, but a one-row point product (the ECE's) summed in an order set by the core count before
    with _few_collections(), threadpool_limits(limits=1, user_api="blas"):
        _compare(base, candidate, as_json, html_out, primary_metric, n_boot, n_boot_auc, seed, no_log, repo)


def _compare(
    base, candidate, as_json, html_out, primary_metric, n_boot, n_boot_auc, seed, no_log, repo
) -> None:
    from labelcycle.comparison import compare_data, comparison_record
    from labelcycle.comparison_html import render_html
    from labelcycle.evaluation.metrics import SUMMARY_METRICS
    from labelcycle.params import project_params
    from labelcycle.tracking.versions import load_version, resolve_version

    root, project = _root(repo)
    evaluate = project_params(project).evaluate
    metric = primary_metric or evaluate.primary_metric
    versions = [resolve_version(root, spec) for spec in (base, candidate)]
    needs_mlflow = not no_log or any(v.kind == "mlflow_run" for v in versions)
    tracking = _Tracking(root, versions, html_out, link=not no_log) if needs_mlflow else None
    try:
        data = [load_version(root, v) for v in versions]
        report = compare_data(
            data[0],
            data[1],
            n_boot=n_boot,
            n_boot_rank=n_boot_auc,
            seed=seed,
            primary_metric=metric,
            positive_labels=evaluate.positive_labels,
            flag_threshold=evaluate.flag_threshold,
        )
        page = render_html(report) if html_out is not None else None
        if page is not None:
            html_out.parent.mkdir(parents=True, exist_ok=True)
            html_out.write_text(page)
        out = report.to_dict()
    except BaseException:
        if tracking is not None:
            tracking.wait(reraise=False)  # the comparison's own error is the one to report
        raise
    linked = tracking.wait() if tracking is not None else None
    if linked is not None:
        from labelcycle.tracking.versions import log_comparison

        out["base"], out["candidate"] = linked[0].describe(), linked[1].describe()
        tags, metrics = comparison_record(report, linked)
        out["mlflow_run_id"] = log_comparison(root, out, tags, metrics, page)
    if as_json:
        click.echo(json.dumps(out, indent=2, default=str))
        return
    diff = report.dataset_diff
    if diff is not None:
        click.echo(
            f"dataset diff: {diff.items_added} items added, {diff.items_removed} removed, "
            f"{diff.labels_changed} labels changed (of {diff.items_common} common items)"
        )
    t = report.training_diff
    if t is not None:
        click.echo(
            f"training data diff: {t.items_added} items added, {t.items_removed} removed, {t.labels_changed} "
            f"relabelled (trained on {t.items_base} -> {t.items_candidate} items)"
        )
    if report.attribution is not None and len(report.attribution):
        click.echo("by label: training changes and the eval accuracy (recall) delta on that gold label:")
        by_label = report.attribution[report.attribution["group_column"] == "label"]
        print_table(
            by_label[[*GROUP_COLUMNS[1:], "eval_items", "delta", "ci_low", "ci_high"]].rename(
                columns={"group_value": "label"}
            )
        )
    click.echo(f"paired on {report.paired.n} gold eval items ({report.paired.n_boot} resamples):")
    table = report.paired.table[report.paired.table["metric"].isin(SUMMARY_METRICS)]
    print_table(table[["metric", "base", "candidate", "delta", "ci_low", "ci_high", "p_value"]])
    click.echo(f"verdict ({metric}): {report.verdict}")
    for note in report.notes:
        if "circular gold" in note:
            click.echo(f"warning: {note}")
    if html_out is not None:
        click.echo(f"report: {html_out}")
    if "mlflow_run_id" in out:
        click.echo(f"logged to MLflow as run {out['mlflow_run_id']}")


COMMANDS = [experiments, compare]
