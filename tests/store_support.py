"""The portal store as someone with every power over it opens it: the SQLite file's holder, or
the PostgreSQL schema's owner. Tampering tests use it on both engines alike."""

from __future__ import annotations

import os
import sqlite3
from urllib.parse import urlsplit, urlunsplit

import psycopg

from portal import store
from portal.store import DATABASE_URL_ENV
from tests.postgres_support import OWNER, PASSWORD
from warehouse import layout


def database_errors() -> tuple[type[Exception], ...]:
    """What either engine raises when it refuses a statement (a trigger, a privilege)."""
    return sqlite3.DatabaseError, psycopg.DatabaseError


def engine() -> str:
    return "postgresql" if os.environ.get(DATABASE_URL_ENV) else "sqlite"


def owner_url(url: str) -> str:
    """The same database, signed into as the schema's owner instead of the portal's role."""
    parts = urlsplit(url)
    netloc = f"{OWNER}:{PASSWORD.replace('%', '%25')}@{parts.hostname}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


class Raw:
    """Statements with `?` placeholders, run one by one outside any portal code; rows read by
    name. `unguard()` lifts the decision table's append-only triggers, as its owner can."""

    def __init__(self) -> None:
        url = os.environ.get(DATABASE_URL_ENV)
        if url:
            conn = psycopg.connect(owner_url(url), autocommit=True, row_factory=store._rows)
            self._conn = store._PostgreSQL(conn)
            self._close = conn.close
        else:
            conn = sqlite3.connect(layout.portal_db(), isolation_level=None)
            conn.row_factory = sqlite3.Row
            self._conn, self._close = conn, conn.close

    def execute(self, sql: str, parameters: tuple = ()):
        return self._conn.execute(sql, parameters)

    def script(self, statements: str) -> None:
        for statement in statements.split(";"):
            if statement.strip():
                self.execute(statement)

    def unguard(self) -> None:
        if engine() == "sqlite":
            self.script("DROP TRIGGER decision_no_update; DROP TRIGGER decision_no_delete")
        else:
            self.execute("ALTER TABLE decision DISABLE TRIGGER USER")

    def close(self) -> None:
        self._close()
