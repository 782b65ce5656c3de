"""Release commands: ``promote``, ``status``, ``rollback`` (the production release, behind evidence gates)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from labelcycle.cli.options import repo_option
from labelcycle.errors import ConfigError, PromotionRefusedError


@click.command()
@click.argument("version", required=False)
@click.option("--dry-run", is_flag=True, help="Print the plan (gates, evidence, changes) and change nothing.")
@click.option(
    "--force", is_flag=True, help="Promote although gates failed (needs --reason; recorded as forced)."
)
@click.option("--reason", default=None, help="Why: recorded in the audit record (required with --force).")
@repo_option()
def promote(version, dry_run, force, reason, repo) -> None:
    """Make a release (curated dataset + its models + their evaluation) production, behind evidence gates.

    VERSION defaults to the workspace (HEAD, dvc.lock, reports/); like `compare` it may be a git revision
    or tag, a DVC experiment name, or an MLflow run id (a version's parent run or any of its stage runs;
    `labelcycle experiments` lists them). The plan is computed and printed first; it is carried out only
    when every gate passes (or with --force --reason), and never with --dry-run.
    """
    from labelcycle.promotion import plan_promotion, render_plan
    from labelcycle.versioning.dvc import find_root

    if force and not (reason and reason.strip()):
        raise ConfigError(
            "--force needs --reason TEXT: say why the failing gates may be overridden (it is audited)"
        )
    plan, ctx = plan_promotion(find_root(repo), version, force=force, reason=reason)
    click.echo(render_plan(plan, dry_run=dry_run))
    if plan.noop:
        return
    if not plan.allowed:
        names = ", ".join(g.name for g in plan.failed)
        raise PromotionRefusedError(f"promotion refused: gate(s) {names} failed; nothing was changed")
    _carry_out(
        plan,
        ctx,
        dry_run,
        lambda rel, records: (
            f"promoted {rel.release_id if rel else ''}"
            + (" (FORCED)" if plan.failed else "")
            + f"; release record run {records.get('release_record')}, audit record run "
            f"{records.get('audit_record')}"
        ),
    )


def _carry_out(plan, ctx, dry_run: bool, done: Callable[[Any, dict[str, str]], str]) -> dict[str, str] | None:
    """Execute the plan and print ``done(candidate, records)``, or say that a dry run changed nothing (None)."""
    from labelcycle.promotion import execute

    if dry_run:
        click.echo("dry run: nothing was changed")
        return None
    records = execute(plan, ctx)
    click.echo(done(plan.candidate, records))
    return records


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@repo_option()
def status(as_json, repo) -> None:
    """The production release: models, dataset version, metrics with intervals, lineage."""
    from labelcycle.promotion import render_status
    from labelcycle.promotion import status as release_status
    from labelcycle.versioning.dvc import find_root

    root = find_root(repo)
    s = release_status(root)
    if s is not None:
        s["version"] = _release_words(root, s)
    click.echo(json.dumps(s, indent=2, sort_keys=True, default=str) if as_json else render_status(s))
    if s is not None and not as_json:
        click.echo("\n".join(s["version"]["lines"]))


def _release_words(root, s: dict) -> dict:
    """The production release in words (:func:`~labelcycle.versioning.versions.release_words`)."""
    from labelcycle.errors import LabelcycleError
    from labelcycle.promotion.release import RELEASE_ID_PREFIX, release_number
    from labelcycle.tracking.versions import resolve_run
    from labelcycle.versioning import git
    from labelcycle.versioning.words import release_words

    rid = s["release"]
    number = release_number(rid) or 0
    earlier = sorted(
        (
            (release_number(t) or 0, t, c)
            for t, c in git.tags(root, RELEASE_ID_PREFIX).items()
            if (release_number(t) or 0) < number
        ),
        reverse=True,
    )
    previous = (earlier[0][1], earlier[0][2]) if earlier else None
    evaluate = (s.get("evaluation") or {}).get("evaluate_run_id")
    try:
        parent = resolve_run(root, evaluate) if evaluate else None
    except LabelcycleError:
        parent = None
    return release_words(root, rid, (s.get("dataset") or {}).get("git_rev"), previous, parent)


@click.command()
@click.option("--dry-run", is_flag=True, help="Print what would be restored and change nothing.")
@click.option("--reason", default=None, help="Why: recorded in the audit record.")
@repo_option()
def rollback(dry_run, reason, repo) -> None:
    """Restore the previous production release exactly (aliases, model tags, git tags); audited."""
    from labelcycle.promotion import plan_rollback, render_plan
    from labelcycle.versioning.dvc import find_root

    plan, ctx = plan_rollback(find_root(repo), reason)
    click.echo(render_plan(plan, dry_run=dry_run))
    records = _carry_out(
        plan,
        ctx,
        dry_run,
        lambda rel, records: (
            f"rolled back to {rel.release_id if rel else '?'}; audit record run {records.get('audit_record')}"
        ),
    )
    if records is None:
        return
    from labelcycle.versioning import git
    from labelcycle.versioning.words import rollback_words

    root, restored = find_root(repo), plan.candidate
    moved = [a.detail for a in plan.actions]
    click.echo(
        "\n".join(
            rollback_words(
                moved,
                restored.release_id if restored else None,
                restored.git_rev if restored else None,
                git.head_commit(root),
                git.branch(root),
            )
        )
    )


COMMANDS = [promote, status, rollback]
