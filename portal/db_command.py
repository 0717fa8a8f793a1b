"""`python -m portal db upgrade|current`: the store's schema, for the CMO's IT.

The store is `--database-url`, else PORTAL_DATABASE_URL, else the SQLite file under
PORTAL_DATA_DIR (which the portal also upgrades by itself on first use). On PostgreSQL run
it as the schema's owner, with `--grant-to` naming the role the portal signs in as.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from portal import schema
from portal.store import DATABASE_URL_ENV, migrate_sqlite
from warehouse import layout


def _target(args: argparse.Namespace) -> str | Path:
    url = args.database_url or os.environ.get(DATABASE_URL_ENV)
    return url if url else layout.portal_db()


def _described(target: str | Path) -> str:
    if isinstance(target, Path):
        return f"the SQLite store {target}"
    from psycopg.conninfo import conninfo_to_dict

    parts = conninfo_to_dict(schema.libpq_url(target))  # never the password
    return f"PostgreSQL database {parts.get('dbname')} on {parts.get('host')}:{parts.get('port')}"


class DbCommandError(Exception):
    """A refusal of `python -m portal db`, in words."""


def upgrade(args: argparse.Namespace) -> str:
    target = _target(args)
    if args.grant_to and isinstance(target, Path):
        raise DbCommandError("--grant-to is for PostgreSQL; a SQLite store has no roles")
    if args.sql:
        schema.upgrade(target, sql_to=sys.stdout)
        for statement in schema.grants(args.grant_to) if args.grant_to else []:
            print(f"{statement};")
        return (
            f"-- nothing was executed: the SQL above builds an empty database up to revision "
            f"{schema.HEAD}"
            + (
                f", then grants {args.grant_to} its privileges" if args.grant_to else ""
            )  # fmt: skip
        )
    with _reaching(target):
        before = schema.current(target) if not _is_new_sqlite(target) else None
        if isinstance(target, Path):
            migrate_sqlite(target)  # as the portal does: under its lock, WAL, marked at head
        else:
            schema.upgrade(target)
        if args.grant_to:
            schema.grant(target, args.grant_to)
    done = f"{_described(target)}: schema at revision {schema.HEAD}" + (
        " (it already was)" if before == schema.HEAD else f" (was {before or 'empty'})"
    )
    if args.grant_to:
        done += f"; role {args.grant_to} granted the portal's privileges"
    return done


@contextmanager
def _reaching(target: str | Path) -> Iterator[None]:
    """A database that cannot be reached, said in one line (the driver's first)."""
    import psycopg

    try:
        yield
    except psycopg.OperationalError as down:
        reason = str(down).strip().splitlines()[0] if str(down).strip() else type(down).__name__
        raise DbCommandError(f"cannot reach the {_described(target)}: {reason}") from down


def _is_new_sqlite(target: str | Path) -> bool:
    return isinstance(target, Path) and not target.exists()


def current(args: argparse.Namespace) -> str:
    target = _target(args)
    with _reaching(target):
        at = None if _is_new_sqlite(target) else schema.current(target)
    verdict = "up to date" if at == schema.HEAD else "needs `python -m portal db upgrade`"
    needs = f"this portal needs {schema.HEAD}"
    return f"{_described(target)}: revision {at or 'none'}, {needs} ({verdict})"


def add_parser(commands: argparse._SubParsersAction) -> None:
    db = commands.add_parser("db", help="the portal store's schema").add_subparsers(
        dest="action", required=True
    )
    up = db.add_parser("upgrade", help="migrate the store to this portal's schema")
    up.add_argument(
        "--grant-to", metavar="ROLE", help="PostgreSQL: the role the portal signs in as"
    )
    up.add_argument("--sql", action="store_true", help="print the SQL instead of running it")
    up.set_defaults(run=upgrade)
    at = db.add_parser("current", help="the store's schema revision")
    at.set_defaults(run=current)
    for sub in (up, at):
        sub.add_argument("--database-url", help=f"PostgreSQL URL (default ${DATABASE_URL_ENV})")
