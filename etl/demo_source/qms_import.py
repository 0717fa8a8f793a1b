"""The demo plant's QMS side of sponsor decisions: import the portal's outbox.

Sponsors sign decisions in the portal (portal/decisions.py); `python -m portal decisions
export --out DIR` writes one `<decision_id>.json` per decision. A CMO's QMS imports those
files; this module is that import for the demo plant's SQLite source:

    python -m etl.demo_source record-decisions --source PLANT.sqlite --outbox DIR [--at ISO]

For each decision not yet recorded it inserts a `decision_receipt` row (when the QMS recorded
it, by whom) and, for an approval or a rejection, sets the change impact's `decision` and
`decided_at` (the signature's time) - with `updated_at`, so that the next incremental ETL run
picks both up and the portal stops offering the change for decision. A decision already
recorded is left alone, so a second run records nothing new. A decision the QMS cannot
accept (an unknown impact, another sponsor's impact, a meaning the impact does not ask for, a
time before its signature) is refused with its reason and never recorded; the run then exits
with status 1.
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from warehouse.contract import DECISION_MEANINGS, sqlite_ddl, table

RECEIPT = table("decision_receipt")
RECORDED_BY = "QMS import of the sponsor portal outbox"
DECISION_ID = re.compile(r"^DEC-[A-Za-z0-9_.-]+-\d{4,}$")  # e.g. DEC-NWT-0001
# Acknowledgements of deviation and OOS notifications: the QMS gets them in the outbox, but its
# receipts (decision_receipt) answer change impacts only, so this import leaves them be.
NOT_CHANGE_DECISIONS = ("deviation_notification", "oos_notification")
# What each kind of portal decision answers: the impact's obligation, and its meanings.
OBLIGATION_OF = {"change_approval": "PRIOR_APPROVAL", "change_notification": "NOTIFY"}
MEANINGS_OF = {
    "change_approval": ("APPROVED", "REJECTED"),
    "change_notification": ("ACKNOWLEDGED",),
}
# Meanings that decide the impact in the QMS (an acknowledgement only gets its receipt).
DECIDING = ("APPROVED", "REJECTED")


@dataclass
class ImportSummary:
    recorded: list[str] = field(default_factory=list)  # decision ids recorded by this run
    already: list[str] = field(default_factory=list)  # recorded by an earlier run
    refused: list[tuple[str, str]] = field(default_factory=list)  # (file name, reason)
    not_changes: list[str] = field(default_factory=list)  # deviation/OOS acknowledgements


def _plant_time(moment: datetime) -> datetime:
    """The moment in the plant's local time, naive and to the second, as the source keeps it."""
    if moment.tzinfo is not None:
        moment = moment.astimezone().replace(tzinfo=None)
    return moment.replace(microsecond=0)


