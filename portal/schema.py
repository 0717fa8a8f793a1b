"""The store's schema, migrated by Alembic (portal/migrations/): bring a database to the
newest revision, tell which revision it is at, and give the portal's PostgreSQL role exactly
the privileges it uses."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

HEAD = "0005"  # the newest revision in portal/migrations/versions (tests/portal keep it so)
MIGRATIONS = Path(__file__).with_name("migrations")

# What the portal's own PostgreSQL role may do, table by table. The access log, the signing
# grants and the decisions are evidence: the role may add to them, never change or remove.
PRIVILEGES = {
    "portal_user": "SELECT, INSERT, UPDATE",
    "access_log": "SELECT, INSERT",
    "saved_view": "SELECT, INSERT, UPDATE",
    "signin_failure": "SELECT, INSERT, UPDATE, DELETE",
    "api_token": "SELECT, INSERT, UPDATE",
    "signing_grant": "SELECT, INSERT",
    "decision": "SELECT, INSERT",
    "alembic_version": "SELECT",
}


def is_postgresql(url: str) -> bool:
    return url.split(":", 1)[0].split("+", 1)[0] in ("postgresql", "postgres")


def libpq_url(url: str) -> str:
    """The URL as libpq takes it (SQLAlchemy's `postgresql+psycopg://` accepted too)."""
    scheme, rest = url.split(":", 1)
    return f"postgresql:{rest}" if is_postgresql(scheme) else url


def _alembic_url(target: str | Path) -> str:
    if isinstance(target, Path):
        return f"sqlite:///{target}"
    return "postgresql+psycopg:" + libpq_url(target).split(":", 1)[1]


def _config(target: str | Path, output=None):
    from alembic.config import Config

    config = Config(output_buffer=output)
    config.set_main_option("script_location", str(MIGRATIONS))
    # The option is read through ConfigParser: a % in a password must be doubled.
    config.set_main_option("sqlalchemy.url", _alembic_url(target).replace("%", "%%"))
    return config


def upgrade(target: str | Path, *, sql_to=None) -> None:
    """Apply every migration the database lacks (a PostgreSQL URL or a SQLite file's path);
    with `sql_to` (a text stream), write the SQL there instead and touch nothing."""
    from alembic import command

    command.upgrade(_config(target, sql_to), HEAD, sql=sql_to is not None)


def current(target: str | Path) -> str | None:
    """The revision the database is at; None for a database Alembic never migrated."""
    if isinstance(target, Path):
        with closing(sqlite3.connect(target)) as conn:
            known = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE name = 'alembic_version'"
            ).fetchone()
            row = known and conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return row[0] if row else None
    import psycopg

    with psycopg.connect(libpq_url(target)) as conn:
        if conn.execute("SELECT to_regclass('alembic_version')").fetchone()[0] is None:
            return None
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return row[0] if row else None


def grant(url: str, role: str) -> None:
    """Give the portal's PostgreSQL role (a login or group role that already exists) exactly
    PRIVILEGES; run by the schema's owner after each upgrade."""
    import psycopg

    with psycopg.connect(libpq_url(url)) as conn:
        for statement in grants(role):
            conn.execute(statement)


def grants(role: str) -> list[str]:
    """The statements that give `role` exactly PRIVILEGES, table by table."""
    from psycopg import sql

    found = []
    for table, privileges in PRIVILEGES.items():
        target = (sql.Identifier(table), sql.Identifier(role))
        found.append(sql.SQL("REVOKE ALL ON {} FROM {}").format(*target).as_string(None))
        found.append(sql.SQL(f"GRANT {privileges} ON {{}} TO {{}}").format(*target).as_string(None))
    return found
