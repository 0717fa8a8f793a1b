"""Sponsor decisions as Part 11 signatures (portal/decisions.py): who may sign, what a signature
records and says, the append-only hash chain and its verification, and the QMS outbox.

Every test signs into its own portal store (a fresh PORTAL_DATA_DIR holding the demo users)
and reads the records to decide from the session's demo warehouse through the signer's own
confined DuckDB scope: real SQLite, real DuckDB, real bcrypt, no mocks. The commands run as
real processes (`python -m portal ...`) on the same store.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from portal import decisions, lockout, users
from portal.decisions import SignatureRefused
from portal.store import connect, utc_now
from tests.decision_support import logged, stored
from tests.store_support import Raw, database_errors, engine
from warehouse.queries.decisions import CHANGE_APPROVAL, CHANGE_NOTIFICATION, Subject, subjects
from warehouse.scope import Scope, open_sponsor_scope

ROOT = Path(__file__).resolve().parents[2]
DECISION_ID = re.compile(r"DEC-[A-Z0-9_-]+-\d{4}")


# --- a fresh store per test, the demo warehouse read through confined scopes -------------------


@pytest.fixture(autouse=True)
def data_root(store_engine: str, fresh_store: Path) -> Path:
    return fresh_store


@pytest.fixture(scope="module")
def scopes(demo_warehouse: Path):
    """The confined scopes of the sponsors with something to decide (read-only)."""
    opened = {sponsor: open_sponsor_scope(demo_warehouse, sponsor) for sponsor in
              ("NWT", "CTB", "TSP")}  # fmt: skip
    yield opened
    for scope in opened.values():
        scope.close()


def subjects_of(scope: Scope, record_type: str) -> list[Subject]:
    found = [s for s in subjects(scope) if s.record_type == record_type]
    assert found, f"the demo plant gives {scope.sponsor_id} no {record_type}"
    return found


@pytest.fixture
def nwt(scopes) -> Scope:
    return scopes["NWT"]


@pytest.fixture
def approval(nwt) -> Subject:
    return subjects_of(nwt, CHANGE_APPROVAL)[0]


@pytest.fixture
def notices(nwt) -> list[Subject]:
    found = subjects_of(nwt, CHANGE_NOTIFICATION)
    assert len(found) >= 2, "the demo plant gives NWT two notifications"
    return found


def principal(username: str) -> users.Principal:
    found = users.principal_for(username, utc_now())
    assert found is not None, username
    return found


def sign(
    who: str,
    scope: Scope,
    subject: Subject,
    meaning: str,
    *,
    password: str | None = None,
    typed: str | None = None,
    zone: str | None = "Europe/Berlin",
    **extra,
) -> decisions.Decision:
    """Sign as the portal's form does: the record as shown, the username and password typed."""
    return decisions.sign(
        principal(who), scope, subject.record_type, subject.record_id, meaning,
        typed_username=who if typed is None else typed,
        password=users.demo_password(who) if password is None else password,
        shown_hash=extra.pop("shown_hash", subject.content_hash), zone=zone, **extra,
    )  # fmt: skip


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "portal", *args],
        capture_output=True, text=True, cwd=ROOT, env=os.environ.copy(), timeout=120,
    )  # fmt: skip


def raw() -> Raw:
    """The store as anyone with the SQLite file, or PostgreSQL's schema owner, opens it."""
    return Raw()


# --- a signature and what it says ------------------------------------------------------------


