"""Sponsor decisions as Part 11 electronic signatures, in an append-only hash chain.

A decision is signed by a sponsor QA user whom CMO staff granted "may sign" for that sponsor,
with the username and password entered again for every signature (21 CFR 11.200(a)), the
meaning stated, and the hash of exactly what was shown (warehouse.queries.decisions.Subject).
Rows are only ever appended (store triggers); each row's hash covers the previous row's, so
`verify()` finds any edit, deletion or copy, and the access log's DECISION_SIGNED entries
(append-only too) name every row hash, so even the newest row cannot vanish unseen.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import bcrypt
import polars as pl

from portal import access_log, lockout
from portal.store import Connection, Row, begin_write, connect, from_text, to_text, utc_now
from portal.users import DEMO_SPONSOR_USERS, Principal, User, get_user
from warehouse.queries.decision_receipts import receipts
from warehouse.queries.decisions import EVENT_KINDS, MEANING_WORDS, Subject, subjects
from warehouse.scope import Scope

GENESIS = "0" * 64
# The fields a row's hash covers, in order: everything but the hash itself.
CHAINED = (
    "seq", "decision_id", "sponsor_id", "record_type", "record_id", "record_label",
    "record_json", "record_hash", "meaning", "reason", "supersedes", "signer", "signer_name",
    "signed_at", "signer_zone", "snapshot", "prev_hash",
)  # fmt: skip
SIGNING_ROLE = "sponsor_qa"


class SignatureRefused(Exception):
    """A signature that was not recorded; the message tells the signer why, in words."""

    def __init__(self, message: str, *, locked: bool = False):
        super().__init__(message)
        self.locked = locked


class ChainBroken(Exception):
    """The stored decisions do not match their hash chain."""


@dataclass(frozen=True)
class Decision:
    """One signed decision as stored, with its place in the chain."""

    seq: int
    decision_id: str
    sponsor_id: str
    record_type: str
    record_id: str
    record_label: str
    record_json: str
    record_hash: str
    meaning: str
    reason: str | None
    supersedes: str | None
    signer: str
    signer_name: str
    signed_at: str  # ISO, UTC
    signer_zone: str  # IANA zone of the signer's browser, or UTC
    snapshot: str  # the run id of the published snapshot the signer read
    prev_hash: str
    row_hash: str

    @property
    def signed_moment(self) -> datetime:
        return from_text(self.signed_at)

    def manifestation(self) -> str:
        """The signature as every surface shows it (21 CFR 11.50): name, username, date and
        time in UTC and the signer's zone, meaning, and what was signed."""
        utc = self.signed_moment.astimezone(UTC)
        when = f"{utc:%Y-%m-%d %H:%M:%S} UTC"
        if self.signer_zone != "UTC":
            there = utc.astimezone(ZoneInfo(self.signer_zone))
            when = f"{there:%Y-%m-%d %H:%M:%S} {there:%Z} ({self.signer_zone}), {when}"
        text = (
            f"{MEANING_WORDS[self.meaning]} by {self.signer_name} ({self.signer}), {when}; "
            f"meaning: {MEANING_WORDS[self.meaning]}. Signed {self.record_label} as shown "
            f"(content SHA-256 {self.record_hash[:16]}…, snapshot {self.snapshot}); "
            f"decision {self.decision_id}"
        )
        if self.reason:
            text += f"; reason: {self.reason}"
        if self.supersedes:
            text += f"; replaces decision {self.supersedes}"
        return text + "."


