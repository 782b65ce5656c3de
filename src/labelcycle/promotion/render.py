"""Plans and the production release as text, for people (pure: strings in, strings out)."""

from __future__ import annotations

from typing import Any

from labelcycle import catalog
from labelcycle.promotion.plan import Plan


def render_plan(plan: Plan, dry_run: bool = False) -> str:
    """The plan as text: candidate, production, every gate with evidence, and what would change."""
    lines = [f"note: {n}" for n in plan.notes]
    if plan.action == "promote":
        cand = plan.candidate
        lines.append(f"candidate:  {cand.describe() if cand else '-'}")
        if cand is not None and cand.metrics:
            shown = []
            for k in dict.fromkeys(x for x in (plan.metric, "accuracy", "macro_f1") if x):
                if k in cand.metrics:
                    ci = cand.intervals.get(k, {})
                    shown.append(
                        f"{k} {cand.metrics[k]:.4f}"
                        + (f" [{ci['ci_low']:.4f}, {ci['ci_high']:.4f}]" if ci else "")
                    )
            lines.append(f"            {', '.join(shown)} on {cand.eval_items or '?'} eval items")
        lines.append(f"production: {plan.production.describe() if plan.production else '(none yet)'}")
        lines.append("gates:")
        for x in plan.gates:
            mark = ("PASS" if x.applies else "n/a ") if x.passed else "FAIL"
            lines.append(f"  [{mark}] {x.name}: {x.evidence}")
    else:
        lines.append(f"production: {plan.production.describe() if plan.production else '(none)'}")
        lines.append(f"restore:    {plan.candidate.describe() if plan.candidate else '(none)'}")
    if plan.noop:
        lines.append(
            f"no-op: {plan.production.release_id if plan.production else 'this release'} is already "
            "production with the same dataset, eval split and model versions; nothing to do"
        )
        return "\n".join(lines)
    head = "would change" if (dry_run or not plan.allowed) else "changes"
    lines.append(f"{head}:")
    lines.extend(f"  - {a.detail}" for a in plan.actions)
    if plan.failed:
        names = ", ".join(x.name for x in plan.failed)
        if plan.force and plan.unforceable:
            fixed = ", ".join(x.name for x in plan.unforceable)
            lines.append(
                f"refused: gate(s) failed: {names}; --force cannot override {fixed} (a release must name a "
                "commit that describes it). Nothing was changed. Commit, then promote again."
            )
        elif plan.force:
            lines.append(f"FORCED past failing gate(s) {names}: reason: {plan.reason}")
        else:
            lines.append(
                f"refused: gate(s) failed: {names}. Nothing was changed. "
                "Fix the cause, or override with --force --reason TEXT (recorded in the audit log)."
            )
    return "\n".join(lines)


def render_status(s: dict[str, Any] | None) -> str:
    """The production release (:func:`~labelcycle.promotion.status.status`) as text."""
    notes = [f"note: {n}" for n in (s or {}).get("notes") or []]
    if s is None or s.get("release") is None:
        return "\n".join([*notes, "no production release yet; promote one with `labelcycle promote`"])
    lines = notes + [
        f"production release {s['release']} (promoted {s['promoted_at']}"
        + (", FORCED" if s["forced"] else "")
        + f"; from {s['source']})"
    ]
    lines.append("models:")
    for m in s["models"]:
        lines.append(
            f"  {m['role']:<8} {m['name']} v{m['version']} (run {m['run_id']}) = {m['alias']}"
            + ("" if m["alias_version"] == m["version"] else f"  [alias now at v{m['alias_version']}!]")
        )
    d = s["dataset"]
    lines.append(
        f"dataset: digest {d['digest']}; git tag {d['git_tag']} -> {(d['git_tag_commit'] or 'MISSING')[:10]} "
        f"(rev {(d['git_rev'] or '?')[:10]})"
    )
    for path, md5 in sorted(d["dvc_hashes"].items()):
        if not path.startswith(f"{catalog.REPORTS}/"):  # data and models; every output's hash: --json
            lines.append(f"  dvc {path}: {md5}")
    e = s["evaluation"]
    lines.append(
        f"metrics on eval split {e['eval_digest']} ({e['eval_items']} items; evaluate run "
        f"{e['evaluate_run_id']}):"
    )
    for k, v in e["metrics"].items():
        ci = f" [{v['ci_low']:.4f}, {v['ci_high']:.4f}]" if "ci_low" in v else ""
        lines.append(f"  {k:<12} {v['value']:.4f}{ci}")
    li = s["lineage"]
    lines.append(
        "lineage: raw batches "
        + (", ".join(li["raw_batches"]) or "?")
        + f" -> {li['raw']['path']} ({li['raw']['dvc_md5']}) -> curated {li['curated']['digest']} "
        f"({li['curated']['dvc_md5']}) -> " + "; ".join(li["models"])
    )
    return "\n".join(lines)
