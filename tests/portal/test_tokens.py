"""Sharing API tokens: stored hashed, expire, rotate, revoke; the `python -m portal tokens` CLI."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from dataclasses import fields
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from portal import access_log, tokens
from portal.store import DATABASE_URL_ENV, connect, utc_now
from tests.store_support import database_errors, engine, owner_url

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
EXPIRES = date(2026, 6, 30)


@pytest.fixture(autouse=True)
def data_root(store_engine, tmp_path, monkeypatch):
    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def new(
    sponsor_id: str = "NWT",
    label: str = "NWT data team",
    expires: date = EXPIRES,
    now: datetime = NOW,
) -> tuple[tokens.Token, str]:
    return tokens.create(sponsor_id, label, expires, "carla", now=now)


def stored_bytes(data_root: Path, request: pytest.FixtureRequest) -> bytes:
    """Every byte of the portal store on disk: the SQLite file with its WAL, or the PostgreSQL
    cluster's files (after a checkpoint) with its write-ahead log."""
    if engine() == "sqlite":
        files = sorted(data_root.glob("portal.sqlite*"))
    else:
        with psycopg.connect(owner_url(os.environ[DATABASE_URL_ENV]), autocommit=True) as conn:
            conn.execute("CHECKPOINT")
        data = request.getfixturevalue("postgres").data
        files = sorted(path for path in data.rglob("*") if path.is_file())
    return b"".join(path.read_bytes() for path in files)


def test_create_then_authenticate():
    token, secret = new()
    assert token.token_id.startswith("tok_") and len(token.token_id) == 14
    assert (token.sponsor_id, token.label, token.created_by) == ("NWT", "NWT data team", "carla")
    assert token.expires_at == datetime(2026, 6, 30, 23, 59, 59, 999999, tzinfo=UTC)
    assert len(secret) >= 43  # 32 random bytes, URL-safe
    found = tokens.authenticate(secret, NOW)
    assert found.token_id == token.token_id and found.last_used_at == NOW
    assert tokens.authenticate(secret + "x", NOW) is None
    assert tokens.authenticate("", NOW) is None


def test_a_token_lives_until_the_end_of_its_expiry_day_utc():
    _, secret = new()
    assert tokens.authenticate(secret, datetime(2026, 6, 30, 23, 59, 59, tzinfo=UTC))
    assert tokens.authenticate(secret, datetime(2026, 7, 1, tzinfo=UTC)) is None


def test_last_used_is_written_at_most_once_a_minute():
    token, secret = new()
    tokens.authenticate(secret, NOW)
    assert tokens.authenticate(secret, NOW + timedelta(seconds=59)).last_used_at == NOW
    (listed,) = tokens.list_tokens()
    assert listed.last_used_at == NOW
    later = NOW + timedelta(minutes=1)
    assert tokens.authenticate(secret, later).last_used_at == later
    assert tokens.list_tokens()[0].last_used_at == later


def test_revoke_is_recorded_final_and_idempotent():
    token, secret = new()
    revoked = tokens.revoke(token.token_id, "sam", NOW + timedelta(hours=1))
    assert (revoked.revoked_at, revoked.revoked_by) == (NOW + timedelta(hours=1), "sam")
    assert tokens.authenticate(secret, NOW + timedelta(hours=2)) is None
    again = tokens.revoke(token.token_id, "carla", NOW + timedelta(hours=3))
    assert (again.revoked_at, again.revoked_by) == (NOW + timedelta(hours=1), "sam")
    with pytest.raises(tokens.TokenError, match="no token"):
        tokens.revoke("tok_0000000000", "sam", NOW)
    assert tokens.get(token.token_id) == again
    assert tokens.get("tok_0000000000") is None


def test_a_third_live_token_per_label_is_refused_naming_the_one_to_revoke():
    first, _ = new()
    second, _ = new(now=NOW + timedelta(days=1))
    new(label="NWT statistics")  # another label rotates on its own
    new(sponsor_id="CTB")  # and so does another sponsor
    with pytest.raises(tokens.LabelFull, match=f"the oldest, {first.token_id}") as refused:
        new(now=NOW + timedelta(days=2))
    assert second.token_id in str(refused.value) and refused.value.oldest == first.token_id
    tokens.revoke(first.token_id, "carla", NOW + timedelta(days=2))
    new(now=NOW + timedelta(days=2))


