"""The signing path (portal.decisions.sign) attacked: every attempt to sign what one may not,
as someone one is not, or twice, is refused, records nothing, and tells nothing.

Each line of ATTACKS is one attempt with the refusal it must get. After every attempt no
decision is stored, the refusal is logged against the one who tried, a failure counts towards
the lockout only when the password check failed, and neither the refusal nor anything NWT's
users can read in the access log names CTB's change, product or company. Then replays, and
two signers of one sponsor racing for the same record, from two threads and from two real
processes. Real SQLite store (a fresh one per test), real confined DuckDB scopes over the demo
warehouse, real bcrypt; no mocks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import pytest

from portal import access_log, decisions, lockout, users
from portal.decisions import SignatureRefused
from portal.store import connect, utc_now
from tests.decision_support import logged, stored
from warehouse.queries.decisions import CHANGE_APPROVAL, CHANGE_NOTIFICATION, Subject, subjects
from warehouse.scope import Scope, open_sponsor_scope

ROOT = Path(__file__).resolve().parents[2]
NADIA = ("nadia", "Nadia Ruiz", "nadia-signs-2026")  # a second NWT sponsor QA user


# --- a fresh store per test, the demo warehouse read through confined scopes -------------------


@pytest.fixture(autouse=True)
def data_root(fresh_store: Path) -> Path:
    return fresh_store


@pytest.fixture(scope="module")
def scopes(demo_warehouse: Path):
    opened = {sponsor: open_sponsor_scope(demo_warehouse, sponsor) for sponsor in ("NWT", "CTB")}
    yield opened
    for scope in opened.values():
        scope.close()


def subject_of(scope: Scope, record_type: str) -> Subject:
    found = [s for s in subjects(scope) if s.record_type == record_type]
    assert found, f"the demo plant gives {scope.sponsor_id} no {record_type}"
    return found[0]


@pytest.fixture(scope="module")
def records(scopes) -> dict[str, Subject]:
    return {
        "NWT approval": subject_of(scopes["NWT"], CHANGE_APPROVAL),
        "NWT notice": subject_of(scopes["NWT"], CHANGE_NOTIFICATION),
        "CTB approval": subject_of(scopes["CTB"], CHANGE_APPROVAL),
    }


@pytest.fixture(scope="module")
def ctb_secrets(scopes, records) -> set[str]:
    """What NWT must never learn about CTB from a refusal: its change number, its product
    and its name (the demo plant's, read from CTB's own scope)."""
    shown = dict(records["CTB approval"].shown)
    change_number = records["CTB approval"].label.split(",")[0]
    (name,) = scopes["CTB"].frame("ctb name", "SELECT name FROM sponsor")["name"].to_list()
    secrets = {change_number, shown["Your product"], name, records["CTB approval"].label}
    assert all(len(secret) >= 8 for secret in secrets), secrets
    return secrets


def principal(username: str) -> users.Principal:
    found = users.principal_for(username, utc_now())
    assert found is not None, username
    return found


def failures() -> dict[str, int]:
    """Failed attempts counted towards the lockout, per username."""
    with connect() as conn:
        rows = conn.execute("SELECT username, failures FROM signin_failure")
        return {row["username"]: row["failures"] for row in rows}


def add_nadia() -> None:
    username, name, password = NADIA
    users.add_user(username, name, "sponsor_qa", password, sponsor_id="NWT")


def password_of(username: str) -> str:
    return NADIA[2] if username == NADIA[0] else users.demo_password(username)


# --- the attack table --------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """One call of decisions.sign; every field defaults to priya's own, honest signature."""

    signer: str = "priya"
    setup: tuple[tuple[str, str], ...] = (("grant", "priya"),)  # (action, username)
    claims_sponsor: str | None = None  # the principal's sponsor, rewritten
    scope: str = "NWT"  # whose scope object is passed
    record: str = "NWT approval"  # a key of `records`, or a literal record id
    record_type: str | None = None  # default: the record's own
    meaning: str = "APPROVED"
    typed: str | None = None  # default: the signer's username
    password_of: str | None = None  # whose password is typed; default: the signer's
    password: str | None = None  # a literal password instead
    shown: str = "as shown"  # or "another record", "older content", or a literal hash


