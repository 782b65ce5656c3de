"""Versions in words: the params that differ, the production release, what a rollback moved."""

from __future__ import annotations

from pathlib import Path

import yaml
from tests.conftest import sh

from labelcycle import catalog
from labelcycle.versioning.words import describe_changes, params_diff, release_words, rollback_words


def commit_params(root: Path, params: dict) -> str:
    (root / catalog.PARAMS).write_text(yaml.safe_dump(params))
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-qm", "params")
    return sh(root, "git", "rev-parse", "HEAD").stdout.strip()


def test_params_diff_lists_changed_added_and_removed_keys_flattened():
    diff = params_diff(
        {"aggregate": {"method": "mv"}, "sample": {"fraction": 1.0}},
        {"aggregate": {"method": "ds"}, "sample": {"fraction": 1.0, "seed": 3}},
    )
    assert diff == {"aggregate.method": ("mv", "ds"), "sample.seed": (None, 3)}
    assert describe_changes(diff, arrows=True) == "aggregate.method mv -> ds, sample.seed (unset) -> 3"
    assert describe_changes(diff, limit=1) == "aggregate.method=ds, +1 more"


def test_release_words_name_the_method_sample_and_params_changed_since_the_previous_release(tmp_path):
    sh(tmp_path, "git", "init", "-q", "-b", "main")
    v1 = commit_params(tmp_path, {"aggregate": {"method": "dawid_skene"}, "sample": {"fraction": 1.0}})
    v2 = commit_params(tmp_path, {"aggregate": {"method": "dawid_skene"}, "sample": {"fraction": 0.5}})
    words = release_words(tmp_path, "dataset/v2", v2, ("dataset/v1", v1))
    assert words["aggregation_method"] == "dawid_skene" and words["changed"] == {
        "sample.fraction": [1.0, 0.5]
    }
    assert words["lines"][-1] == "  since the previous release dataset/v1: sample.fraction 1.0 -> 0.5"
    assert release_words(tmp_path, "dataset/v1", v1, None)["lines"][-1] == "  the first release"


def test_rollback_words_say_what_moved_and_that_the_workspace_did_not():
    lines = rollback_words(
        ["set alias q@production -> v3 (was v5)"], "dataset/v2", "b" * 40, "a" * 40, "main"
    )
    assert lines[1] == "  - set alias q@production -> v3 (was v5)"
    assert lines[2].startswith(f"not moved: the workspace (git HEAD {'a' * 10} on main, params.yaml")
    assert (
        lines[3]
        == f"to work on dataset/v2's data: git checkout dataset/v2 && dvc checkout (commit {'b' * 10})"
    )
