from __future__ import annotations

import pandas as pd

from labelcycle.split import split_gold


def test_split_is_disjoint_complete_and_stable_when_gold_grows():
    gold = pd.DataFrame({"item_id": [f"g{i}" for i in range(500)], "label": ["ok"] * 500})
    ev, tr = split_gold(gold, 0.6, "salt")
    assert set(ev.item_id).isdisjoint(tr.item_id) and len(ev) + len(tr) == 500
    assert 0.5 < len(ev) / 500 < 0.7
    more = pd.concat([gold, pd.DataFrame({"item_id": ["new1", "new2"], "label": ["ok", "ok"]})])
    ev2, _ = split_gold(more.sample(frac=1, random_state=0), 0.6, "salt")
    assert set(ev.item_id) <= set(ev2.item_id)
    assert set(ev2.item_id) - set(ev.item_id) <= {"new1", "new2"}