def test_a_granted_sponsor_qa_approves_and_the_signature_records_who_when_and_what(nwt, approval):
    decisions.grant("priya", principal("carla"))
    before = utc_now()
    decision = sign("priya", nwt, approval, "APPROVED", zone="Europe/Berlin")
    after = utc_now()

    assert (decision.signer, decision.signer_name) == ("priya", "Priya Raman")
    assert decision.signed_moment.utcoffset() == timedelta(0)  # stored in UTC
    assert before <= decision.signed_moment <= after
    assert decision.signer_zone == "Europe/Berlin"
    assert (decision.meaning, decision.reason, decision.supersedes) == ("APPROVED", None, None)
    assert (decision.sponsor_id, decision.record_type, decision.record_id) == (
        "NWT", CHANGE_APPROVAL, approval.record_id,
    )  # fmt: skip
    assert decision.record_label == approval.label
    # The hash of exactly what was shown, and that content itself, kept with the signature.
    assert decision.record_hash == approval.content_hash
    assert decision.record_json == approval.content
    assert hashlib.sha256(decision.record_json.encode()).hexdigest() == decision.record_hash
    assert decision.snapshot == nwt.snapshot.run_id
    assert (decision.seq, decision.decision_id) == (1, "DEC-NWT-0001")
    assert decision.prev_hash == decisions.GENESIS

    text = decision.manifestation()
    utc = decision.signed_moment
    berlin = utc.astimezone(ZoneInfo("Europe/Berlin"))
    for part in ("Approved by Priya Raman (priya)", "meaning: Approved", approval.label,
                 f"{utc:%Y-%m-%d %H:%M:%S} UTC",
                 f"{berlin:%Y-%m-%d %H:%M:%S} {berlin:%Z} (Europe/Berlin)",
                 decision.record_hash[:16], decision.snapshot, decision.decision_id):  # fmt: skip
        assert part in text, part
    assert "reason" not in text and "replaces" not in text

    # As stored, as read back, and in the access log with its chain hash.
    assert decisions.for_sponsor("NWT") == [decision]
    assert decisions.for_sponsor("CTB") == []
    (entry,) = logged("DECISION_SIGNED")
    assert (entry["username"], entry["role"], entry["sponsor_id"]) == ("priya", "sponsor_qa",
                                                                       "NWT")  # fmt: skip
    assert entry["content_hash"] == decision.row_hash
    assert entry["detail"].startswith(f"{decision.decision_id}: Approved")
    assert decisions.verify().intact


def test_the_typed_username_is_read_as_the_sign_in_reads_it(nwt, approval):
    decisions.grant("priya", "carla")
    decision = sign("priya", nwt, approval, "APPROVED", typed="  Priya ")
    assert decision.signer == "priya"


@pytest.mark.parametrize("zone", [None, "", "Mars/Olympus_Mons", "../../etc/passwd", "UTC"])
def test_a_missing_or_unknown_zone_is_recorded_as_utc(nwt, approval, zone):
    decisions.grant("priya", "carla")
    decision = sign("priya", nwt, approval, "APPROVED", zone=zone)
    assert decision.signer_zone == "UTC"
    assert f"{decision.signed_moment:%Y-%m-%d %H:%M:%S} UTC;" in decision.manifestation()


@pytest.mark.parametrize("reason", [None, "", "   \n"])
def test_a_rejection_without_a_reason_is_refused_and_nothing_is_recorded(nwt, approval, reason):
    decisions.grant("priya", "carla")
    with pytest.raises(SignatureRefused, match="needs a reason"):
        sign("priya", nwt, approval, "REJECTED", reason=reason)
    assert stored() == [] and logged("DECISION_SIGNED") == []


def test_a_rejection_with_a_reason_is_recorded_with_it(nwt, approval):
    decisions.grant("priya", "carla")
    decision = sign("priya", nwt, approval, "REJECTED", reason="  Stability data missing.  ")
    assert (decision.meaning, decision.reason) == ("REJECTED", "Stability data missing.")
    text = decision.manifestation()
    assert "Rejected by Priya Raman (priya)" in text and "meaning: Rejected" in text
    assert "; reason: Stability data missing." in text
    assert [row["reason"] for row in stored()] == ["Stability data missing."]


