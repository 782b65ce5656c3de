"""PostgreSQL database helpers that need no server (creating and dropping are in tests/team)."""

from __future__ import annotations

import pytest

from labelcycle.databases import ensure_database, is_postgres, masked_url
from labelcycle.errors import ConfigError


@pytest.mark.parametrize(
    "url, expected",
    [
        ("postgresql://u@h/db", True),
        ("postgres://u@h/db", True),
        ("postgresql+psycopg2://u@h/db", True),
        ("sqlite:///mlflow.db", False),
        ("mysql://u@h/db", False),
    ],
)
def test_is_postgres_knows_every_spelling_of_a_postgresql_url(url, expected):
    assert is_postgres(url) is expected


def test_masked_url_hides_the_password_and_keeps_the_rest():
    masked = masked_url("postgresql://alice:s3cret@db.example:5433/mlflow")
    assert "s3cret" not in masked
    assert masked.startswith("postgresql://alice:") and masked.endswith("@db.example:5433/mlflow")


def test_a_url_naming_no_database_is_refused_without_its_password():
    with pytest.raises(ConfigError, match=r"names no database; use postgresql://USER@HOST:PORT/DB") as info:
        ensure_database("postgresql://alice:s3cret@db.example:5432")
    assert "s3cret" not in str(info.value)


def test_a_sqlite_url_needs_no_database_created():
    assert ensure_database("sqlite:///x.db") is False
