"""The portal's own SQLite store: users, access log, sign-in failures, API tokens
(layout.portal_db())."""

from __future__ import annotations

import os
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from warehouse import layout

SCHEMA = """
CREATE TABLE IF NOT EXISTS portal_user (
    username      TEXT PRIMARY KEY,
    display_name  TEXT NOT NULL,
    email         TEXT,
    role          TEXT NOT NULL,
    sponsor_id    TEXT,
    valid_from    TEXT,
    valid_until   TEXT,
    password_hash TEXT NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,
    landing_page  TEXT,
    created_at    TEXT NOT NULL,
    created_by    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS access_log (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           TEXT NOT NULL,
    username     TEXT,
    role         TEXT,
    sponsor_id   TEXT,
    event        TEXT NOT NULL,
    page         TEXT,
    filters_json TEXT,
    row_count    INTEGER,
    content_hash TEXT,
    detail       TEXT
);
CREATE INDEX IF NOT EXISTS access_log_sponsor_at ON access_log (sponsor_id, at);
-- The log is evidence: the database itself refuses to rewrite history.
CREATE TRIGGER IF NOT EXISTS access_log_no_update BEFORE UPDATE ON access_log
BEGIN SELECT RAISE(ABORT, 'access_log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS access_log_no_delete BEFORE DELETE ON access_log
BEGIN SELECT RAISE(ABORT, 'access_log is append-only'); END;
CREATE TABLE IF NOT EXISTS saved_view (
    username     TEXT NOT NULL,
    page         TEXT NOT NULL,
    name         TEXT NOT NULL,
    filters_json TEXT NOT NULL,
    saved_at     TEXT NOT NULL,
    PRIMARY KEY (username, page, name)
);
CREATE TABLE IF NOT EXISTS signin_failure (
    username     TEXT PRIMARY KEY,
    failures     INTEGER NOT NULL,
    first_at     TEXT NOT NULL,
    locked_until TEXT
);
-- Sharing API tokens (portal/tokens.py): only the SHA-256 of each secret is kept.
CREATE TABLE IF NOT EXISTS api_token (
    token_id     TEXT PRIMARY KEY,
    token_hash   TEXT NOT NULL UNIQUE,
    sponsor_id   TEXT NOT NULL,
    label        TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at   TEXT,
    revoked_by   TEXT
);
CREATE INDEX IF NOT EXISTS api_token_sponsor_label ON api_token (sponsor_id, label);
-- A revoked token stays revoked, and who revoked it stays on record.
CREATE TRIGGER IF NOT EXISTS api_token_revocation_is_final
BEFORE UPDATE OF revoked_at, revoked_by ON api_token WHEN OLD.revoked_at IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'a revoked token stays revoked'); END;
-- Who may sign decisions for their sponsor (portal/decisions.py): grants and withdrawals
-- are appended, the newest row per user is in force, and none is ever rewritten.
CREATE TABLE IF NOT EXISTS signing_grant (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    username    TEXT NOT NULL,
    sponsor_id  TEXT NOT NULL,
    granted     INTEGER NOT NULL,
    at          TEXT NOT NULL,
    by          TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS signing_grant_user ON signing_grant (username, id);
CREATE TRIGGER IF NOT EXISTS signing_grant_no_update BEFORE UPDATE ON signing_grant
BEGIN SELECT RAISE(ABORT, 'signing_grant is append-only'); END;
CREATE TRIGGER IF NOT EXISTS signing_grant_no_delete BEFORE DELETE ON signing_grant
BEGIN SELECT RAISE(ABORT, 'signing_grant is append-only'); END;
-- Sponsor decisions signed in the portal (21 CFR 11): one hash chain over `seq`; a record has
-- one decision per position, a superseding one names the decision it replaces.
CREATE TABLE IF NOT EXISTS decision (
    seq            INTEGER PRIMARY KEY,
    decision_id    TEXT NOT NULL UNIQUE,
    sponsor_id     TEXT NOT NULL,
    record_type    TEXT NOT NULL,
    record_id      TEXT NOT NULL,
    record_label   TEXT NOT NULL,
    record_json    TEXT NOT NULL,
    record_hash    TEXT NOT NULL,
    meaning        TEXT NOT NULL,
    reason         TEXT,
    supersedes     TEXT,
    signer         TEXT NOT NULL,
    signer_name    TEXT NOT NULL,
    signed_at      TEXT NOT NULL,
    signer_zone    TEXT NOT NULL,
    snapshot       TEXT NOT NULL,
    prev_hash      TEXT NOT NULL,
    row_hash       TEXT NOT NULL UNIQUE
);
CREATE UNIQUE INDEX IF NOT EXISTS decision_once
    ON decision (sponsor_id, record_type, record_id, coalesce(supersedes, ''));
CREATE INDEX IF NOT EXISTS decision_signed_at ON decision (signed_at);
CREATE TRIGGER IF NOT EXISTS decision_no_update BEFORE UPDATE ON decision
BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END;
CREATE TRIGGER IF NOT EXISTS decision_no_delete BEFORE DELETE ON decision
BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END;
-- INSERT OR REPLACE deletes the row it conflicts with without firing delete triggers (unless
-- recursive_triggers is on): an insert that would meet an existing row is refused first.
CREATE TRIGGER IF NOT EXISTS decision_no_replace BEFORE INSERT ON decision
WHEN EXISTS (SELECT 1 FROM decision WHERE seq = NEW.seq OR decision_id = NEW.decision_id
             OR row_hash = NEW.row_hash
             OR (sponsor_id = NEW.sponsor_id AND record_type = NEW.record_type
                 AND record_id = NEW.record_id
                 AND coalesce(supersedes, '') = coalesce(NEW.supersedes, '')))
BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END;
CREATE TRIGGER IF NOT EXISTS signing_grant_no_replace BEFORE INSERT ON signing_grant
WHEN EXISTS (SELECT 1 FROM signing_grant WHERE id = NEW.id)
BEGIN SELECT RAISE(ABORT, 'signing_grant is append-only'); END;
CREATE TRIGGER IF NOT EXISTS access_log_no_replace BEFORE INSERT ON access_log
WHEN EXISTS (SELECT 1 FROM access_log WHERE id = NEW.id)
BEGIN SELECT RAISE(ABORT, 'access_log is append-only'); END;
"""


def utc_now() -> datetime:
    return datetime.now(UTC)


def to_text(moment: datetime | None) -> str | None:
    """ISO text in UTC, so stored times sort and compare as strings."""
    return None if moment is None else moment.astimezone(UTC).isoformat(timespec="microseconds")


def from_text(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


# The schema's version, kept in the database's user_version once SCHEMA has run on it: the
# script costs ~0.6 ms, which every connection paid before (the data share opens one per
# request). Raise it whenever SCHEMA changes.
SCHEMA_VERSION = 4


@contextmanager
def connect() -> Iterator[sqlite3.Connection]:
    """A connection to the portal DB (schema ensured, WAL); commits on success, always closes."""
    path = layout.portal_db()
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=10)
    conn.row_factory = sqlite3.Row
    try:
        conn.execute("PRAGMA busy_timeout=10000")
        if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
            # WAL lets the nightly job and many Streamlit sessions read while one writes.
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        with conn:
            yield conn
    finally:
        conn.close()


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