def _row_hash(fields: dict) -> str:
    payload = json.dumps([fields[name] for name in CHAINED], ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


def _decision(row: Row) -> Decision:
    return Decision(**{name: row[name] for name in Decision.__dataclass_fields__})


# --- who may sign ------------------------------------------------------------------------


def grant(username: str, by: Principal | str, now: datetime | None = None) -> None:
    """Let a sponsor QA user sign for its own sponsor (CMO staff or the administrator)."""
    _set_grant(username, True, by, now)


def withdraw(username: str, by: Principal | str, now: datetime | None = None) -> None:
    """End a user's permission to sign; signatures already given stay."""
    _set_grant(username, False, by, now)


def _set_grant(username: str, granted: bool, by: Principal | str, now: datetime | None) -> None:
    user = get_user(username)
    if user is None:
        raise SignatureRefused(f"There is no user {username!r}.")
    if granted and user.role != SIGNING_ROLE:
        raise SignatureRefused(
            f"Only a sponsor's QA users may sign; {username} is not one (auditors never sign)."
        )
    actor = by if isinstance(by, Principal) else None
    actor_name = by.username if isinstance(by, Principal) else by
    if actor is not None and actor.role not in ("cmo_quality", "cmo_management", "admin"):
        raise SignatureRefused("Only CMO staff or the administrator grant permission to sign.")
    with connect() as conn:
        conn.execute(
            "INSERT INTO signing_grant (username, sponsor_id, granted, at, by) "
            "VALUES (?, ?, ?, ?, ?)",
            (username, user.sponsor_id or "", int(granted), to_text(now or utc_now()),
             actor_name),
        )  # fmt: skip
        access_log.append_in(
            conn, "SIGNING_GRANTED" if granted else "SIGNING_WITHDRAWN", actor_name,
            actor.role if actor else "command_line", user.sponsor_id, "users", None, None,
            None, username,
        )  # fmt: skip


def ensure_demo_signers() -> list[str]:
    """Let the demo sponsors' QA users sign (demo mode), once: a withdrawn grant stays so."""
    granted = []
    with connect() as conn:
        known = {row["username"] for row in conn.execute("SELECT username FROM signing_grant")}
    for username, _, role, _ in DEMO_SPONSOR_USERS:
        if role == SIGNING_ROLE and username not in known and get_user(username) is not None:
            grant(username, "demo")
            granted.append(username)
    return granted


def may_sign(principal: Principal) -> bool:
    """True when the principal is its sponsor's QA and its newest grant is in force."""
    if principal.role != SIGNING_ROLE or not principal.sponsor_id:
        return False
    with connect() as conn:
        row = conn.execute(
            "SELECT granted, sponsor_id FROM signing_grant WHERE username = ? "
            "ORDER BY id DESC LIMIT 1",
            (principal.username,),
        ).fetchone()
    return bool(row and row["granted"] and row["sponsor_id"] == principal.sponsor_id)


# --- signing ---------------------------------------------------------------------------------


def signer_zone(name: str | None) -> str:
    """The signer's IANA zone if it is a real one, else UTC."""
    if not name:
        return "UTC"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return "UTC"
    return name


def _page_of(subject: Subject | None) -> str:
    """The page a decision on `subject` is signed on, as the access log names pages."""
    if subject is not None and subject.record_type in EVENT_KINDS:
        return "deviations-oos"
    return "change-control"


def _refuse(
    principal: Principal, subject: Subject | None, why: str, message: str, locked: bool = False
) -> None:
    access_log.record(
        "SIGNATURE_FAILED", principal, page=_page_of(subject),
        detail=f"{subject.label if subject else 'unknown record'}: {why}",
    )  # fmt: skip
    raise SignatureRefused(message, locked=locked)


def _check_password(principal: Principal, subject: Subject, typed: str, password: str) -> None:
    """Both components, every signature; a failure counts towards the sign-in lockout."""
    now = utc_now()
    if lockout.locked_until(principal.username, now) is not None:
        _refuse(principal, subject, "account locked",
                "This account is locked after repeated failed attempts; no signature was "
                "recorded. Sign in again once the lock has passed.", locked=True)  # fmt: skip
    user = get_user(principal.username)
    typed = (typed or "").strip().lower()
    ok = (
        user is not None
        and typed == principal.username
        and bool(password)
        and bcrypt.checkpw(password.encode(), _password_hash(principal.username).encode())
    )
    if ok and user.is_valid_at(now):
        lockout.clear_failures(principal.username)
        return
    if ok:
        _refuse(principal, subject, "account not active",
                "Your account is no longer active; no signature was recorded.")  # fmt: skip
    lock_end = lockout.record_failure(principal.username, now, lockout.LockoutPolicy.from_env())
    access_log.record(
        "SIGNATURE_FAILED", principal, page=_page_of(subject),
        detail=f"{subject.label}: wrong username or password",
    )  # fmt: skip
    if lock_end is not None:
        access_log.record("LOCKED", principal, detail=f"until {lock_end}")
        raise SignatureRefused(
            "Wrong username or password. The account is now locked after repeated failed "
            "attempts; no signature was recorded.",
            locked=True,
        )
    raise SignatureRefused(
        "Wrong username or password: no signature was recorded. Enter your own username and "
        "your password to sign."
    )


def _password_hash(username: str) -> str:
    with connect() as conn:
        row = conn.execute(
            "SELECT password_hash FROM portal_user WHERE username = ?", (username,)
        ).fetchone()
    return row["password_hash"]


def sign(
    principal: Principal,
    scope: Scope,
    record_type: str,
    record_id: str,
    meaning: str,
    *,
    typed_username: str,
    password: str,
    shown_hash: str,
    zone: str | None,
    reason: str | None = None,
    supersedes: str | None = None,
) -> Decision:
    """Record one signed decision on the record `record_id`, looked up afresh in the signer's
    own confined scope; raises SignatureRefused (nothing recorded) on any broken rule."""
    found = [s for s in subjects(scope) if (s.record_type, s.record_id) == (record_type,
             record_id)] if scope.sponsor_id == principal.sponsor_id else []  # fmt: skip
    subject = found[0] if found else None
    if principal.role != SIGNING_ROLE:
        _refuse(principal, subject, "role may not sign",
                "Only the sponsor's QA users with permission to sign can decide; your account "
                "reads only.")  # fmt: skip
    if not may_sign(principal):
        _refuse(principal, subject, "no permission to sign",
                "You do not have permission to sign for your company. CMO staff grant it; "
                "no signature was recorded.")  # fmt: skip
    if subject is None:
        _refuse(principal, None, f"{record_type} {record_id!r} not awaiting this sponsor",
                "This record does not await your decision (any more): it may have been decided "
                "in the CMO's system or gone live. Nothing was recorded.")  # fmt: skip
    if meaning not in subject.meanings:
        _refuse(principal, subject, f"meaning {meaning!r} not allowed",
                "That decision is not possible for this record.")  # fmt: skip
    reason = (reason or "").strip() or None
    if meaning == "REJECTED" and not reason:
        raise SignatureRefused("A rejection needs a reason: say why, then sign again.")
    if shown_hash != subject.content_hash:
        _refuse(principal, subject, "content changed since shown",
                "This record changed since it was shown to you (a newer snapshot was "
                "published). Review it again before signing; nothing was recorded.")  # fmt: skip
    _check_password(principal, subject, typed_username, password)
    return _append(
        principal, subject, meaning, reason, supersedes, scope.snapshot.run_id, signer_zone(zone)
    )


def _append(
    principal: Principal,
    subject: Subject,
    meaning: str,
    reason: str | None,
    supersedes: str | None,
    snapshot: str,
    zone: str,
) -> Decision:
    now = to_text(utc_now())
    user = get_user(principal.username)
    with connect() as conn:
        # One writer at a time: the chain's tail and "already decided" are read and extended
        # in the same transaction, so two signers on the same record get one decision.
        begin_write(conn, "decision")
        head = conn.execute(
            "SELECT * FROM decision WHERE sponsor_id = ? AND record_type = ? AND record_id = ? "
            "ORDER BY seq DESC LIMIT 1",
            (principal.sponsor_id, subject.record_type, subject.record_id),
        ).fetchone()
        existing = None if head is None else _decision(head)
        refusal = _refusal(subject, existing, meaning, supersedes)
        if refusal is None:
            fields = _chain(conn, principal, user, subject, meaning, reason, supersedes, now,
                            zone, snapshot)  # fmt: skip
    if refusal is not None:
        if existing is not None and existing.decision_id != supersedes:
            access_log.record(
                "SIGNATURE_FAILED", principal, page=_page_of(subject),
                detail=f"{subject.label}: already decided ({existing.decision_id})",
            )  # fmt: skip
        raise SignatureRefused(refusal)
    return Decision(**fields)


def _refusal(
    subject: Subject, existing: Decision | None, meaning: str, supersedes: str | None
) -> str | None:
    """Why this decision cannot follow the one in force on the record, or None."""
    if existing is not None and existing.decision_id != supersedes:
        return (
            f"{subject.label} was already decided: {existing.manifestation()} Nothing new was "
            "recorded."
        )
    if existing is not None and existing.meaning == meaning:
        return (
            f"{subject.label} was already decided that way: {existing.manifestation()} Nothing "
            "new was recorded."
        )
    if existing is None and supersedes is not None:
        return "There is no decision on this record to replace."
    return None


def _chain(
    conn: Connection,
    principal: Principal,
    user: User,
    subject: Subject,
    meaning: str,
    reason: str | None,
    supersedes: str | None,
    now: str,
    zone: str,
    snapshot: str,
) -> dict[str, Any]:
    """Append the decision at the chain's tail, with its access-log entry, in `conn`'s
    transaction; returns its fields."""
    tail = conn.execute("SELECT seq, row_hash FROM decision ORDER BY seq DESC LIMIT 1")
    last = tail.fetchone()
    seq = (last["seq"] if last else 0) + 1
    # Numbered per sponsor: the chain's own position counts every sponsor's decisions,
    # which no sponsor may learn; it stays in the store and the CMO's outbox only.
    ours = conn.execute(
        "SELECT count(*) FROM decision WHERE sponsor_id = ?", (principal.sponsor_id,)
    ).fetchone()[0]
    fields = {
        "seq": seq,
        "decision_id": f"DEC-{principal.sponsor_id}-{ours + 1:04d}",
        "sponsor_id": principal.sponsor_id,
        "record_type": subject.record_type,
        "record_id": subject.record_id,
        "record_label": subject.label,
        "record_json": subject.content,
        "record_hash": subject.content_hash,
        "meaning": meaning,
        "reason": reason,
        "supersedes": supersedes,
        "signer": principal.username,
        "signer_name": user.display_name,
        "signed_at": now,
        "signer_zone": zone,
        "snapshot": snapshot,
        "prev_hash": last["row_hash"] if last else GENESIS,
    }
    fields["row_hash"] = _row_hash(fields)
    conn.execute(
        f"INSERT INTO decision ({', '.join(fields)}) VALUES ({', '.join('?' * len(fields))})",
        tuple(fields.values()),
    )
    access_log.append_in(
        conn, "DECISION_SIGNED", principal.username, principal.role, principal.sponsor_id,
        _page_of(subject), None, 1, fields["row_hash"],
        f"{fields['decision_id']}: {MEANING_WORDS[meaning]}, {subject.label}",
    )  # fmt: skip
    return fields


# --- reading -------------------------------------------------------------------------------


def for_sponsor(sponsor_id: str) -> list[Decision]:
    """Every decision signed for this sponsor, oldest first."""
    with connect() as conn:
        rows = conn.execute(
            "SELECT * FROM decision WHERE sponsor_id = ? ORDER BY seq", (sponsor_id,)
        ).fetchall()
    return [_decision(row) for row in rows]


# Where each kind of record lives in a sponsor's scope: a decision shows only beside its own.
_RECORDS_SQL = """
SELECT 'change' AS kind, impact_id AS record_id FROM change_impact
UNION ALL SELECT 'deviation', deviation_id FROM deviation
UNION ALL SELECT 'oos', oos_id FROM oos_investigation
"""


def signed_for(scope: Scope, kinds: tuple[str, ...] | None = None) -> pl.DataFrame:
    """The scope's sponsor's signed decisions (catalogue "decisions") of `kinds` (all when
    None), only those on records of its own scope, with what the QMS recorded of them."""
    records = scope.frame("decided records", _RECORDS_SQL)
    own = {(kind, rid) for kind, rid in records.iter_rows()}
    mine = [
        d for d in for_sponsor(scope.sponsor_id)
        if (d.record_type.split("_")[0], d.record_id) in own
        and (kinds is None or d.record_type in kinds)
    ]  # fmt: skip
    return decisions_frame(mine, receipts(scope))


def all_decisions(since: datetime | None = None) -> list[Decision]:
    """Every decision signed at or after `since` (all when None), oldest first: CMO only."""
    with connect() as conn:
        rows = conn.execute(
            "SELECT * FROM decision WHERE signed_at >= ? ORDER BY seq",
            (to_text(since) if since else "",),
        ).fetchall()
    return [_decision(row) for row in rows]


def page_after(after: int, since: datetime | None, limit: int) -> list[Decision]:
    """Up to `limit` decisions past chain position `after` (signed at or after `since`), in
    chain order: what a QMS pulling the outbox reads next (CMO integration only)."""
    with connect() as conn:
        rows = conn.execute(
            "SELECT * FROM decision WHERE seq > ? AND signed_at >= ? ORDER BY seq LIMIT ?",
            (after, to_text(since) if since else "", limit),
        ).fetchall()
    return [_decision(row) for row in rows]


def in_force(decisions: Iterable[Decision]) -> dict[tuple[str, str], Decision]:
    """The newest decision per (record_type, record_id): what a superseding one replaced is
    history."""
    latest: dict[tuple[str, str], Decision] = {}
    for decision in decisions:
        latest[(decision.record_type, decision.record_id)] = decision
    return latest


def decisions_frame(
    decisions: Iterable[Decision], receipts: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Decisions as the catalogue's "decisions" rows, with when the QMS recorded each (from
    `receipts`: decision_id, recorded_at, as the nightly job read them back)."""
    rows = [
        {
            "decision_id": d.decision_id,
            "record": d.record_label,
            "record_type": d.record_type,
            "meaning": d.meaning,
            "signer_name": d.signer_name,
            "signed_at_utc": d.signed_moment.astimezone(UTC).replace(tzinfo=None),
            "reason": d.reason,
            "supersedes": d.supersedes,
            "signature": d.manifestation(),
            "signer": d.signer,
            "signer_zone": d.signer_zone,
            "record_hash": d.record_hash,
            "snapshot": d.snapshot,
            "row_hash": d.row_hash,
            "record_id": d.record_id,
            "sponsor_id": d.sponsor_id,
        }
        for d in decisions
    ]
    frame = pl.DataFrame(rows, schema=_FRAME_SCHEMA, orient="row")
    recorded = pl.DataFrame(schema={"decision_id": pl.String, "qms_recorded_at": pl.Datetime("us")})
    if receipts is not None and receipts.height:
        recorded = receipts.select(
            "decision_id", pl.col("recorded_at").cast(pl.Datetime("us")).alias("qms_recorded_at")
        ).unique("decision_id", keep="first")
    joined = frame.join(recorded, on="decision_id", how="left")
    return joined.select(*[name for name in _FRAME_SCHEMA if name != "record_id"],
                         "qms_recorded_at", "record_id")  # fmt: skip


_FRAME_SCHEMA = {
    "decision_id": pl.String, "record": pl.String, "record_type": pl.String,
    "meaning": pl.String, "signer_name": pl.String, "signed_at_utc": pl.Datetime("us"),
    "reason": pl.String, "supersedes": pl.String, "signature": pl.String, "signer": pl.String,
    "signer_zone": pl.String, "record_hash": pl.String, "snapshot": pl.String,
    "row_hash": pl.String, "record_id": pl.String,
    "sponsor_id": pl.String,
}  # fmt: skip


# --- integrity -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainReport:
    rows: int
    problems: list[str]

    @property
    def intact(self) -> bool:
        return not self.problems


def verify() -> ChainReport:
    """Recompute the chain: every row's hash, every link, no gap in the positions, and every
    DECISION_SIGNED entry of the access log still backed by its row."""
    with connect() as conn:
        rows = conn.execute("SELECT * FROM decision ORDER BY seq").fetchall()
        logged = conn.execute(
            "SELECT id, content_hash, detail FROM access_log WHERE event = 'DECISION_SIGNED'"
        ).fetchall()
    problems: list[str] = []
    previous = GENESIS
    for expected_seq, row in enumerate(rows, start=1):
        fields = dict(row)
        where = f"row {fields['seq']} ({fields['decision_id']}, {fields['record_label']})"
        if fields["seq"] != expected_seq:
            problems.append(f"{where}: position {expected_seq} is missing before it")
        if fields["prev_hash"] != previous:
            problems.append(f"{where}: does not follow the row before it in the chain")
        if _row_hash(fields) != fields["row_hash"]:
            problems.append(f"{where}: its content does not match its signature hash")
        if hashlib.sha256(fields["record_json"].encode()).hexdigest() != fields["record_hash"]:
            problems.append(f"{where}: the record shown does not match its content hash")
        previous = fields["row_hash"]
    stored = {row["row_hash"] for row in rows}
    signed = {entry["content_hash"] for entry in logged}
    for row in rows:
        if row["row_hash"] not in signed:
            problems.append(
                f"row {row['seq']} ({row['decision_id']}, {row['record_label']}): no signing of "
                "it is in the access log (appended outside the portal)"
            )
    for entry in logged:
        if entry["content_hash"] not in stored:
            problems.append(
                f"access log entry {entry['id']} ({entry['detail']}): its decision is missing "
                "from the chain"
            )
    return ChainReport(len(rows), problems)


# --- the outbox to the CMO's QMS ---------------------------------------------------------


def outbox_record(decision: Decision) -> dict:
    """One decision as the QMS imports it: the decision, its signature and chain position."""
    record = asdict(decision)
    record["meaning_words"] = MEANING_WORDS[decision.meaning]
    record["signature"] = decision.manifestation()
    record["shown"] = json.loads(decision.record_json)["shown"]
    return record


def _write_once(path: Path, content: bytes) -> bool:
    """Write `content` to `path` unless it holds exactly that; True when written. A different
    file there is never overwritten: the outbox is evidence too."""
    if path.exists():
        if path.read_bytes() == content:
            return False
        raise FileExistsError(f"{path.name} exists with different content; left untouched")
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_bytes(content)
    os.replace(partial, path)
    return True


def export_outbox(since: datetime | None, out: Path) -> tuple[int, int]:
    """One JSON and one CSV file per decision signed at or after `since` into `out`; files
    already there with the same bytes are kept, so a rerun or a resumed run adds only what is
    missing. Returns (decisions exported, files written)."""
    out.mkdir(parents=True, exist_ok=True)
    decisions = all_decisions(since)
    written = 0
    for decision in decisions:
        record = outbox_record(decision)
        as_json = json.dumps(record, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
        buffer = io.StringIO()
        flat = {k: v for k, v in record.items() if k != "shown"}
        writer = csv.DictWriter(buffer, fieldnames=sorted(flat), lineterminator="\n")
        writer.writeheader()
        writer.writerow(flat)
        written += _write_once(out / f"{decision.decision_id}.json", as_json.encode())
        written += _write_once(out / f"{decision.decision_id}.csv", buffer.getvalue().encode())
    return len(decisions), written
