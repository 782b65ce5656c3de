"""Fixtures of the team tests (helpers live in teamkit.py)."""

from __future__ import annotations

import pytest
from teamkit import pg_server_fixture, pg_url_fixture

pg_url = pytest.fixture(pg_url_fixture)
pg_server = pytest.fixture(pg_server_fixture)
