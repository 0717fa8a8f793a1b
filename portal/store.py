"""The portal's own store: users, access log, sign-in failures, saved views, API tokens and
signed decisions. A SQLite file under the data root (layout.portal_db()) by default;
PostgreSQL when PORTAL_DATABASE_URL is set. Both get their schema from the same Alembic
migrations (portal/schema.py) and run the same SQL, written once with `?` placeholders."""

from __future__ import annotations

import atexit
import fcntl
import logging
import os
import secrets
import sqlite3
import threading
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from portal import schema
from warehouse import layout


def utc_now() -> datetime:
    return datetime.now(UTC)


def to_text(moment: datetime | None) -> str | None:
    """ISO text in UTC, so stored times sort and compare as strings."""
    return None if moment is None else moment.astimezone(UTC).isoformat(timespec="microseconds")


def from_text(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


DATABASE_URL_ENV = "PORTAL_DATABASE_URL"
POOL_SIZE_ENV = "PORTAL_DATABASE_POOL"  # connections per process (default 10)
WAIT_SECONDS = 5.0  # how long a request waits for PostgreSQL before it is told it is down

log = logging.getLogger(__name__)

UNREACHABLE = (
    "The portal's database cannot be reached right now, so nobody can sign in and no page can "
    "be shown. Nothing was lost. Please try again in a few minutes; if this lasts, tell the "
    "CMO's IT."
)
BUSY = (
    "The portal's database is too busy to take this right now; nothing was recorded. Please "
    "try again in a moment."
)


class StoreUnavailable(RuntimeError):
    """The store cannot be used now. Its message is for the user: it names no host, path or
    engine error (those go to the server's log)."""


class Connection(Protocol):
    """What the store's callers use of a connection, the same on both engines."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Any: ...


@contextmanager
def connect() -> Iterator[Connection]:
    """A connection to the store, in one transaction: committed on success, rolled back on an
    exception. Rows read by column name and by position on both engines."""
    url = os.environ.get(DATABASE_URL_ENV)
    if url:
        with _postgresql(url) as conn:
            yield conn
    else:
        with _sqlite(layout.portal_db()) as conn:
            yield conn


def begin_write(conn: Connection, subject: str) -> None:
    """Make this transaction the only writer of `subject` until it ends, so a check made by
    reading ("already decided", "a third live token") still holds when it writes."""
    if isinstance(conn, sqlite3.Connection):
        conn.execute("BEGIN IMMEDIATE")  # SQLite has one writer: take its lock now
    else:
        # Waits as long as SQLite's busy timeout, then refuses (BUSY) rather than queueing.
        conn.execute("SET LOCAL lock_timeout = '10s'")
        conn.execute("SELECT pg_advisory_xact_lock(?)", (zlib.crc32(subject.encode()),))


# --- SQLite: the embedded default --------------------------------------------------------

# A file whose user_version is the newest migration's number has its schema: the check costs
# one pragma per connection (the data share opens one per request). Revisions are numbered on
# from the versions the hand-rolled schema script gave (1-4).
_SQLITE_AT_HEAD = int(schema.HEAD)


@contextmanager
def _sqlite(path: Path) -> Iterator[sqlite3.Connection]:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=10)
    conn.row_factory = sqlite3.Row
    try:
        conn.execute("PRAGMA busy_timeout=10000")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > _SQLITE_AT_HEAD:
            raise StoreUnavailable(_newer(f"{version:04d}"))
        if version != _SQLITE_AT_HEAD:
            migrate_sqlite(path)
        with conn:
            yield conn
    finally:
        conn.close()


def migrate_sqlite(path: Path) -> None:
    """Bring the file to the newest revision, once, whichever process comes first (the portal
    on first use, or `python -m portal db upgrade`)."""
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with closing(sqlite3.connect(path, timeout=10)) as conn:
            if conn.execute("PRAGMA user_version").fetchone()[0] == _SQLITE_AT_HEAD:
                return
            # WAL lets the nightly job and many Streamlit sessions read while one writes.
            conn.execute("PRAGMA journal_mode=WAL")
        schema.upgrade(path)
        with closing(sqlite3.connect(path, timeout=10)) as conn:
            conn.execute(f"PRAGMA user_version = {_SQLITE_AT_HEAD}")


# --- PostgreSQL: PORTAL_DATABASE_URL ------------------------------------------------------

_pools: dict[str, Any] = {}
_at_head: set[str] = set()
_pools_lock = threading.Lock()


class NamedRow(tuple):
    """A PostgreSQL row readable by position and by column name, as sqlite3.Row is."""

    names: dict[str, int]

    def __getitem__(self, key):  # noqa: ANN001 -- an index, a slice or a column name
        if isinstance(key, str):
            return tuple.__getitem__(self, self.names[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self.names)


Row = sqlite3.Row | NamedRow  # what a query's rows are, on either engine


def _rows(cursor: Any) -> Callable[[Sequence[Any]], NamedRow]:
    names = {column.name: i for i, column in enumerate(cursor.description or ())}

    def row(values: Sequence[Any]) -> NamedRow:
        made = NamedRow(values)
        made.names = names
        return made

    return row


@lru_cache(maxsize=1024)
def _placeholders(sql: str) -> str:
    """The store's SQL (`?` placeholders) as psycopg takes it (`%s`, a literal % doubled).
    A `?` inside a quoted literal would be taken for a placeholder: the store's SQL has none."""
    return sql.replace("%", "%%").replace("?", "%s")


class _PostgreSQL:
    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Any:
        return self._conn.execute(_placeholders(sql), tuple(parameters))


def _pool(url: str) -> Any:
    with _pools_lock:
        if url not in _pools:
            from psycopg_pool import ConnectionPool

            _pools[url] = ConnectionPool(
                schema.libpq_url(url),
                min_size=1,
                max_size=int(os.environ.get(POOL_SIZE_ENV, 10)),
                timeout=WAIT_SECONDS,
                # A connection is tried before it is handed out, so one left broken by a
                # database restart is replaced instead of failing the request.
                check=ConnectionPool.check_connection,
                # Give up a failing reconnection soon: a new request then tries afresh, rather
                # than waiting out an exponential back-off that outlasts the outage.
                reconnect_timeout=2 * WAIT_SECONDS,
                configure=_read_committed,
                kwargs={"row_factory": _rows, "connect_timeout": int(WAIT_SECONDS)},
                name="portal-store",
                open=True,
            )
        return _pools[url]


def _read_committed(conn: Any) -> None:
    """Each statement sees what committed before it, whatever the database's default: a check
    made after begin_write's lock sees the writer it waited for."""
    import psycopg

    conn.isolation_level = psycopg.IsolationLevel.READ_COMMITTED


@atexit.register
def close() -> None:
    """Close this process's PostgreSQL connections (at exit, and by tests between databases)."""
    with _pools_lock:
        for pool in _pools.values():
            pool.close()
        _pools.clear()


@contextmanager
def _postgresql(url: str) -> Iterator[_PostgreSQL]:
    import psycopg
    from psycopg_pool import PoolTimeout

    try:
        with _pool(url).connection() as conn:
            if url not in _at_head:
                _check_schema(conn)
                _at_head.add(url)
            yield _PostgreSQL(conn)
    except (PoolTimeout, psycopg.errors.LockNotAvailable) as waited:
        # No connection in time: every one is in use (busy) or none can be made (down).
        down = isinstance(waited, PoolTimeout) and not _reachable(url)
        log.error("the portal's PostgreSQL store is %s: %s", "down" if down else "busy", waited)
        raise StoreUnavailable(UNREACHABLE if down else BUSY) from waited
    except psycopg.OperationalError as down:
        log.error("the portal's PostgreSQL store is unavailable: %s", down)
        raise StoreUnavailable(UNREACHABLE) from down


def _newer(at: str) -> str:
    return (
        f"The portal's database was prepared by a newer version of the portal (schema revision "
        f"{at}; this one knows up to {schema.HEAD}). Run the newer version, or ask the CMO's IT."
    )


def _reachable(url: str) -> bool:
    import psycopg

    try:
        psycopg.connect(schema.libpq_url(url), connect_timeout=2).close()
    except psycopg.OperationalError:
        return False
    return True


def _check_schema(conn: Any) -> None:
    at = None
    if conn.execute("SELECT to_regclass('alembic_version') IS NOT NULL").fetchone()[0]:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        at = row[0] if row else None
    if at is not None and at > schema.HEAD:
        raise StoreUnavailable(_newer(at))
    if at != schema.HEAD:
        raise StoreUnavailable(
            f"The portal's database has not been prepared for this version of the portal (its "
            f"schema is at revision {at or 'none'}; this portal needs {schema.HEAD}). The CMO's "
            "IT prepares it with: python -m portal db upgrade"
        )


def data_root_key(filename: str) -> str:
    """A random key generated once per data root and kept in `filename` there (0600), so
    every process on the data root uses the same one and restarts keep it."""
    path = layout.data_root() / filename
    if not path.exists():
        # Processes of a fresh data root race here: the key is written whole to a file of this
        # process's own, then linked into place, so a reader never sees a half-written key and
        # the loser of the race reads the winner's.
        path.parent.mkdir(parents=True, exist_ok=True)
        mine = path.with_name(f"{filename}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(mine, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
        try:
            os.link(mine, path)
        except FileExistsError:
            pass
        finally:
            mine.unlink()
    return path.read_text().strip()
