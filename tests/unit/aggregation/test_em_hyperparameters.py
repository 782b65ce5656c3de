from __future__ import annotations

import pytest

from labelcycle.aggregation import (
    DawidSkene,
    HierarchicalDawidSkene,
    OneCoinDawidSkene,
    StructuredDawidSkene,
)
from labelcycle.aggregation.hierarchical_dawid_skene import DEFAULT_STRENGTH


def test_each_em_aggregator_keeps_its_own_defaults():
    ds, hds, oc, sds = DawidSkene(), HierarchicalDawidSkene(), OneCoinDawidSkene(), StructuredDawidSkene()
    assert (ds.alpha, ds.support) == (0.01, "all")
    assert (hds.alpha, hds.support, hds.strength) == (1.0, "voted", DEFAULT_STRENGTH)
    assert (oc.alpha, oc.beta, oc.support) == (1.0, 1.0, "all")
    assert (sds.alpha, sds.support, sds.strength) == (1.0, "voted", None)
    assert all(
        (m.max_iter, m.tol, m.prior_alpha, m.classes) == (100, 1e-5, 1.0, None) for m in (ds, hds, oc, sds)
    )


def test_em_aggregator_stores_the_arguments_it_is_given():
    model = StructuredDawidSkene(
        ("a", "b"), max_iter=7, tol=0.1, alpha=2.0, prior_alpha=3.0, strength=5.0, support="all"
    )
    assert (
        model.classes,
        model.max_iter,
        model.tol,
        model.alpha,
        model.prior_alpha,
        model.strength,
        model.support,
    ) == (("a", "b"), 7, 0.1, 2.0, 3.0, 5.0, "all")


def test_one_coin_takes_no_support_argument():
    with pytest.raises(TypeError, match="support"):
        OneCoinDawidSkene(support="voted")


def test_em_aggregators_compare_by_identity():
    assert DawidSkene() != DawidSkene()
