"""PostgreSQL databases behind team services (MLflow's backend store, Optuna's study storage).

Creates a missing database before MLflow or Optuna create their tables in it, and drops throw-away
ones; SQLite files need neither (they are created on first use).
"""

from __future__ import annotations

from labelcycle.errors import ConfigError, TrackingError
from labelcycle.masking import has_secret, mask


def is_postgres(url: str) -> bool:
    """Whether ``url`` names a PostgreSQL database (``postgresql://``, ``postgres://``, ``postgresql+driver://``)."""
    return url.split(":", 1)[0].split("+", 1)[0] in ("postgresql", "postgres")


def ensure_database(url: str) -> bool:
    """Create the PostgreSQL database named in ``url`` when it is missing; returns True if created.

    Connects to the server's ``postgres`` maintenance database with the same credentials. A URL that is
    not PostgreSQL is left alone (returns False).

    Raises:
        ConfigError: the URL cannot be parsed or names no database.
        TrackingError: the PostgreSQL server cannot be reached or refuses to create the database.
    """
    if not is_postgres(url):
        return False
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    except Exception as exc:
        raise ConfigError(
            f"{masked_url(url)}: not a database URL ({exc}); use postgresql://USER@HOST:PORT/DB"
        ) from None
    name = parsed.database
    if not name:
        raise ConfigError(f"{masked_url(url)}: names no database; use postgresql://USER@HOST:PORT/DB")
    admin = sa.create_engine(
        parsed.set(database="postgres"), isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}
    )
    where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            ).scalar()
            if exists:
                return False
            quoted = conn.dialect.identifier_preparer.quote_identifier(name)
            try:
                conn.execute(sa.text(f"CREATE DATABASE {quoted}"))
            except sa.exc.SQLAlchemyError as exc:
                if "already exists" in str(exc) or "pg_database_datname_index" in str(exc):
                    return False  # another worker created it at the same moment
                raise
            return True
    except sa.exc.SQLAlchemyError as exc:
        first = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc) else type(exc).__name__
        raise TrackingError(
            f"cannot reach PostgreSQL at {where} as {parsed.username or '(default user)'} to check/create the "
            f"database {name!r} ({first}); is the server running and does the user have CREATEDB?"
        ) from None
    finally:
        admin.dispose()


def drop_database(url: str) -> None:
    """Drop a PostgreSQL database (tests and throw-away studies); terminates its other connections."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    admin = sa.create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :n AND pid <> pg_backend_pid()"
                ),
                {"n": parsed.database},
            )
            quoted = conn.dialect.identifier_preparer.quote_identifier(parsed.database)
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {quoted}"))
    finally:
        admin.dispose()


def masked_url(url: str) -> str:
    """The URL with any password masked (:func:`labelcycle.masking.mask`)."""
    return mask(url)


def refuse_password(url: str, setting: str) -> str:
    """``url`` when it holds no credential; a password in a params.yaml URL would be logged to MLflow and
    recorded in dvc.lock and git, so it is refused with where to put it instead.

    Raises:
        ConfigError: the URL holds a password or token.
    """
    if has_secret(url):
        where = (
            "PGPASSWORD or ~/.pgpass (PostgreSQL reads both)"
            if is_postgres(url)
            else "the database driver's own environment variable or option file"
        )
        raise ConfigError(
            f"{setting}: {mask(url)} holds a password, which would be logged to MLflow and recorded in "
            f"dvc.lock; remove it from the URL and put it in {where}, e.g. postgresql://USER@HOST:5432/DB"
        )
    return url
