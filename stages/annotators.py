"""Stage annotators: annotator profiles, spammers, drift, agreement and root causes (offline HTML report).

Separate from ``aggregate`` so that curation never waits for the analytics, and so that changing an
analytics threshold reruns only this stage.
"""

from __future__ import annotations

from labelcycle.aggregation import make_aggregator
from labelcycle.annotators import AnalysisParams, ProfileParams, analyse_annotators, render_report
from labelcycle.params import AggregateParams, AnnotatorsParams, IngestParams
from labelcycle.pipeline import (
    project_root,
    read_parquet,
    run_stage,
    stage_params,
    write_json,
    write_parquet,
    write_text,
)
from labelcycle.tracking.runs import stage_run

STAGE = "annotators"


def main() -> None:
    root = project_root()
    p = stage_params(AnnotatorsParams, STAGE, root)
    method = stage_params(AggregateParams, "aggregate", root).method
    classes = stage_params(IngestParams, "ingest", root).labels
    annotations = read_parquet(root / "data/interim/annotations.parquet")
    items = read_parquet(root / "data/interim/items.parquet")
    # descriptive analytics only (nothing here trains a model), so all gold is used, eval split included
    gold = read_parquet(root / "data/interim/gold.parquet")
    aggregator = make_aggregator(method, classes=classes).fit(annotations)
    settings = AnalysisParams(
        profile=ProfileParams(spammer_threshold=p.spammer_threshold, min_labels=p.min_labels, fast_ratio=p.fast_ratio)
    )
    analysis = analyse_annotators(
        annotations,
        aggregator,
        items=items if items.shape[1] > 1 else None,
        gold=gold if len(gold) else None,
        params=settings,
    )
    write_parquet(analysis.table, root / "reports/annotators.parquet")
    write_parquet(analysis.root_causes, root / "reports/root_causes.parquet")
    write_text(render_report(analysis, title=f"Annotators ({method})"), root / "reports/annotators.html")
    agreement = {
        k: v for k, v in analysis.agreement.items() if isinstance(v, int | float) and not isinstance(v, bool)
    }
    top = analysis.root_causes["finding"].head(3).tolist() if len(analysis.root_causes) else []
    write_json(
        {"method": method, "spammers": analysis.spammers, "top_root_causes": top, **agreement},
        root / "reports/annotators.json",
    )
    with stage_run(root, STAGE, {STAGE: vars(p), "aggregate": {"method": method}}) as run:
        run.set_tags({"spammers": ",".join(analysis.spammers)[:4000], "aggregate.method": method})
        run.log_metrics({f"agreement.{k}": v for k, v in agreement.items()})
        run.log_table(analysis.table, "annotators.parquet")
        run.log_table(analysis.table, "annotators.csv")
        run.log_table(analysis.root_causes, "root_causes.csv")
        run.log_artifact(root / "reports/annotators.html")
        run.log_dvc_hashes(
            ["data/interim/annotations.parquet", "data/interim/items.parquet", "data/interim/gold.parquet"],
            ["reports/annotators.parquet", "reports/root_causes.parquet"],
        )
    print(
        f"annotators: {len(analysis.table)} annotators; spammers flagged: {len(analysis.spammers)}; "
        f"top root cause: {top[0] if top else 'none'}"
    )


if __name__ == "__main__":
    run_stage(main)
