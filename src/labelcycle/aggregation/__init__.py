"""Label aggregation: one label (and a probability per class) per item from many annotators."""

from __future__ import annotations

from labelcycle.aggregation.base import BaseAggregator
from labelcycle.aggregation.majority_vote import MajorityVote

#: every aggregator by its ``--method`` / ``aggregate.method`` name
METHODS: dict[str, type[BaseAggregator]] = {
    MajorityVote.name: MajorityVote,
}
DEFAULT_METHOD = MajorityVote.name


def make_aggregator(method: str, classes: tuple[str, ...] | list[str] | None = None) -> BaseAggregator:
    """The aggregator registered under ``method``."""
    from labelcycle.errors import ConfigError

    try:
        cls = METHODS[method]
    except KeyError:
        raise ConfigError(f"unknown aggregation method {method!r}; choose one of {sorted(METHODS)}") from None
    return cls(classes=classes)
