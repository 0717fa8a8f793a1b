"""The user registry, the sign-in lockout, and the `python -m portal` CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import bcrypt
import pytest

from portal import lockout, users
from portal.store import connect, utc_now

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def data_root(store_engine, tmp_path, monkeypatch):
    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path))
    return tmp_path


def stored_hash(username: str) -> str:
    with connect() as conn:
        return conn.execute(
            "SELECT password_hash FROM portal_user WHERE username = ?", (username,)
        ).fetchone()[0]


@pytest.mark.parametrize(
    ("role", "sponsor_id", "problem"),
    [
        ("sponsor_qa", None, "needs the id of its sponsor"),
        ("sponsor_qa", "../CTB", "needs the id of its sponsor"),
        ("sponsor_qa", "SITE", "needs the id of its sponsor"),  # reserved partition
        ("cmo_quality", "NWT", "leave the sponsor empty"),
        ("auditor", "NWT", "the start and the end of its access"),
        ("superuser", None, "is not one of"),
    ],
)
def test_registry_rules(role, sponsor_id, problem):
    with pytest.raises(users.UserError, match=problem):
        users.add_user("someone", "Some One", role, "a-long-password", sponsor_id=sponsor_id)


def test_principal_for_respects_disabled_and_validity():
    now = utc_now()
    users.add_user(
        "tom", "Tom", "auditor", "a-long-password", sponsor_id="NWT",
        valid_from=now - timedelta(days=1), valid_until=now + timedelta(days=4),
    )  # fmt: skip
    assert users.principal_for("tom", now).sponsor_id == "NWT"
    assert users.principal_for("tom", now + timedelta(days=5)) is None
    assert users.principal_for("tom", now - timedelta(days=2)) is None
    assert users.principal_for("nobody", now) is None
    users.disable_user("tom")
    assert users.principal_for("tom", now) is None


def test_create_auditor_returns_a_one_time_password_stored_only_as_a_hash():
    now = utc_now()
    user, password = users.create_auditor(
        "ext", "External", "CTB", valid_from=now, valid_until=now + timedelta(days=5)
    )
    assert user.role == "auditor" and len(password) >= 12
    assert password not in stored_hash("ext")
    assert bcrypt.checkpw(password.encode(), stored_hash("ext").encode())


def test_demo_users_are_created_once():
    assert set(users.ensure_demo_users()) >= {"priya", "bruno", "tom", "carla", "elena", "marco"}
    assert users.ensure_demo_users() == []
    assert users.principal_for("bruno", utc_now()).sponsor_id == "CTB"


def test_lock_after_failures_and_unlock_after_the_period():
    policy = lockout.LockoutPolicy(max_failures=3, lock_for=timedelta(minutes=15))
    now = utc_now()
    assert lockout.record_failure("ann", now, policy) is None
    assert lockout.record_failure("ann", now, policy) is None
    lock_end = lockout.record_failure("ann", now, policy)
    assert lock_end == now + timedelta(minutes=15)
    assert lockout.locked_until("ann", now + timedelta(minutes=14)) == lock_end
    assert lockout.locked_until("ann", now + timedelta(minutes=15)) is None
    # The count restarts after a lock: one more failure does not lock again.
    assert lockout.record_failure("ann", now + timedelta(minutes=16), policy) is None


def test_failures_outside_the_window_do_not_add_up():
    policy = lockout.LockoutPolicy(max_failures=2, window=timedelta(minutes=15))
    now = utc_now()
    lockout.record_failure("ann", now, policy)
    assert lockout.record_failure("ann", now + timedelta(minutes=16), policy) is None


def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "portal", *args],
        input=stdin, capture_output=True, text=True, cwd=ROOT, env=os.environ.copy(),
        timeout=60,
    )  # fmt: skip


def test_cli_add_list_reset_disable():
    added = cli(
        "users", "add", "ann", "--name", "Ann Lee", "--role", "sponsor_qa", "--sponsor", "FBK",
        "--password-stdin", stdin="first-password\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    listed = cli("users", "list")
    assert "ann\tsponsor_qa\tFBK" in listed.stdout

    reset = cli("users", "reset-password", "ann", "--password-stdin", stdin="second-password\n")
    assert reset.returncode == 0, reset.stderr
    assert bcrypt.checkpw(b"second-password", stored_hash("ann").encode())

    assert cli("users", "disable", "ann").returncode == 0
    assert users.principal_for("ann", utc_now()) is None


def test_cli_refuses_a_bad_sponsor_id_and_an_unknown_user():
    bad = cli(
        "users", "add", "eve", "--name", "Eve", "--role", "sponsor_qa", "--sponsor", "../NWT",
        "--password-stdin", stdin="a-long-password\n",
    )  # fmt: skip
    assert bad.returncode == 2 and "the id of its sponsor" in bad.stderr
    assert cli("users", "disable", "nobody").returncode == 2


def test_cli_create_auditor_prints_the_password_once():
    created = cli("users", "create-auditor", "ext", "--name", "Ext", "--sponsor", "WGT")
    assert created.returncode == 0, created.stderr
    password = created.stdout.rsplit(": ", 1)[1].strip()
    assert bcrypt.checkpw(password.encode(), stored_hash("ext").encode())
