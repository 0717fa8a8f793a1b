"""The portal store on PostgreSQL: migrations by Alembic, the portal role's privileges, the
evidence tables append-only for every role, and a database that stops and comes back.

The tests shared with SQLite (users, tokens, access log, decisions, sign-in) run on both
engines through the `store_engine` fixture; these are what only PostgreSQL has."""

from __future__ import annotations

import importlib.util
import os
import sqlite3
import subprocess
import sys
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from streamlit.testing.v1 import AppTest

from portal import access_log, schema, store, tokens, users
from portal.store import DATABASE_URL_ENV, StoreUnavailable, connect, utc_now
from tests.browser_support import free_port
from tests.postgres_support import APP_ROLE, running_cluster
from tests.share_support import start_share_server, stop_share_server
from tests.store_support import database_errors, owner_url
from warehouse import layout

ROOT = Path(__file__).resolve().parents[2]


EVER = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


def cli(*args: str, env_url: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != DATABASE_URL_ENV}
    if env_url:
        env[DATABASE_URL_ENV] = env_url
    return subprocess.run(
        [sys.executable, "-m", "portal", *args],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=120,
    )  # fmt: skip


def tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {name for (name,) in rows}


def test_head_is_the_newest_migration():
    config = Config()
    config.set_main_option("script_location", str(schema.MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_heads() == [schema.HEAD]


def test_db_upgrade_migrates_an_empty_database_once_and_grants_the_portal_role(postgres):
    database = postgres.empty_database()
    owner = postgres.url(database)
    done = cli("db", "upgrade", "--database-url", owner, "--grant-to", APP_ROLE)
    assert done.returncode == 0, done.stderr
    assert f"PostgreSQL database {database} on 127.0.0.1:{postgres.port}" in done.stdout
    assert f"schema at revision {schema.HEAD} (was empty)" in done.stdout
    assert f"role {APP_ROLE} granted" in done.stdout
    assert "s3cret" not in done.stdout + done.stderr  # never the password
    assert tables(owner) == set(schema.PRIVILEGES)

    again = cli("db", "upgrade", "--grant-to", APP_ROLE, env_url=owner)
    assert again.returncode == 0 and "(it already was)" in again.stdout, again.stderr
    at = cli("db", "current", env_url=postgres.url(database, APP_ROLE))
    assert f"revision {schema.HEAD}" in at.stdout and "(up to date)" in at.stdout, at.stderr


def test_db_upgrade_sql_prints_the_ddl_and_runs_nothing(postgres):
    database = postgres.empty_database()
    done = cli("db", "upgrade", "--sql", "--database-url", postgres.url(database))
    assert done.returncode == 0, done.stderr
    for expected in ("CREATE TABLE access_log", "GENERATED ALWAYS AS IDENTITY",
                     "CREATE TRIGGER access_log_no_rewrite", 'TEXT COLLATE "C"',
                     "nothing was executed"):  # fmt: skip
        assert expected in done.stdout
    assert tables(postgres.url(database)) == set()


def test_every_table_has_the_portal_roles_privileges_declared(postgres):
    assert tables(postgres.url(postgres.fresh_database())) == set(schema.PRIVILEGES)


def test_a_database_not_migrated_is_refused_in_words(postgres, monkeypatch):
    monkeypatch.setenv(DATABASE_URL_ENV, postgres.url(postgres.empty_database(), APP_ROLE))
    try:
        with pytest.raises(StoreUnavailable, match=r"python -m portal db upgrade") as refused:
            users.list_users()
    finally:
        store.close()
    assert "revision none" in str(refused.value) and "127.0.0.1" not in str(refused.value)


# --- what the portal's role may not do, and what nobody may ----------------------------------

# (statement, as whom, the refusal): the portal's role is refused by privilege, the owner by
# the tables' triggers.
ATTACKS = [
    ("UPDATE access_log SET detail = 'edited'", "portal", "permission denied"),
    ("DELETE FROM access_log", "portal", "permission denied"),
    ("TRUNCATE access_log", "portal", "permission denied"),
    ("ALTER TABLE access_log DISABLE TRIGGER USER", "portal", "must be owner"),
    ("DROP TABLE access_log", "portal", "must be owner"),
    ("UPDATE decision SET meaning = 'REJECTED'", "portal", "permission denied"),
    ("DELETE FROM signing_grant", "portal", "permission denied"),
    ("DELETE FROM portal_user", "portal", "permission denied"),
    ("UPDATE alembic_version SET version_num = '0004'", "portal", "permission denied"),
    ("CREATE TABLE shadow (x int)", "portal", "permission denied"),
    ("UPDATE access_log SET detail = 'edited'", "owner", "access_log is append-only"),
    ("DELETE FROM access_log", "owner", "access_log is append-only"),
    ("TRUNCATE access_log", "owner", "access_log is append-only"),
    ("DELETE FROM decision", "owner", "decisions are append-only"),
    ("TRUNCATE signing_grant", "owner", "signing_grant is append-only"),
]


@pytest.mark.parametrize(("statement", "who", "refusal"), ATTACKS)
def test_the_evidence_cannot_be_rewritten(postgres, monkeypatch, statement, who, refusal):
    url = postgres.url(postgres.fresh_database(), APP_ROLE)
    monkeypatch.setenv(DATABASE_URL_ENV, url)
    try:
        access_log.record("SIGN_IN_FAILED", None, username="someone")
        with psycopg.connect(owner_url(url)) as owner:  # a row in each, for the row triggers
            owner.execute(
                "INSERT INTO decision VALUES (1, 'DEC-NWT-0001', 'NWT', 'change_approval', "
                "'CC-1', 'CC-1', '{}', 'h', 'APPROVED', NULL, NULL, 'priya', 'Priya', "
                "'2026-01-01T00:00:00+00:00', 'UTC', 'run', 'genesis', 'row')"
            )
            owner.execute(
                "INSERT INTO signing_grant (username, sponsor_id, granted, at, by) "
                "VALUES ('priya', 'NWT', 1, '2026-01-01T00:00:00+00:00', 'carla')"
            )
        conn = psycopg.connect(url if who == "portal" else owner_url(url))
        with conn, pytest.raises(psycopg.DatabaseError, match=refusal):
            conn.execute(statement)
        assert [e["username"] for e in access_log.entries_all(*EVER)] == ["someone"]
    finally:
        store.close()


def test_the_portal_role_writes_what_it_needs(postgres, monkeypatch):
    """The role can do every write the portal does; the identity keys need no sequence grant."""
    monkeypatch.setenv(DATABASE_URL_ENV, postgres.url(postgres.fresh_database(), APP_ROLE))
    try:
        users.add_user("qa", "QA", "sponsor_qa", "a long password 1", sponsor_id="NWT")
        users.disable_user("qa")
        access_log.record("SIGN_IN_FAILED", None, username="qa")
        with connect() as conn:
            (count,) = conn.execute("SELECT count(*) FROM access_log").fetchone()
        assert count == 1
    finally:
        store.close()


# --- a store made before Alembic --------------------------------------------------------------


def test_a_store_made_by_the_old_schema_script_is_stamped_and_keeps_its_rows(tmp_path, monkeypatch):
    """A data root from before Alembic (user_version 4, made by the old IF NOT EXISTS script)
    opens as before: rows kept, triggers kept, revision stamped."""
    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path))
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    path = schema.MIGRATIONS / "versions" / f"{schema.HEAD}_baseline.py"
    spec = importlib.util.spec_from_file_location("baseline", path)
    baseline = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(baseline)  # the old script, kept verbatim as the baseline's SQLite
    layout.portal_db().parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(layout.portal_db()) as old:
        old.executescript(baseline.SQLITE)
        old.execute("PRAGMA user_version = 4")
        old.execute(
            "INSERT INTO access_log (at, event, username) VALUES ('2026-01-01T00:00:00', "
            "'SIGN_IN', 'priya')"
        )
    assert schema.current(layout.portal_db()) is None
    assert [e["username"] for e in access_log.entries_all(*EVER)] == ["priya"]
    assert schema.current(layout.portal_db()) == schema.HEAD
    with pytest.raises(database_errors(), match="append-only"), connect() as conn:
        conn.execute("DELETE FROM access_log")


