"""A real PostgreSQL 15 cluster for tests: made with initdb in a temporary folder, listening on
a free loopback port, stopped and removed at the end. Run as the `postgres` user when the
tests run as root (initdb refuses root)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from portal import schema, store, users
from portal.store import DATABASE_URL_ENV
from tests.browser_support import free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")
OWNER = "portal_owner"  # owns the schema and runs the migrations
APP_ROLE = "portal_web"  # what the portal signs in as: only schema.PRIVILEGES
PASSWORD = "s3cret%pass"  # a % in the password: URLs and Alembic's config must cope
TEMPLATE = "portal_template"  # migrated once; each test's database is a copy of it


def _program(name: str) -> str:
    return shutil.which(name) or str(PG_BIN / name)


class Cluster:
    """One running cluster; `url(database, role)` names a database as a role signs into it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.port = free_port()
        self._user = "postgres" if os.geteuid() == 0 else None
        self._count = 0
        self._demo_users: str | None = None

    def _run(self, *command: str) -> None:
        subprocess.run(command, check=True, capture_output=True, user=self._user, timeout=120)

    def init(self) -> None:
        if self._user:
            entry = pwd.getpwnam(self._user)
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
        secret = self.folder / "pw"
        secret.write_text(PASSWORD + "\n")
        if self._user:
            os.chown(secret, pwd.getpwnam(self._user).pw_uid, -1)
        self._run(_program("initdb"), "-D", str(self.data), "-U", OWNER, f"--pwfile={secret}",
                  "--auth=scram-sha-256", "-E", "UTF8")  # fmt: skip
        secret.unlink()
        self.start()

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} "
            f"-c unix_socket_directories={self.folder} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(_program("pg_ctl"), "-D", str(self.data), "-l", str(self.folder / "log"),
                  "-o", options, "-w", "-t", "60", "start")  # fmt: skip

    def stop(self) -> None:
        self._run(_program("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def url(self, database: str = "postgres", role: str = OWNER) -> str:
        password = PASSWORD.replace("%", "%25")
        return f"postgresql://{role}:{password}@127.0.0.1:{self.port}/{database}"

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(self.url(), autocommit=True)

    def prepare(self) -> None:
        """The portal's role and a migrated template database, as the CMO's IT prepares one
        (python -m portal db upgrade --grant-to)."""
        with self.admin() as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(APP_ROLE), sql.Literal(PASSWORD)
                )
            )
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE)))
        schema.upgrade(self.url(TEMPLATE))
        schema.grant(self.url(TEMPLATE), APP_ROLE)

    def fresh_database(self, *, demo_users: bool = False) -> str:
        """A new database copied from the migrated template (holding the demo users if asked:
        bcrypt makes them once); its name."""
        if demo_users and not self._demo_users:
            self._demo_users = self._copy(TEMPLATE)
            with pytest.MonkeyPatch.context() as patch:
                patch.setenv(DATABASE_URL_ENV, self.url(self._demo_users, APP_ROLE))
                users.ensure_demo_users()
                store.close()  # a template must have no connection while it is copied
        return self._copy(self._demo_users if demo_users else TEMPLATE)

    def empty_database(self) -> str:
        """A new database with nothing in it, not even the schema; its name."""
        return self._copy("template1")

    def _copy(self, template: str) -> str:
        self._count += 1
        name = f"portal_{self._count}"
        with self.admin() as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            )
        return name


@contextmanager
def running_cluster() -> Iterator[Cluster]:
    folder = Path(tempfile.mkdtemp(prefix="portal-pg-"))  # not under pytest's 0700 folders
    cluster = Cluster(folder)
    try:
        cluster.init()
        cluster.prepare()
        yield cluster
    finally:
        with suppress(subprocess.CalledProcessError):  # a test stopped it already
            cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)