def _text(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _read(path: Path) -> dict:
    record = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(record, dict):
        raise ValueError("not a decision record")
    return record


def _why_not(record: dict, impact: tuple | None, at: datetime) -> str | None:
    """The reason the QMS cannot record this decision, or None when it can."""
    decision_id, record_type, meaning = (
        record.get("decision_id"), record.get("record_type"), record.get("meaning"),
    )  # fmt: skip
    if not isinstance(decision_id, str) or not DECISION_ID.fullmatch(decision_id):
        return f"decision id {decision_id!r} is not a portal decision id"
    if record_type not in OBLIGATION_OF:
        return f"record type {record_type!r} is not a change decision"
    if meaning not in DECISION_MEANINGS or meaning not in MEANINGS_OF[record_type]:
        return f"meaning {meaning!r} does not answer a {record_type}"
    if impact is None:
        return f"change impact {record.get('record_id')!r} is not in the QMS"
    sponsor_id, obligation = impact
    if sponsor_id != record.get("sponsor_id"):
        return f"change impact {record['record_id']} is not sponsor {record.get('sponsor_id')}'s"
    if obligation != OBLIGATION_OF[record_type]:
        return f"change impact {record['record_id']} asks for {obligation}, not a {record_type}"
    try:
        signed = _plant_time(datetime.fromisoformat(record["signed_at"]))
    except (KeyError, TypeError, ValueError):
        return "signed_at is missing or not a time"
    if at < signed:
        return f"recorded at {_text(at)}, before it was signed ({_text(signed)})"
    return None


def record_decisions(
    source: Path, outbox: Path, at: datetime | None = None, by: str = RECORDED_BY
) -> ImportSummary:
    """Record every decision of the outbox not yet in the source, in one transaction.

    `at` is when the QMS records them (plant time; default now). The decision_receipt table
    is created if the source file predates it.
    """
    source, outbox = Path(source), Path(outbox)
    if not source.is_file():
        raise FileNotFoundError(f"source {source} does not exist")
    if not outbox.is_dir():
        raise FileNotFoundError(f"outbox {outbox} is not a folder")
    at = _plant_time(at or datetime.now())
    summary = ImportSummary()
    # Outbox files by name (sponsor, then that sponsor's decisions in order); a half-written
    # file of an export in progress starts with a dot and waits for the next run.
    files = sorted(p for p in outbox.glob("*.json") if not p.name.startswith("."))
    conn = sqlite3.connect(source)
    try:
        conn.executescript(sqlite_ddl((RECEIPT,), if_not_exists=True))
        conn.execute("BEGIN IMMEDIATE")
        for path in files:
            try:
                record = _read(path)
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                summary.refused.append((path.name, f"unreadable ({exc})"))
                continue
            decision_id = record.get("decision_id")
            if record.get("record_type") in NOT_CHANGE_DECISIONS:
                summary.not_changes.append(str(decision_id))
                continue
            seen = conn.execute(
                "SELECT 1 FROM decision_receipt WHERE decision_id = ?", (str(decision_id),)
            ).fetchone()
            if seen:
                summary.already.append(str(decision_id))
                continue
            impact = conn.execute(
                "SELECT sponsor_id, obligation FROM change_impact WHERE impact_id = ?",
                (str(record.get("record_id")),),
            ).fetchone()
            reason = _why_not(record, impact, at)
            if reason is not None:
                summary.refused.append((path.name, reason))
                continue
            meaning, impact_id = record["meaning"], str(record["record_id"])
            conn.execute(
                f"INSERT INTO decision_receipt ({', '.join(RECEIPT.column_names)}) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (decision_id, impact_id, meaning, _text(at), by, _text(at)),
            )
            if meaning in DECIDING:
                signed = _plant_time(datetime.fromisoformat(record["signed_at"]))
                conn.execute(
                    "UPDATE change_impact SET decision = ?, decided_at = ?, updated_at = ? "
                    "WHERE impact_id = ?",
                    (meaning, _text(signed), _text(at), impact_id),
                )
            summary.recorded.append(decision_id)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.close()
    return summary


def add_parser(commands: argparse._SubParsersAction) -> None:
    sub = commands.add_parser(
        "record-decisions",
        help="record the portal's signed decisions (its outbox) in the demo plant's QMS",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub.add_argument("--source", required=True, help="the demo plant's SQLite file")
    sub.add_argument("--outbox", required=True, help="folder of python -m portal decisions export")
    sub.add_argument("--at", type=datetime.fromisoformat,
                     help="ISO time the QMS records them, plant time (default: now)")  # fmt: skip
    sub.add_argument("--by", default=RECORDED_BY, help="recorded_by of the receipts")
    sub.set_defaults(handler=_command)


def _command(args: argparse.Namespace) -> int:
    try:
        summary = record_decisions(Path(args.source), Path(args.outbox), args.at, args.by)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"{len(summary.recorded)} decision(s) recorded in {args.source}, "
        f"{len(summary.already)} already recorded, {len(summary.refused)} refused"
        + (f", {len(summary.not_changes)} acknowledgement(s) of deviation or OOS notifications "
           "left to the deviation records" if summary.not_changes else "")
    )  # fmt: skip
    for decision_id in summary.recorded:
        print(f"  recorded {decision_id}")
    for name, reason in summary.refused:
        print(f"  refused {name}: {reason}", file=sys.stderr)
    return 1 if summary.refused else 0
