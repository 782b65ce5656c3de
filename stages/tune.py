"""Stage tune: Optuna search (TPE, pruning) for the quality model; each trial a nested MLflow run."""

from __future__ import annotations

import optuna

from labelcycle import schema
from labelcycle.curation import N_ANNOTATIONS
from labelcycle.params import IngestParams, TuneParams
from labelcycle.pipeline import project_root, read_parquet, run_stage, stage_params, write_json
from labelcycle.quality.tuning import make_objective, make_study, parse_space, prepare_tuning_data, study_name
from labelcycle.tracking.runs import stage_run
from labelcycle.versioning.digest import table_digest

STAGE = "tune"
NOT_FEATURES = {schema.LABEL, schema.CONFIDENCE, N_ANNOTATIONS}


def main() -> None:
    root = project_root()
    p = stage_params(TuneParams, STAGE, root)
    classes = stage_params(IngestParams, "ingest", root).labels
    dims = parse_space(p.search_space)
    dataset = read_parquet(root / "data/curated/train_sample.parquet")
    eval_split = read_parquet(root / "data/split/eval.parquet")
    rows = dataset[~dataset[schema.ITEM_ID].isin(eval_split[schema.ITEM_ID])].reset_index(drop=True)
    items = rows[[c for c in rows.columns if c not in NOT_FEATURES]]
    data = prepare_tuning_data(items, rows[schema.LABEL], classes, p.valid_fraction, p.seed)
    digest = table_digest(rows)
    name = study_name(p.study, digest, p.search_space, p.seed)
    storage = p.storage or f"sqlite:///{root / 'optuna.db'}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with stage_run(root, STAGE, {"tune": {k: v for k, v in vars(p).items() if k != "search_space"},
                                 "search_space": p.search_space}) as run:
        run.log_dataset(rows, "curated_train", "training", digest, "data/curated/train_sample.parquet")
        study = make_study(name, storage, p.seed, p.pruning)
        done = sum(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for t in study.trials)

        def log_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            metrics = {"valid_logloss": trial.value} if trial.value is not None else {}
            if trial.intermediate_values:
                metrics["last_reported_logloss"] = trial.intermediate_values[max(trial.intermediate_values)]
            run.log_child(
                f"trial-{trial.number}", trial.params, metrics,
                tags={"optuna.trial": trial.number, "optuna.state": trial.state.name, "optuna.study": name,
                      "status": "FINISHED" if trial.state.name in ("COMPLETE", "PRUNED") else "FAILED",
                      "best_iteration": trial.user_attrs.get("best_iteration", "")},
            )

        objective = make_objective(data, dims, n_estimators=p.n_estimators,
                                   early_stopping_rounds=p.early_stopping_rounds, n_jobs=p.n_jobs, seed=p.seed,
                                   pruning=p.pruning)
        if done < p.n_trials:
            study.optimize(objective, n_trials=p.n_trials - done, timeout=p.timeout, callbacks=[log_trial])
        best = study.best_trial
        states = [t.state.name for t in study.trials]
        summary = {
            "study": name, "storage": storage.split("@")[-1], "best_value": best.value, "best_trial": best.number,
            "params": best.params, "best_iteration": best.user_attrs.get("best_iteration"),
            "n_complete": states.count("COMPLETE"), "n_pruned": states.count("PRUNED"), "n_failed": states.count("FAIL"),
            "curated_train_digest": digest,
        }
        run.log_metrics({"best_valid_logloss": best.value, "n_complete": summary["n_complete"],
                         "n_pruned": summary["n_pruned"]})
        run.log_params({f"best.{k}": v for k, v in best.params.items()})
        run.set_tags({"optuna.study": name})
        run.log_dict(summary, "best_params.json")
    write_json(summary, root / "reports/best_params.json")
    print(f"tune: study {name}: best valid log loss {best.value:.4f} (trial {best.number}; "
          f"{summary['n_complete']} complete, {summary['n_pruned']} pruned)")


if __name__ == "__main__":
    run_stage(main)
