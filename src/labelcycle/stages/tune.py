"""Stage tune: Optuna search (TPE, pruning) for the quality model; each trial a nested MLflow run."""

from __future__ import annotations

import dataclasses

import optuna

from labelcycle import catalog
from labelcycle.databases import ensure_database, refuse_password
from labelcycle.pipeline import stage_context, write_json
from labelcycle.quality.tuning import make_study, search_for
from labelcycle.tracking.runs import stage_run

STAGE = "tune"


def main() -> None:
    ctx = stage_context()
    params = ctx.params
    p = params.tune
    inputs = ctx.training_inputs()
    train = inputs.rows
    search = search_for(train, params.classes, p, features=params.features)
    digest = train.digest()
    storage = refuse_password(p.storage_url(ctx.root), "tune.storage")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spaces = ("search_space", "text_search_space")
    logged = {
        "tune": {k: v for k, v in dataclasses.asdict(p).items() if k not in spaces},
        "search_space": p.search_space,
        "text_search_space": p.text_search_space,
        "features": dataclasses.asdict(params.features),
    }
    with stage_run(ctx.root, STAGE, logged) as run:
        run.log_training_data(inputs.sample, train.rows, digest, inputs.curated_digest)
        ensure_database(storage)  # a PostgreSQL study database is created if missing
        study = make_study(search.study, storage, p.seed, p.pruning)
        done = sum(
            t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
            for t in study.trials
        )

        def log_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            metrics = {"valid_logloss": trial.value} if trial.value is not None else {}
            if trial.intermediate_values:
                metrics["last_reported_logloss"] = trial.intermediate_values[max(trial.intermediate_values)]
            run.log_child(
                f"trial-{trial.number}",
                trial.params,
                metrics,
                tags={
                    "optuna.trial": trial.number,
                    "optuna.state": trial.state.name,
                    "optuna.study": search.study,
                    "status": "FINISHED" if trial.state.name in ("COMPLETE", "PRUNED") else "FAILED",
                    "best_iteration": trial.user_attrs.get("best_iteration", ""),
                },
            )

        if done < p.n_trials:
            study.optimize(
                search.objective, n_trials=p.n_trials - done, timeout=p.timeout, callbacks=[log_trial]
            )
        best = study.best_trial
        states = [t.state.name for t in study.trials]
        summary = {
            "study": search.study,
            "storage": storage,
            "best_value": best.value,
            "best_trial": best.number,
            "params": best.params,
            "best_iteration": best.user_attrs.get("best_iteration"),
            "n_complete": states.count("COMPLETE"),
            "n_pruned": states.count("PRUNED"),
            "n_failed": states.count("FAIL"),
            "curated_train_digest": digest,
        }
        run.log_metrics(
            {
                "best_valid_logloss": best.value,
                "n_complete": summary["n_complete"],
                "n_pruned": summary["n_pruned"],
            }
        )
        run.log_params({f"best.{k}": v for k, v in best.params.items()})
        run.set_tags({"optuna.study": search.study})
        run.log_dict(summary, "best_params.json")
    write_json(summary, ctx.path(catalog.BEST_PARAMS))
    print(
        f"tune: study {search.study}: best valid log loss {best.value:.4f} (trial {best.number}; "
        f"{summary['n_complete']} complete, {summary['n_pruned']} pruned)"
    )