# --- PostgreSQL stops and comes back ----------------------------------------------------------


@pytest.fixture
def own_cluster(monkeypatch, tmp_path):
    """A cluster of this test's own (it is stopped mid-test), holding the demo users."""
    with running_cluster() as cluster:
        url = cluster.url(cluster.fresh_database(demo_users=True), APP_ROLE)
        monkeypatch.setenv(DATABASE_URL_ENV, url)
        monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path))
        monkeypatch.setenv("PORTAL_BOOTSTRAP", "off")
        for name in ("PORTAL_MODE", "PORTAL_COOKIE_KEY", "PORTAL_IDLE_MINUTES"):
            monkeypatch.delenv(name, raising=False)
        try:
            yield cluster
        finally:
            store.close()
            with suppress(subprocess.CalledProcessError):
                cluster.start()  # stopped by the test: the fixture stops it itself


def sign_in(at: AppTest, username: str) -> AppTest:
    at.text_input(key="sign_in_username").input(username)
    at.text_input(key="sign_in_password").input(users.demo_password(username))
    return at.button[0].click().run()


def test_a_stopped_database_refuses_sign_in_in_words_and_the_portal_recovers(own_cluster):
    at = sign_in(AppTest.from_file(str(ROOT / "portal_app.py"), default_timeout=60).run(), "bruno")
    assert not at.exception and at.session_state["_principal"].username == "bruno"

    own_cluster.stop()
    down = AppTest.from_file(str(ROOT / "portal_app.py"), default_timeout=60).run()
    assert not down.exception
    (shown,) = [e.value for e in down.error]
    assert shown == store.UNREACHABLE  # words, no host, no driver error
    assert not down.text_input  # no sign-in form to fill in while nobody can be checked
    at.run()  # the signed-in session's next click
    assert not at.exception and [e.value for e in at.error] == [store.UNREACHABLE]

    own_cluster.start()
    at.run()  # the same session carries on, signed in, without signing in again
    assert not at.exception and not at.error
    assert at.session_state["_principal"].username == "bruno"
    again = sign_in(AppTest.from_file(str(ROOT / "portal_app.py"), default_timeout=60).run(),
                    "priya")  # fmt: skip
    assert again.session_state["_principal"].username == "priya"
    logged = reversed(access_log.entries_all(*EVER))  # oldest first
    events = [e["event"] for e in logged if e["username"] == "bruno"]
    assert events[0] == "SIGN_IN" and "PAGE_VIEW" in events


