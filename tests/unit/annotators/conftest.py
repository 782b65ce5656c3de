from __future__ import annotations

import pytest
from annotators_crowd import Crowd, make_crowd


@pytest.fixture(scope="session")
def crowd() -> Crowd:
    return make_crowd()