def test_an_expired_token_does_not_count_as_live():
    new(expires=date(2026, 3, 10))
    new(expires=date(2026, 3, 10))
    new(now=datetime(2026, 3, 11, tzinfo=UTC))


def test_revoke_sponsor_revokes_only_that_sponsors_live_tokens():
    _, nwt_secret = new()
    new(label="NWT statistics")
    old, _ = new(label="old", expires=date(2026, 3, 10))
    _, ctb_secret = new(sponsor_id="CTB")
    later = datetime(2026, 3, 12, tzinfo=UTC)
    assert tokens.revoke_sponsor("NWT", "sam", later) == 2
    assert tokens.authenticate(nwt_secret, later) is None
    assert tokens.authenticate(ctb_secret, later) is not None
    assert (
        next(t for t in tokens.list_tokens("NWT") if t.token_id == old.token_id).revoked_at is None
    )
    assert tokens.revoke_sponsor("NWT", "sam", later) == 0


@pytest.mark.parametrize(
    ("sponsor_id", "label", "expires", "problem"),
    [
        ("../NWT", "team", EXPIRES, "not a valid sponsor id"),
        ("SITE", "team", EXPIRES, "not a valid sponsor id"),  # reserved partition
        ("NWT", "", EXPIRES, "1 to 80 printable"),
        ("NWT", "   ", EXPIRES, "1 to 80 printable"),
        ("NWT", "x" * 81, EXPIRES, "1 to 80 printable"),
        ("NWT", "team\tB", EXPIRES, "1 to 80 printable"),
        ("NWT", "team", date(2026, 3, 9), "in the past"),
        ("NWT", "team", date(2028, 3, 11), "more than 2 years ahead"),
    ],
)
def test_refusals(sponsor_id, label, expires, problem):
    with pytest.raises(tokens.TokenError, match=problem):
        new(sponsor_id, label, expires)


def test_the_limits_themselves_are_allowed():
    new(label="x" * 80, expires=date(2026, 3, 10))
    new(label="y", expires=date(2028, 3, 10))


def test_nothing_listed_or_stored_holds_the_secret(data_root, request):
    token, secret = new()
    tokens.authenticate(secret, NOW)
    tokens.revoke(token.token_id, "sam", NOW)
    assert "token_hash" not in {field.name for field in fields(tokens.Token)}
    assert secret not in repr(tokens.list_tokens())
    on_disk = stored_bytes(data_root, request)
    assert hashlib.sha256(secret.encode()).hexdigest().encode() in on_disk  # the grep sees the row
    assert secret.encode() not in on_disk
    with connect() as conn:
        (row,) = conn.execute("SELECT * FROM api_token").fetchall()
    assert secret not in json.dumps(dict(row))


def test_a_revoked_token_cannot_be_unrevoked_in_the_database():
    token, _ = new()
    tokens.revoke(token.token_id, "sam", NOW)
    with pytest.raises(database_errors(), match="stays revoked"), connect() as conn:
        conn.execute("UPDATE api_token SET revoked_at = NULL")


def test_creating_and_revoking_are_logged_for_the_sponsor():
    now = utc_now()
    token, secret = new(expires=now.date(), now=now)
    tokens.revoke(token.token_id, "sam")
    tokens.revoke(token.token_id, "sam")  # already revoked: nothing new to log
    since = now - timedelta(minutes=1)
    entries = access_log.entries_for_sponsor("NWT", since, since + timedelta(minutes=2))
    assert [(e["event"], e["username"]) for e in entries] == [
        ("TOKEN_REVOKED", "sam"),
        ("TOKEN_CREATED", "carla"),
    ]
    assert all(e["detail"].startswith(token.token_id) for e in entries)
    assert secret not in json.dumps(entries)


