"""Label aggregation: one label (and a probability per class) per item from many annotators."""

from __future__ import annotations

from labelcycle.aggregation.base import BaseAggregator
from labelcycle.aggregation.dawid_skene import DawidSkene
from labelcycle.aggregation.hierarchical_dawid_skene import HierarchicalDawidSkene
from labelcycle.aggregation.majority_vote import MajorityVote
from labelcycle.aggregation.one_coin import OneCoinDawidSkene
from labelcycle.aggregation.structured_dawid_skene import StructuredDawidSkene
from labelcycle.aggregation.weighted_majority_vote import WeightedMajorityVote

#: every aggregator by its ``--method`` / ``aggregate.method`` name
METHODS: dict[str, type[BaseAggregator]] = {
    cls.name: cls
    for cls in (
        MajorityVote,
        WeightedMajorityVote,
        DawidSkene,
        OneCoinDawidSkene,
        HierarchicalDawidSkene,
        StructuredDawidSkene,
    )
}
#: the same setting on every data set; see benchmarks/results/aggregation.md for the evidence
DEFAULT_METHOD = HierarchicalDawidSkene.name

__all__ = [
    "DEFAULT_METHOD",
    "METHODS",
    "BaseAggregator",
    "DawidSkene",
    "HierarchicalDawidSkene",
    "MajorityVote",
    "OneCoinDawidSkene",
    "StructuredDawidSkene",
    "WeightedMajorityVote",
    "make_aggregator",
]


def make_aggregator(
    method: str, classes: tuple[str, ...] | list[str] | None = None, ties_to_last: bool = False
) -> BaseAggregator:
    """The aggregator registered under ``method``; ``ties_to_last``: ties between labels go to the
    later-listed one (see :func:`~labelcycle.aggregation.base.ties_to_last`)."""
    from labelcycle.errors import ConfigError

    try:
        cls = METHODS[method]
    except KeyError:
        raise ConfigError(f"unknown aggregation method {method!r}; choose one of {sorted(METHODS)}") from None
    aggregator = cls(classes=classes)
    aggregator.ties_to_last = bool(ties_to_last)
    return aggregator