def setup(action: str, username: str) -> None:
    if action == "grant":
        decisions.grant(username, "carla")
    elif action == "withdraw":
        decisions.withdraw(username, "carla")
    elif action == "forge":  # a grant row written into the store, past grant()'s checks
        with connect() as conn:
            conn.execute(
                "INSERT INTO signing_grant (username, sponsor_id, granted, at, by) "
                "VALUES (?, 'NWT', 1, '2026-11-26T00:00:00.000000+00:00', 'mallory')",
                (username,),
            )
    elif action == "disable":
        users.disable_user(username)
    else:
        raise AssertionError(action)


NOT_QA = "Only the sponsor's QA users with permission to sign"
NO_GRANT = "You do not have permission to sign"
NOT_AWAITED = "This record does not await your decision"
NOT_POSSIBLE = "That decision is not possible for this record"
CHANGED = "This record changed since it was shown to you"
WRONG = "Wrong username or password"

# (attack, the attempt, the refusal it gets)
ATTACKS = [
    ("sign without a grant", Attempt(setup=()), NO_GRANT),
    ("grant withdrawn", Attempt(setup=(("grant", "priya"), ("withdraw", "priya"))), NO_GRANT),
    ("only another sponsor's QA granted", Attempt(setup=(("grant", "bruno"),)), NO_GRANT),
    ("auditor signs", Attempt(signer="tom"), NOT_QA),
    ("auditor with a grant forged in the store", Attempt(signer="tom",
     setup=(("forge", "tom"),)), NOT_QA),
    ("CMO quality signs", Attempt(signer="carla"), NOT_QA),
    ("CMO user with a grant forged in the store", Attempt(signer="carla",
     setup=(("forge", "carla"),)), NOT_QA),
    ("CMO management signs", Attempt(signer="elena"), NOT_QA),
    ("administrator signs", Attempt(signer="sam"), NOT_QA),
    ("CTB record id in NWT's own scope", Attempt(record="CTB approval"), NOT_AWAITED),
    ("CTB's scope object and record", Attempt(scope="CTB", record="CTB approval"), NOT_AWAITED),
    ("CTB's scope object, own record id", Attempt(scope="CTB"), NOT_AWAITED),
    ("principal's sponsor rewritten to CTB", Attempt(claims_sponsor="CTB", scope="CTB",
     record="CTB approval"), NO_GRANT),
    ("approval's id passed as a notification", Attempt(record_type=CHANGE_NOTIFICATION,
     meaning="ACKNOWLEDGED"), NOT_AWAITED),
    ("made-up record id", Attempt(record="CC-99999-I001"), NOT_AWAITED),
    ("SQL in the record id", Attempt(record="' OR 1=1 --"), NOT_AWAITED),
    ("APPROVED on a notification", Attempt(record="NWT notice"), NOT_POSSIBLE),
    ("REJECTED on a notification", Attempt(record="NWT notice", meaning="REJECTED"),
     NOT_POSSIBLE),
    ("ACKNOWLEDGED on an approval", Attempt(meaning="ACKNOWLEDGED"), NOT_POSSIBLE),
    ("made-up meaning", Attempt(meaning="SIGNED"), NOT_POSSIBLE),
    ("meaning in lower case", Attempt(meaning="approved"), NOT_POSSIBLE),
    ("hash shown of another record", Attempt(shown="another record"), CHANGED),
    ("hash shown of older content", Attempt(shown="older content"), CHANGED),
    ("no hash shown", Attempt(shown=""), CHANGED),
    ("another sponsor's user: name and password", Attempt(typed="bruno", password_of="bruno"),
     WRONG),
    ("same sponsor's auditor: name and password", Attempt(typed="tom", password_of="tom"),
     WRONG),
    ("own name, another user's password", Attempt(password_of="bruno"), WRONG),
    ("own name, no password", Attempt(password=""), WRONG),
    ("own name, password in upper case", Attempt(password="PRIYA-DEMO-2026"), WRONG),
    ("no username typed", Attempt(typed=""), WRONG),
    ("account disabled since signing in", Attempt(setup=(("grant", "priya"),
     ("disable", "priya"))), "Your account is no longer active"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("attempt", "refusal"), [a[1:] for a in ATTACKS], ids=[a[0] for a in ATTACKS]
)
def test_attack_is_refused_records_nothing_and_tells_nothing(
    scopes, records, ctb_secrets, attempt: Attempt, refusal: str
):
    who = principal(attempt.signer)  # signed in before anything below happened
    if attempt.claims_sponsor:
        who = replace(who, sponsor_id=attempt.claims_sponsor)
    for action, username in attempt.setup:
        setup(action, username)
    subject = records.get(attempt.record)
    own = records["NWT approval"] if subject is None else subject
    shown = {
        "as shown": own.content_hash,
        "another record": records["NWT notice"].content_hash,
        "older content": replace(
            own, shown=(*own.shown[:-1], (own.shown[-1][0], own.shown[-1][1] + " (earlier)"))
        ).content_hash,
    }.get(attempt.shown, attempt.shown)
    before = utc_now()

    with pytest.raises(SignatureRefused) as refused:
        decisions.sign(
            who, scopes[attempt.scope], attempt.record_type or own.record_type,
            own.record_id if subject else attempt.record, attempt.meaning,
            typed_username=attempt.signer if attempt.typed is None else attempt.typed,
            password=attempt.password if attempt.password is not None
            else password_of(attempt.password_of or attempt.signer),
            shown_hash=shown, zone="Europe/London",
        )  # fmt: skip
    message = str(refused.value)
    assert message.startswith(refusal), message

    # Nothing recorded, the attempt logged against the one who made it.
    assert stored() == [] and logged("DECISION_SIGNED") == []
    (failed,) = logged("SIGNATURE_FAILED")
    assert (failed["username"], failed["role"], failed["sponsor_id"]) == (
        who.username, who.role, who.sponsor_id,
    )  # fmt: skip
    # Only a failed password check counts towards the lockout, and against the signer.
    assert failures() == ({"priya": 1} if refusal == WRONG else {})
    # Nothing about CTB in what NWT's users are told or can read in their access log.
    nwt_reads = access_log.entries_for_sponsor("NWT", before, utc_now() + timedelta(minutes=1))
    readable = [message, *(json.dumps(entry) for entry in nwt_reads)]
    for text in readable:
        for secret in ctb_secrets:
            assert secret not in text, (secret, text)
    assert decisions.verify().intact


def test_a_rejection_without_a_reason_is_refused_before_anything_is_checked(scopes, records):
    decisions.grant("priya", "carla")
    with pytest.raises(SignatureRefused, match="A rejection needs a reason"):
        decisions.sign(
            principal("priya"), scopes["NWT"], CHANGE_APPROVAL, records["NWT approval"].record_id,
            "REJECTED", typed_username="priya", password="wrong password",
            shown_hash=records["NWT approval"].content_hash, zone=None,
        )  # fmt: skip
    assert stored() == [] and failures() == {}  # no password was checked, none counted


def test_another_users_name_and_password_count_as_the_signers_failures(
    scopes, records, monkeypatch
):
    monkeypatch.setenv("PORTAL_LOCKOUT_FAILURES", "3")
    for username in ("priya", "bruno"):
        decisions.grant(username, "carla")
    mine = records["NWT approval"]
    outcomes = []
    for _ in range(3):
        with pytest.raises(SignatureRefused, match=WRONG) as refused:
            decisions.sign(
                principal("priya"), scopes["NWT"], mine.record_type, mine.record_id,
                "APPROVED", typed_username="bruno", password=users.demo_password("bruno"),
                shown_hash=mine.content_hash, zone=None,
            )  # fmt: skip
        outcomes.append(refused.value.locked)
    assert outcomes == [False, False, True]
    assert lockout.locked_until("priya", utc_now()) is not None
    assert lockout.locked_until("bruno", utc_now()) is None
    # Bruno, whose password was used, still signs his own sponsor's record.
    theirs = records["CTB approval"]
    decision = decisions.sign(
        principal("bruno"), scopes["CTB"], theirs.record_type, theirs.record_id, "APPROVED",
        typed_username="bruno", password=users.demo_password("bruno"),
        shown_hash=theirs.content_hash, zone=None,
    )  # fmt: skip
    assert [row["decision_id"] for row in stored()] == [decision.decision_id]
    assert {e["username"] for e in logged("SIGNATURE_FAILED")} == {"priya"}


# --- replays -----------------------------------------------------------------------------------


def test_a_replayed_signature_is_refused_as_already_decided(scopes, records):
    decisions.grant("priya", "carla")
    subject = records["NWT approval"]
    request = dict(
        principal=principal("priya"), scope=scopes["NWT"], record_type=subject.record_type,
        record_id=subject.record_id, meaning="APPROVED", typed_username="priya",
        password=users.demo_password("priya"), shown_hash=subject.content_hash,
        zone="Asia/Tokyo",
    )  # fmt: skip
    first = decisions.sign(**request)
    for _ in range(2):
        with pytest.raises(SignatureRefused, match="already decided") as refused:
            decisions.sign(**request)
        assert first.decision_id in str(refused.value)  # says which decision stands
    assert [row["decision_id"] for row in stored()] == [first.decision_id]

    # A replayed superseding request replaces nothing a second time.
    superseding = request | {"meaning": "REJECTED", "reason": "Changed our mind.",
                             "supersedes": first.decision_id}  # fmt: skip
    second = decisions.sign(**superseding)
    with pytest.raises(SignatureRefused, match="already decided"):
        decisions.sign(**superseding)
    assert [row["decision_id"] for row in stored()] == [first.decision_id, second.decision_id]
    failed = logged("SIGNATURE_FAILED")
    assert len(failed) == 3 and all("already decided" in e["detail"] for e in failed)
    assert decisions.verify().intact


# --- two signers of one sponsor, at once ---------------------------------------------------------


@pytest.fixture(scope="module")
def rounds(scopes) -> list[tuple[Subject, str]]:
    """Records NWT may decide, of every kind, each raced for once: (record, meaning)."""
    found, kinds = [], set()
    for subject in subjects(scopes["NWT"]):
        if subject.record_type not in kinds or len(found) < 4:
            found.append((subject, subject.meanings[0]))
            kinds.add(subject.record_type)
    assert {CHANGE_APPROVAL, CHANGE_NOTIFICATION} <= kinds
    return found


def _race_in_threads(scope: Scope, rounds, signers: tuple[str, ...]) -> list[list]:
    """Per round, one thread per signer, released together by a barrier once signed in."""

    def attempt(username: str, subject: Subject, meaning: str, barrier: threading.Barrier):
        who = principal(username)
        barrier.wait(timeout=30)
        try:
            return decisions.sign(
                who, scope, subject.record_type, subject.record_id, meaning,
                typed_username=username, password=password_of(username),
                shown_hash=subject.content_hash, zone=None,
            ).decision_id  # fmt: skip
        except SignatureRefused as refused:
            return refused

    outcomes = []
    with ThreadPoolExecutor(len(signers)) as pool:
        for subject, meaning in rounds:
            barrier = threading.Barrier(len(signers))
            futures = [pool.submit(attempt, username, subject, meaning, barrier)
                       for username in signers]  # fmt: skip
            outcomes.append([future.result(timeout=60) for future in futures])
    return outcomes


SIGNER = r"""
import json, sys, time
from pathlib import Path
from portal import decisions, users
from portal.store import utc_now
from warehouse.scope import open_sponsor_scope

warehouse, username, password, rounds, go = sys.argv[1:]
scope = open_sponsor_scope(Path(warehouse), "NWT")
who = users.principal_for(username, utc_now())
for number, (record_type, record_id, meaning, shown_hash) in enumerate(json.loads(rounds)):
    print(f"ready {number}", flush=True)
    released, deadline = Path(go) / str(number), time.monotonic() + 60
    while not released.exists():
        if time.monotonic() > deadline:
            sys.exit("never released")
        time.sleep(0.0005)
    try:
        decision = decisions.sign(who, scope, record_type, record_id, meaning,
                                  typed_username=username, password=password,
                                  shown_hash=shown_hash, zone=None)
        print(json.dumps({"signed": decision.decision_id}), flush=True)
    except decisions.SignatureRefused as refused:
        print(json.dumps({"refused": str(refused)}), flush=True)
"""


def _race_in_processes(warehouse: Path, rounds, signers: tuple[str, ...], work: Path):
    """One process per signer, each signing every round; per round, all are released at once
    by a file appearing, after each said it is ready."""
    go = work / "go"
    go.mkdir()
    plan = json.dumps([(s.record_type, s.record_id, meaning, s.content_hash)
                       for s, meaning in rounds])  # fmt: skip
    children = []
    for number, username in enumerate(signers):
        with open(work / f"stderr-{number}", "w") as stderr:
            children.append(subprocess.Popen(
                [sys.executable, "-c", SIGNER, str(warehouse), username, password_of(username),
                 plan, str(go)],
                stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=ROOT,
                env=os.environ | {"PYTHONPATH": str(ROOT)},
            ))  # fmt: skip
    outcomes = []
    try:
        for number in range(len(rounds)):
            for child in children:
                assert child.stdout.readline().strip() == f"ready {number}", [
                    path.read_text() for path in sorted(work.glob("stderr-*"))
                ]
            (go / str(number)).touch()
            results = [json.loads(child.stdout.readline()) for child in children]
            outcomes.append([r.get("signed") or SignatureRefused(r["refused"]) for r in results])
        for child in children:
            assert child.wait(timeout=60) == 0
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
    return outcomes


@pytest.mark.parametrize("signers", [("priya", "nadia"), ("priya", "priya")],
                         ids=["two signers", "one signer in two tabs"])  # fmt: skip
@pytest.mark.parametrize("how", ["threads", "processes"])
def test_a_race_for_one_record_gives_one_decision(
    store_engine, scopes, rounds, demo_warehouse, tmp_path, how, signers
):
    add_nadia()
    for username in ("priya", "nadia"):
        decisions.grant(username, "carla")
    if how == "threads":
        outcomes = _race_in_threads(scopes["NWT"], rounds, signers)
    else:
        outcomes = _race_in_processes(demo_warehouse, rounds, signers, tmp_path)

    rows = stored()
    assert len(rows) == len(rounds)  # one decision per record, however the race went
    for (subject, meaning), outcome, row in zip(rounds, outcomes, rows, strict=True):
        signed = [o for o in outcome if isinstance(o, str)]
        refused = [str(o) for o in outcome if isinstance(o, SignatureRefused)]
        assert len(signed) == 1 and len(refused) == len(signers) - 1, outcome
        assert (row["decision_id"], row["record_id"], row["meaning"]) == (
            signed[0], subject.record_id, meaning,
        )  # fmt: skip
        assert row["signer"] in signers
        assert all("already decided" in r and signed[0] in r for r in refused), refused
    assert len(logged("DECISION_SIGNED")) == len(rounds)
    failed = logged("SIGNATURE_FAILED")
    assert len(failed) == len(rounds) * (len(signers) - 1)
    assert all("already decided" in entry["detail"] for entry in failed)
    assert decisions.verify().intact