def test_a_change_notification_is_acknowledged(scopes, notices):
    decisions.grant("priya", "carla")
    decisions.grant("takeshi", "carla")
    mine = sign("priya", scopes["NWT"], notices[0], "ACKNOWLEDGED", zone="America/New_York")
    assert (mine.record_type, mine.meaning) == (CHANGE_NOTIFICATION, "ACKNOWLEDGED")
    assert "Acknowledged by Priya Raman (priya)" in mine.manifestation()
    assert "meaning: Acknowledged" in mine.manifestation()
    assert "(America/New_York)" in mine.manifestation()
    # Another sponsor's notification is its own record, answered in its own scope.
    theirs_subject = subjects_of(scopes["TSP"], CHANGE_NOTIFICATION)[0]
    theirs = sign("takeshi", scopes["TSP"], theirs_subject, "ACKNOWLEDGED")
    assert (theirs.sponsor_id, theirs.signer_name) == ("TSP", "Takeshi Sato")
    assert theirs.prev_hash == mine.row_hash  # one chain across sponsors
    # numbered per sponsor: TSP's number does not tell how many NWT signed before it
    assert (mine.decision_id, theirs.decision_id, theirs.seq) == ("DEC-NWT-0001",
                                                                  "DEC-TSP-0001", 2)  # fmt: skip
    assert theirs.manifestation().endswith("; decision DEC-TSP-0001.")
    assert decisions.for_sponsor("NWT") == [mine] and decisions.for_sponsor("TSP") == [theirs]
    assert decisions.verify().intact


# --- superseding -------------------------------------------------------------------------------


def test_a_superseding_decision_names_the_one_it_replaces_and_both_stay(nwt, approval):
    decisions.grant("priya", "carla")
    first = sign("priya", nwt, approval, "APPROVED")
    second = sign("priya", nwt, approval, "REJECTED", reason="New stability data.",
                  supersedes=first.decision_id)  # fmt: skip
    third = sign("priya", nwt, approval, "APPROVED", supersedes=second.decision_id)

    assert second.supersedes == first.decision_id and third.supersedes == second.decision_id
    assert f"; replaces decision {first.decision_id}." in second.manifestation()
    assert decisions.for_sponsor("NWT") == [first, second, third]  # history stays
    assert decisions.in_force(decisions.for_sponsor("NWT")) == {
        (CHANGE_APPROVAL, approval.record_id): third
    }
    assert decisions.verify().intact


@pytest.fixture
def decided(nwt, approval, notices) -> dict[str, decisions.Decision]:
    """The approval approved then rejected instead, and the first notification acknowledged."""
    decisions.grant("priya", "carla")
    approved = sign("priya", nwt, approval, "APPROVED")
    rejected = sign("priya", nwt, approval, "REJECTED", reason="Wrong method.",
                    supersedes=approved.decision_id)  # fmt: skip
    acknowledged = sign("priya", nwt, notices[0], "ACKNOWLEDGED")
    return {"approved": approved, "rejected": rejected, "acknowledged": acknowledged}