def test_the_sharing_server_answers_503_while_the_database_is_down(
    own_cluster, demo_warehouse, tmp_path
):
    _, secret = tokens.create("NWT", "NWT data team", (utc_now() + timedelta(days=30)).date(),
                              "carla")  # fmt: skip
    server = start_share_server(demo_warehouse, Path(os.environ["PORTAL_DATA_DIR"]),
                                tmp_path / "share.log")  # fmt: skip
    try:
        before = server.get("/shares", secret)
        assert before.status_code == 200, before.text
        own_cluster.stop()
        down = server.get("/shares", secret)
        assert down.status_code == 503 and down.headers["Retry-After"] == "60"
        assert down.json() == {"errorCode": "TEMPORARILY_UNAVAILABLE",
                               "message": store.UNREACHABLE}  # fmt: skip
        own_cluster.start()
        back = server.get("/shares", secret)
        assert back.status_code == 200 and back.json() == before.json(), back.text
    finally:
        stop_share_server(server)


def test_a_store_from_a_newer_portal_is_refused_in_words(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path))
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    with sqlite3.connect(layout.portal_db()) as newer:
        newer.execute(f"PRAGMA user_version = {int(schema.HEAD) + 1}")
    with pytest.raises(StoreUnavailable, match="prepared by a newer version of the portal"):
        users.list_users()


def test_the_commands_answer_in_words_when_they_cannot_go_on(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path))
    nowhere = f"postgresql://{APP_ROLE}:x@127.0.0.1:{free_port()}/portal"
    for args, said in [
        (("db", "current"), "error: cannot reach the PostgreSQL database portal on 127.0.0.1"),
        (("users", "list"), f"error: {store.UNREACHABLE}"),
        (("db", "upgrade", "--grant-to", APP_ROLE), "error: --grant-to is for PostgreSQL"),
    ]:
        done = cli(*args, env_url=None if args[1] == "upgrade" else nowhere)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.strip().splitlines()[-1].startswith(said), done.stderr
