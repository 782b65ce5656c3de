"""Stage annotators: annotator profiles, spammers, drift, agreement and root causes (offline HTML report).

Separate from ``aggregate`` so that curation never waits for the analytics, and so that changing an
analytics threshold reruns only this stage.
"""

from __future__ import annotations

import dataclasses

from labelcycle import catalog, schema
from labelcycle.aggregation import make_aggregator
from labelcycle.aggregation.base import ties_to_last
from labelcycle.annotators import analyse_annotators, render_report
from labelcycle.annotators import self_agreement as sa
from labelcycle.annotators._common import consensus_of
from labelcycle.annotators.profiles import severity_bias
from labelcycle.pipeline import stage_context, write_json, write_parquet, write_text
from labelcycle.tracking.runs import stage_run

STAGE = "annotators"


def main() -> None:
    ctx = stage_context()
    p = ctx.params.annotators
    method, classes = ctx.params.aggregate.method, ctx.params.classes
    ordinal, tie_break = ctx.params.ingest.ordinal, ctx.params.ingest.tie_break
    ties = ties_to_last(tie_break, ordinal)
    # descriptive analytics only (nothing here trains a model), so all gold is used, eval split included
    annotations, items, gold, repeats = ctx.read_all(
        catalog.ANNOTATIONS, catalog.ITEMS, catalog.GOLD, catalog.REPEATS
    )
    aggregator = make_aggregator(method, classes=classes, ties_to_last=ties).fit(annotations)
    analysis = analyse_annotators(
        annotations,
        aggregator,
        items=items if items.shape[1] > 1 else None,
        gold=gold if len(gold) else None,
        params=p,
    )
    selfagree = sa.self_agreement(annotations, repeats)
    analysis = dataclasses.replace(analysis, table=sa.with_self_agreement(analysis.table, selfagree))
    flags: dict[str, list[str]] = {}
    if ordinal:  # who over-flags and who under-flags relative to the consensus
        bias = severity_bias(annotations, consensus_of(aggregator), classes)
        table = analysis.table.merge(bias, on=schema.ANNOTATOR_ID, how="left")
        table["flags"] = table["flags"].fillna("")
        analysis = dataclasses.replace(analysis, table=table)
        flags = {
            f"{kind}_flaggers": bias.loc[bias["flags"] == kind, schema.ANNOTATOR_ID].tolist()
            for kind in ("over", "under")
        }
    write_parquet(analysis.table, ctx.path(catalog.ANNOTATORS_TABLE))
    write_parquet(analysis.root_causes, ctx.path(catalog.ROOT_CAUSES))
    write_text(render_report(analysis, title=f"Annotators ({method})"), ctx.path(catalog.ANNOTATORS_HTML))
    agreement = {
        k: v for k, v in analysis.agreement.items() if isinstance(v, int | float) and not isinstance(v, bool)
    }
    top = analysis.root_causes["finding"].head(3).tolist() if len(analysis.root_causes) else []
    write_json(
        {
            "method": method,
            "spammers": analysis.spammers,
            "top_root_causes": top,
            **flags,
            **agreement,
            "self_agreement": sa.summary(selfagree),
        },
        ctx.path(catalog.ANNOTATORS_REPORT),
    )
    logged = {
        STAGE: dataclasses.asdict(p),
        "aggregate": {"method": method},
        "ingest": {"ordinal": ordinal, "tie_break": tie_break},
    }
    with stage_run(ctx.root, STAGE, logged) as run:
        run.set_tags({"spammers": ",".join(analysis.spammers)[:4000], "aggregate.method": method})
        run.log_metrics({f"agreement.{k}": v for k, v in agreement.items()})
        totals = {k: v for k, v in sa.summary(selfagree).items() if v is not None}
        run.log_metrics({f"self_agreement.{k}": v for k, v in totals.items()})
        run.log_table(analysis.table, "annotators.parquet")
        run.log_table(analysis.table, "annotators.csv")
        run.log_table(analysis.root_causes, "root_causes.csv")
        run.log_artifact(ctx.path(catalog.ANNOTATORS_HTML))
        run.log_dvc_hashes(
            [catalog.ANNOTATIONS, catalog.ITEMS, catalog.GOLD],
            [catalog.ANNOTATORS_TABLE, catalog.ROOT_CAUSES],
        )
    print(
        f"annotators: {len(analysis.table)} annotators; spammers flagged: {len(analysis.spammers)}; "
        f"top root cause: {top[0] if top else 'none'}"
    )
    print(f"annotators: {sa.describe(selfagree)}")
    for kind, names in flags.items():
        shown = ", ".join(names[:10]) + (f" (+{len(names) - 10} more)" if len(names) > 10 else "")
        print(f"annotators: {kind.replace('_', '-')} relative to the consensus: {shown or 'none'}")