# (what is attempted, record, meaning, the decision named as replaced, expected refusal)
SUPERSEDING = [
    ("decide again without replacing", "approval", "APPROVED", None, "already decided:"),
    ("replace the older decision", "approval", "APPROVED", "approved", "already decided:"),
    ("replace an unknown decision", "approval", "APPROVED", "DEC-NWT-9999", "already decided:"),
    ("replace another record's decision", "approval", "APPROVED", "acknowledged",
     "already decided:"),
    ("replace with the same meaning", "approval", "REJECTED", "rejected",
     "already decided that way"),
    ("replace on an undecided record", "second notice", "ACKNOWLEDGED", "acknowledged",
     "no decision on this record to replace"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("record", "meaning", "replaces", "refusal"),
    [case[1:] for case in SUPERSEDING],
    ids=[case[0] for case in SUPERSEDING],
)
def test_superseding_anything_but_the_decision_in_force_is_refused(
    nwt, approval, notices, decided, record, meaning, replaces, refusal
):
    subject = approval if record == "approval" else notices[1]
    supersedes = decided[replaces].decision_id if replaces in decided else replaces
    before = stored()
    with pytest.raises(SignatureRefused, match=refusal):
        sign("priya", nwt, subject, meaning, reason="Because.", supersedes=supersedes)
    assert stored() == before
    assert decisions.verify().intact


# --- the store is append-only ------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE decision SET meaning = 'REJECTED'",
        "UPDATE decision SET record_id = 'CC-00000-I000'",
        "UPDATE decision SET signed_at = '2026-01-01T00:00:00.000000+00:00'",
        "DELETE FROM decision WHERE seq = 1",
        "DELETE FROM decision",
        "UPDATE signing_grant SET granted = 1",
        "DELETE FROM signing_grant",
    ],
)
def test_the_database_refuses_to_rewrite_a_decision_or_a_grant(nwt, approval, statement):
    decisions.grant("priya", "carla")
    decisions.withdraw("priya", "carla")
    decisions.grant("priya", "carla")
    sign("priya", nwt, approval, "APPROVED")
    before = stored()
    conn = raw()
    with pytest.raises(database_errors(), match="append-only"):
        conn.execute(statement)
    conn.close()
    # The portal's own PostgreSQL role is not even granted the statement.
    refused = "append-only" if engine() == "sqlite" else "permission denied for table"
    with pytest.raises(database_errors(), match=refused), connect() as conn:
        conn.execute(statement)
    assert stored() == before
    assert decisions.may_sign(principal("priya"))


def test_verify_is_intact_after_several_signatures(scopes, approval, notices):
    for user in ("priya", "takeshi"):
        decisions.grant(user, "carla")
    first = sign("priya", scopes["NWT"], approval, "APPROVED")
    for notice in notices:
        sign("priya", scopes["NWT"], notice, "ACKNOWLEDGED")
    tsp_notice = subjects_of(scopes["TSP"], CHANGE_NOTIFICATION)[0]
    sign("takeshi", scopes["TSP"], tsp_notice, "ACKNOWLEDGED")
    sign("priya", scopes["NWT"], approval, "REJECTED", reason="Withdrawn by our QA.",
         supersedes=first.decision_id)  # fmt: skip
    rows = len(notices) + 3

    report = decisions.verify()
    assert report.intact and report.rows == rows, report.problems
    done = cli("signatures", "verify")
    assert done.returncode == 0, done.stderr
    assert f"decision chain intact: {rows} signed decision(s)" in done.stdout


def test_verify_of_an_empty_store_is_intact():
    assert decisions.verify() == decisions.ChainReport(0, [])
    assert cli("signatures", "verify").returncode == 0


# --- tampering with the store, found by `python -m portal signatures verify` --------------------


@pytest.fixture
def chain(scopes, approval, notices) -> list[decisions.Decision]:
    """Three signatures - NWT's approval, NWT's first notification, TSP's notification - and
    NWT's second notification left undecided."""
    for user in ("priya", "takeshi"):
        decisions.grant(user, "carla")
    tsp_notice = subjects_of(scopes["TSP"], CHANGE_NOTIFICATION)[0]
    return [
        sign("priya", scopes["NWT"], approval, "APPROVED"),
        sign("priya", scopes["NWT"], notices[0], "ACKNOWLEDGED"),
        sign("takeshi", scopes["TSP"], tsp_notice, "ACKNOWLEDGED"),
    ]


def _edit_and_rehash(seq: int):
    """Rewrite one row's meaning and give it a freshly computed hash of its new content."""

    def tamper(conn: Raw, notices: list[Subject]) -> None:
        row = dict(conn.execute("SELECT * FROM decision WHERE seq = ?", (seq,)).fetchone())
        row |= {"meaning": "REJECTED", "reason": "Forged."}
        conn.unguard()
        conn.execute(
            "UPDATE decision SET meaning = ?, reason = ?, row_hash = ? WHERE seq = ?",
            (row["meaning"], row["reason"], decisions._row_hash(row), seq),
        )

    return tamper