def test_profile_follows_the_delta_sharing_profile_format(tmp_path):
    token, secret = new()
    profile = tokens.profile(secret, tokens.DEFAULT_ENDPOINT, token)
    assert profile == {
        "shareCredentialsVersion": 1,
        "endpoint": "http://127.0.0.1:8800/delta-sharing",
        "bearerToken": secret,
        "expirationTime": "2026-06-30T23:59:59Z",
    }
    with pytest.raises(tokens.TokenError, match="http"):
        tokens.profile(secret, "ftp://share.example", token)
    path = tmp_path / "nwt.share"
    tokens.write_profile(path, profile)
    assert json.loads(path.read_text()) == profile
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(tokens.TokenError, match="already exists"):
        tokens.write_profile(path, profile)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "portal", "tokens", *args],
        capture_output=True, text=True, cwd=ROOT, env=os.environ.copy(), timeout=60,
    )  # fmt: skip


def test_cli_create_list_revoke(tmp_path, data_root, request):
    # The CLI checks expiry against the wall clock, so the test does too.
    expires = datetime.now(UTC).date() + timedelta(days=30)
    out = tmp_path / "nwt.share"
    created = cli(
        "create", "--sponsor", "NWT", "--label", "NWT data team", "--expires", str(expires),
        "--endpoint", "https://share.cmo.example/delta-sharing", "--out", str(out), "--by", "carla",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    profile = json.loads(out.read_text())
    secret = profile["bearerToken"]
    assert profile == {
        "shareCredentialsVersion": 1,
        "endpoint": "https://share.cmo.example/delta-sharing",
        "bearerToken": secret,
        "expirationTime": f"{expires}T23:59:59Z",
    }
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert secret not in created.stdout + created.stderr
    assert str(out) in created.stdout and "NWT data team" in created.stdout
    (token,) = tokens.list_tokens()
    assert tokens.authenticate(secret).token_id == token.token_id

    again = cli(
        "create", "--sponsor", "NWT", "--label", "NWT data team", "--expires", str(expires),
        "--out", str(out),
    )  # fmt: skip
    assert again.returncode == 2 and "already exists" in again.stderr
    assert json.loads(out.read_text())["bearerToken"] == secret
    assert len(tokens.list_tokens()) == 1  # the refusal left no orphan token behind

    listed = cli("list", "--sponsor", "NWT")
    assert listed.returncode == 0, listed.stderr
    assert f"{token.token_id}\tNWT\tNWT data team\t" in listed.stdout
    assert secret not in listed.stdout
    assert secret.encode() not in stored_bytes(data_root, request)

    revoked = cli("revoke", token.token_id, "--by", "sam")
    assert revoked.returncode == 0 and f"revoked {token.token_id}" in revoked.stdout
    assert "already revoked" in cli("revoke", token.token_id).stdout
    assert "by sam" in cli("list").stdout
    assert tokens.authenticate(secret) is None


def test_cli_refuses_a_past_expiry_and_revokes_a_sponsor(tmp_path):
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    past = cli(
        "create", "--sponsor", "CTB", "--label", "CTB", "--expires", str(yesterday),
        "--out", str(tmp_path / "ctb.share"),
    )  # fmt: skip
    assert past.returncode == 2 and "in the past" in past.stderr
    assert not (tmp_path / "ctb.share").exists()

    expires = str(datetime.now(UTC).date() + timedelta(days=1))
    for name in ("a", "b"):
        made = cli(
            "create", "--sponsor", "CTB", "--label", "CTB", "--expires", expires,
            "--out", str(tmp_path / f"{name}.share"),
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
    third = cli(
        "create", "--sponsor", "CTB", "--label", "CTB", "--expires", expires,
        "--out", str(tmp_path / "c.share"),
    )  # fmt: skip
    assert third.returncode == 2 and "python -m portal tokens revoke tok_" in third.stderr
    ended = cli("revoke-sponsor", "CTB")
    assert ended.returncode == 0 and "revoked 2 live tokens of CTB" in ended.stdout
