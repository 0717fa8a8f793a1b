"""The store's schema as the hand-rolled script left it (SQLite user_version 4), now under
Alembic, and the same schema for PostgreSQL.

On SQLite every statement is IF NOT EXISTS, so a store made before Alembic is stamped without
a change. Revision numbers continue SQLite's user_version (1-4 were the script's).
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = None
branch_labels = None
depends_on = None

SQLITE = """
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

# Text columns compare byte by byte ("C"), as SQLite's do: stored times are ISO text and must
# sort as strings whatever collation the DBA created the database with.
T = 'TEXT COLLATE "C"'

POSTGRESQL = f"""
CREATE TABLE portal_user (
    username      {T} PRIMARY KEY,
    display_name  {T} NOT NULL,
    email         {T},
    role          {T} NOT NULL,
    sponsor_id    {T},
    valid_from    {T},
    valid_until   {T},
    password_hash {T} NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,
    landing_page  {T},
    created_at    {T} NOT NULL,
    created_by    {T} NOT NULL
);
CREATE TABLE access_log (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           {T} NOT NULL,
    username     {T},
    role         {T},
    sponsor_id   {T},
    event        {T} NOT NULL,
    page         {T},
    filters_json {T},
    row_count    BIGINT,
    content_hash {T},
    detail       {T}
);
CREATE INDEX access_log_sponsor_at ON access_log (sponsor_id, at);
CREATE TABLE saved_view (
    username     {T} NOT NULL,
    page         {T} NOT NULL,
    name         {T} NOT NULL,
    filters_json {T} NOT NULL,
    saved_at     {T} NOT NULL,
    PRIMARY KEY (username, page, name)
);
CREATE TABLE signin_failure (
    username     {T} PRIMARY KEY,
    failures     INTEGER NOT NULL,
    first_at     {T} NOT NULL,
    locked_until {T}
);
CREATE TABLE api_token (
    token_id     {T} PRIMARY KEY,
    token_hash   {T} NOT NULL UNIQUE,
    sponsor_id   {T} NOT NULL,
    label        {T} NOT NULL,
    created_at   {T} NOT NULL,
    created_by   {T} NOT NULL,
    expires_at   {T} NOT NULL,
    last_used_at {T},
    revoked_at   {T},
    revoked_by   {T}
);
CREATE INDEX api_token_sponsor_label ON api_token (sponsor_id, label);
CREATE TABLE signing_grant (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username    {T} NOT NULL,
    sponsor_id  {T} NOT NULL,
    granted     INTEGER NOT NULL,
    at          {T} NOT NULL,
    by          {T} NOT NULL
);
CREATE INDEX signing_grant_user ON signing_grant (username, id);
CREATE TABLE decision (
    seq            BIGINT PRIMARY KEY,
    decision_id    {T} NOT NULL UNIQUE,
    sponsor_id     {T} NOT NULL,
    record_type    {T} NOT NULL,
    record_id      {T} NOT NULL,
    record_label   {T} NOT NULL,
    record_json    {T} NOT NULL,
    record_hash    {T} NOT NULL,
    meaning        {T} NOT NULL,
    reason         {T},
    supersedes     {T},
    signer         {T} NOT NULL,
    signer_name    {T} NOT NULL,
    signed_at      {T} NOT NULL,
    signer_zone    {T} NOT NULL,
    snapshot       {T} NOT NULL,
    prev_hash      {T} NOT NULL,
    row_hash       {T} NOT NULL UNIQUE
);
CREATE UNIQUE INDEX decision_once
    ON decision (sponsor_id, record_type, record_id, coalesce(supersedes, ''));
CREATE INDEX decision_signed_at ON decision (signed_at);
-- The log, the grants and the decisions are evidence: the database refuses to rewrite them,
-- for their owner too (the portal's own role is not even granted UPDATE or DELETE).
CREATE FUNCTION portal_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING MESSAGE = TG_ARGV[0], ERRCODE = 'integrity_constraint_violation';
END
$$;
CREATE TRIGGER access_log_no_rewrite BEFORE UPDATE OR DELETE ON access_log
    FOR EACH ROW EXECUTE FUNCTION portal_refuse('access_log is append-only');
CREATE TRIGGER access_log_no_truncate BEFORE TRUNCATE ON access_log
    FOR EACH STATEMENT EXECUTE FUNCTION portal_refuse('access_log is append-only');
CREATE TRIGGER signing_grant_no_rewrite BEFORE UPDATE OR DELETE ON signing_grant
    FOR EACH ROW EXECUTE FUNCTION portal_refuse('signing_grant is append-only');
CREATE TRIGGER signing_grant_no_truncate BEFORE TRUNCATE ON signing_grant
    FOR EACH STATEMENT EXECUTE FUNCTION portal_refuse('signing_grant is append-only');
CREATE TRIGGER decision_no_rewrite BEFORE UPDATE OR DELETE ON decision
    FOR EACH ROW EXECUTE FUNCTION portal_refuse('decisions are append-only');
CREATE TRIGGER decision_no_truncate BEFORE TRUNCATE ON decision
    FOR EACH STATEMENT EXECUTE FUNCTION portal_refuse('decisions are append-only');
-- A revoked token stays revoked, and who revoked it stays on record.
CREATE TRIGGER api_token_revocation_is_final BEFORE UPDATE OF revoked_at, revoked_by
    ON api_token FOR EACH ROW WHEN (OLD.revoked_at IS NOT NULL)
    EXECUTE FUNCTION portal_refuse('a revoked token stays revoked');
"""


def statements(script: str) -> list[str]:
    """The script's statements: each ends a line with ";" outside a $$-quoted body."""
    found, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if line.rstrip().endswith(";") and pending.count("$$") % 2 == 0:
            found.append(pending.strip().removesuffix(";"))  # Alembic's --sql adds its own
            pending = ""
    return found


def upgrade() -> None:
    dialect = op.get_context().dialect.name
    for statement in statements(SQLITE if dialect == "sqlite" else POSTGRESQL):
        op.execute(statement)


def downgrade() -> None:
    raise RuntimeError("the baseline is never undone: it holds the access log, which is evidence")