def _replace_row(conn: Raw, notices: list[Subject]) -> None:
    # SQLite's INSERT OR REPLACE deletes the old row without firing the BEFORE DELETE trigger;
    # the store refuses it by a BEFORE INSERT trigger (test below). With that dropped too,
    # verify() still stands in the way. PostgreSQL's upsert is an UPDATE, under its trigger.
    row = dict(conn.execute("SELECT * FROM decision WHERE seq = 2").fetchone())
    row["meaning"] = "REJECTED"
    if engine() == "sqlite":
        conn.execute("DROP TRIGGER decision_no_replace")
    else:
        conn.unguard()
    conn.execute(_replace("decision", "seq", row), tuple(row.values()))


def _replace(table: str, key: str, row: dict) -> str:
    """The statement that puts `row` in place of the row with its key, on the store's engine."""
    columns, marks = ", ".join(row), ", ".join("?" * len(row))
    if engine() == "sqlite":
        return f"INSERT OR REPLACE INTO {table} ({columns}) VALUES ({marks})"
    return (
        f"INSERT INTO {table} ({columns}) OVERRIDING SYSTEM VALUE VALUES ({marks}) "
        f"ON CONFLICT ({key}) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in row if c != key)
    )


@pytest.mark.parametrize(
    ("table", "key"), [("decision", "seq"), ("signing_grant", "id"), ("access_log", "id")]
)
def test_insert_or_replace_cannot_rewrite_a_row(chain, table, key):
    """SQLite's REPLACE deletes the row it meets without a delete trigger firing: refused on
    insert. PostgreSQL's upsert updates the row it meets: refused by the update trigger."""
    conn = raw()
    row = dict(conn.execute(f"SELECT * FROM {table} ORDER BY {key} LIMIT 1").fetchone())
    before = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    with pytest.raises(database_errors(), match="append-only"):
        conn.execute(_replace(table, key, row), tuple(row.values()))
    assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == before
    conn.close()


