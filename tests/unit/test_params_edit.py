from __future__ import annotations

import pytest

from labelcycle.errors import ConfigError
from labelcycle.params.edit import set_value


def test_set_value_rewrites_one_key_in_place_keeping_comments_and_other_keys():
    text = (
        "# top comment\n"
        "ingest:\n"
        "  labels: []   # the allowed label set, in order\n"
        "\n"
        "split:\n"
        "  labels: keep   # another section's key of the same name\n"
    )
    out = set_value(text, "ingest", "labels", ["not", "mild", "very strong"])
    assert out == text.replace("labels: []   #", "labels: [not, mild, very strong]   #", 1)
    added = set_value("split:\n  salt: s\n", "ingest", "labels", ["a", "b"])
    assert added == "split:\n  salt: s\ningest:\n  labels: [a, b]\n"
    with pytest.raises(ConfigError, match=r"could not set ingest\.labels .* set it by hand"):
        set_value("ingest:\n  labels:\n    - a\n    - b\n", "ingest", "labels", ["x", "y"])