# (tampering, SQL run on a raw connection with the append-only triggers lifted, or a function,
# chain positions the report must name)
TAMPERING = [
    ("meaning edited", "UPDATE decision SET meaning = 'REJECTED' WHERE seq = 2", {2}),
    ("reason added", "UPDATE decision SET reason = 'Forged.' WHERE seq = 1", {1}),
    ("signer swapped", "UPDATE decision SET signer = 'bruno', "
     "signer_name = 'Bruno Costa' WHERE seq = 1", {1}),
    ("signing time moved", "UPDATE decision SET "
     "signed_at = '2026-01-01T00:00:00.000000+00:00' WHERE seq = 2", {2}),
    ("signature copied to another record", "UPDATE decision SET record_id = "
     "'{other}' WHERE seq = 2", {2}),
    ("record shown rewritten", "UPDATE decision SET record_json = record_json || ' ' "
     "WHERE seq = 1", {1}),
    ("newest row deleted", "DELETE FROM decision WHERE seq = 3", {3}),
    ("middle row deleted", "DELETE FROM decision WHERE seq = 2", {2, 3}),
    ("newest row edited and re-hashed", _edit_and_rehash(3), {3}),
    ("middle row edited and re-hashed", _edit_and_rehash(2), {2, 3}),
    ("row replaced by INSERT OR REPLACE", _replace_row, {2}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("tamper", "named"), [case[1:] for case in TAMPERING], ids=[case[0] for case in TAMPERING]
)
def test_tampering_is_named_by_signatures_verify(chain, notices, tamper, named):
    conn = raw()
    if callable(tamper):
        tamper(conn, notices)
    else:
        conn.unguard()
        conn.script(tamper.format(other=notices[1].record_id))
    conn.close()

    done = cli("signatures", "verify")
    assert done.returncode == 1, done.stdout + done.stderr
    first, *problems = done.stdout.splitlines()
    assert first.startswith("decision chain BROKEN:")
    assert problems and all(line.startswith("  ") for line in problems)
    # Each line names one decision; together they name exactly the tampered ones.
    per_line = [DECISION_ID.findall(line) for line in problems]
    assert all(len(found) == 1 for found in per_line), problems
    assert {found[0] for found in per_line} == {chain[seq - 1].decision_id for seq in named}
    assert decisions.verify().problems == [line.strip() for line in problems]


def test_a_deleted_newest_row_is_found_by_the_access_log_alone(chain):
    conn = raw()
    conn.unguard()
    conn.execute("DELETE FROM decision WHERE seq = 3")
    conn.close()
    report = decisions.verify()
    assert report.rows == 2
    (problem,) = report.problems  # the chain itself still links: only the log knows
    assert problem.startswith("access log entry ") and chain[2].decision_id in problem
    assert problem.endswith("its decision is missing from the chain")


def test_a_signature_copied_onto_a_new_row_outside_sign_is_reported(chain, notices):
    """Someone with the file appends a copy of a signature onto an undecided record, with a
    correctly recomputed row hash: no signing ever happened, so no DECISION_SIGNED entry."""
    conn = raw()
    last = dict(conn.execute("SELECT * FROM decision ORDER BY seq DESC LIMIT 1").fetchone())
    copied = dict(conn.execute("SELECT * FROM decision WHERE seq = 2").fetchone())
    other = notices[1]
    seq = last["seq"] + 1
    copied |= {
        "seq": seq, "decision_id": "DEC-NWT-0003", "record_id": other.record_id,
        "record_label": other.label, "record_json": other.content,
        "record_hash": other.content_hash, "prev_hash": last["row_hash"],
    }  # fmt: skip
    copied["row_hash"] = decisions._row_hash(copied)
    conn.execute(
        f"INSERT INTO decision ({', '.join(copied)}) VALUES ({', '.join('?' * len(copied))})",
        tuple(copied.values()),
    )
    conn.close()
    report = decisions.verify()
    assert any(copied["decision_id"] in problem for problem in report.problems), report


# --- the outbox to the CMO's QMS ---------------------------------------------------------------


def outbox_files(out: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(out.iterdir())}


def test_export_writes_one_json_and_one_csv_per_decision_and_a_rerun_writes_nothing(
    chain, approval, tmp_path
):
    out = tmp_path / "outbox"
    done = cli("decisions", "export", "--since", "2000-01-01", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        f"3 decision(s) in the outbox {out}: 6 file(s) written, 0 already there and identical"
    )
    files = outbox_files(out)
    assert sorted(files) == sorted(f"{d.decision_id}.{ext}" for d in chain
                                   for ext in ("json", "csv"))  # fmt: skip

    name = chain[0].decision_id
    first = json.loads(files[f"{name}.json"])
    assert first["decision_id"] == name and first["meaning"] == "APPROVED"
    assert first["meaning_words"] == "Approved"
    assert first["signature"] == chain[0].manifestation()
    assert first["record_hash"] == approval.content_hash and first["row_hash"] == chain[0].row_hash
    assert first["shown"] == [list(pair) for pair in approval.shown]
    (row,) = list(csv.DictReader(io.StringIO(files[f"{name}.csv"].decode())))
    assert list(row) == sorted(row) and "shown" not in row
    assert (row["decision_id"], row["signer"], row["signature"]) == (
        name, "priya", chain[0].manifestation(),
    )  # fmt: skip

    again = cli("decisions", "export", "--since", "2000-01-01", "--out", str(out))
    assert again.returncode == 0, again.stderr
    assert "0 file(s) written, 6 already there and identical" in again.stdout
    assert outbox_files(out) == files  # byte for byte
    assert decisions.export_outbox(None, out) == (3, 0)
    assert outbox_files(out) == files


def test_export_since_takes_only_the_decisions_signed_from_then(chain, tmp_path):
    assert decisions.export_outbox(chain[1].signed_moment, tmp_path / "a") == (2, 4)
    assert sorted(outbox_files(tmp_path / "a")) == sorted(
        f"{d.decision_id}.{ext}" for d in chain[1:] for ext in ("json", "csv")
    )
    later = chain[2].signed_moment + timedelta(microseconds=1)
    assert decisions.export_outbox(later, tmp_path / "b") == (0, 0)
    # A naive --since is read as UTC.
    naive = later.astimezone(UTC).replace(tzinfo=None).isoformat()
    done = cli("decisions", "export", "--since", naive, "--out", str(tmp_path / "c"))
    assert done.returncode == 0 and done.stdout.startswith("0 decision(s)"), done.stdout


def test_a_partial_export_is_resumed(chain, tmp_path):
    out = tmp_path / "outbox"
    decisions.export_outbox(None, out)
    whole = outbox_files(out)
    (out / f"{chain[1].decision_id}.json").unlink()
    (out / f"{chain[2].decision_id}.csv").unlink()
    done = cli("decisions", "export", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "2 file(s) written, 4 already there and identical" in done.stdout
    assert outbox_files(out) == whole
    assert not list(out.glob(".*"))  # no partial file left behind


def test_a_different_file_under_a_decisions_name_is_never_overwritten(chain, tmp_path):
    out = tmp_path / "outbox"
    out.mkdir()
    target = out / f"{chain[0].decision_id}.json"
    foreign = json.dumps({"decision_id": chain[0].decision_id, "meaning": "REJECTED"}).encode()
    target.write_bytes(foreign)
    refusal = f"{target.name} exists with different content"
    with pytest.raises(FileExistsError, match=refusal):
        decisions.export_outbox(None, out)
    done = cli("decisions", "export", "--out", str(out))
    assert done.returncode == 2
    assert f"error: {refusal}" in done.stderr
    assert target.read_bytes() == foreign


# --- the password, every signature, and the lockout ---------------------------------------------


def test_wrong_passwords_lock_the_account_and_a_locked_account_cannot_sign(
    nwt, approval, monkeypatch
):
    monkeypatch.setenv("PORTAL_LOCKOUT_FAILURES", "3")
    decisions.grant("priya", "carla")
    for attempt in (1, 2):
        with pytest.raises(SignatureRefused, match="Wrong username or password") as refused:
            sign("priya", nwt, approval, "APPROVED", password=f"not-my-password-{attempt}")
        assert not refused.value.locked and "locked" not in str(refused.value)
        assert lockout.locked_until("priya", utc_now()) is None
    with pytest.raises(SignatureRefused, match="now locked") as refused:
        sign("priya", nwt, approval, "APPROVED", password="not-my-password-3")
    assert refused.value.locked
    until = lockout.locked_until("priya", utc_now())
    assert until is not None and until > utc_now() + timedelta(minutes=14)  # sign-in too

    with pytest.raises(SignatureRefused, match="locked") as still:
        sign("priya", nwt, approval, "APPROVED")  # the right password, while locked
    assert still.value.locked  # so the page signs that session out too

    assert stored() == [] and logged("DECISION_SIGNED") == []
    failures = logged("SIGNATURE_FAILED")
    assert len(failures) == 4
    assert {(f["username"], f["sponsor_id"]) for f in failures} == {("priya", "NWT")}
    assert [f["detail"] for f in failures] == 3 * [
        f"{approval.label}: wrong username or password"
    ] + [f"{approval.label}: account locked"]
    (locked,) = logged("LOCKED")
    assert locked["username"] == "priya"


def test_a_right_password_clears_earlier_failures(nwt, approval, notices, monkeypatch):
    monkeypatch.setenv("PORTAL_LOCKOUT_FAILURES", "3")
    decisions.grant("priya", "carla")
    for _ in range(2):
        with pytest.raises(SignatureRefused, match="Wrong username or password"):
            sign("priya", nwt, approval, "APPROVED", password="not-my-password")
    sign("priya", nwt, approval, "APPROVED")
    with pytest.raises(SignatureRefused, match="Wrong username or password") as refused:
        sign("priya", nwt, notices[0], "ACKNOWLEDGED", password="not-my-password")
    assert not refused.value.locked  # the count started again after the signature
    assert len(stored()) == 1


# --- who may sign ------------------------------------------------------------------------------


@pytest.mark.parametrize("username", ["tom", "carla", "elena", "marco", "sam"])
def test_only_a_sponsors_qa_user_can_be_granted(username):
    with pytest.raises(SignatureRefused, match="Only a sponsor's QA users may sign"):
        decisions.grant(username, principal("carla"))
    with connect() as conn:
        assert conn.execute("SELECT count(*) FROM signing_grant").fetchone()[0] == 0
    assert not decisions.may_sign(principal(username))


def test_a_grant_needs_a_known_user_and_cmo_staff_to_give_it():
    with pytest.raises(SignatureRefused, match="There is no user 'nobody'"):
        decisions.grant("nobody", "carla")
    for actor in ("bruno", "tom", "marco"):
        with pytest.raises(SignatureRefused, match="Only CMO staff or the administrator"):
            decisions.grant("priya", principal(actor))
    assert not decisions.may_sign(principal("priya"))
    for actor in ("carla", "elena", "sam"):
        decisions.grant("priya", principal(actor))
    assert decisions.may_sign(principal("priya"))


def test_a_grant_lets_its_user_sign_for_its_own_sponsor_only():
    decisions.grant("priya", "carla")
    assert decisions.may_sign(principal("priya"))
    assert not decisions.may_sign(principal("bruno"))
    assert not decisions.may_sign(replace(principal("priya"), sponsor_id="CTB"))
    assert not decisions.may_sign(replace(principal("priya"), role="auditor"))


def test_withdraw_ends_the_permission_and_signatures_given_stay(nwt, notices):
    decisions.grant("priya", principal("carla"))
    given = sign("priya", nwt, notices[0], "ACKNOWLEDGED")
    decisions.withdraw("priya", principal("carla"))
    assert not decisions.may_sign(principal("priya"))
    with pytest.raises(SignatureRefused, match="do not have permission"):
        sign("priya", nwt, notices[1], "ACKNOWLEDGED")
    assert decisions.for_sponsor("NWT") == [given]
    assert decisions.verify().intact
    assert [(e["event"], e["username"], e["sponsor_id"], e["detail"])
            for e in logged("SIGNING_GRANTED") + logged("SIGNING_WITHDRAWN")] == [
        ("SIGNING_GRANTED", "carla", "NWT", "priya"),
        ("SIGNING_WITHDRAWN", "carla", "NWT", "priya"),
    ]  # fmt: skip
    decisions.grant("priya", "carla")  # granted again: the newest grant is in force
    assert decisions.may_sign(principal("priya"))


def test_the_signing_commands_grant_and_withdraw():
    done = cli("signing", "grant", "priya", "--by", "carla")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "priya may now sign decisions for their sponsor"
    assert decisions.may_sign(principal("priya"))
    (entry,) = logged("SIGNING_GRANTED")
    assert (entry["username"], entry["role"], entry["detail"]) == ("carla", "command_line",
                                                                   "priya")  # fmt: skip

    refused = cli("signing", "grant", "tom", "--by", "carla")
    assert refused.returncode == 2 and "error: Only a sponsor's QA users" in refused.stderr

    done = cli("signing", "withdraw", "priya", "--by", "carla")
    assert done.returncode == 0, done.stderr
    assert not decisions.may_sign(principal("priya"))
