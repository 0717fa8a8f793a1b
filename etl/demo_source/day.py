"""One realistic day of change applied to an existing demo plant, for incremental-ETL tests.

The day is the one after the plant's latest updated_at. It adds entries to in-flight
batches, moves two batches on in their lifecycle, raises a deviation, closes a CAPA and
makes one correction: a batch booked to the wrong product gets another sponsor's product
and sponsor. It adds no new problem, so the ground-truth file is left unchanged.
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

from etl.demo_source.events import mfg_step
from warehouse.contract import TABLES, VERIFIED_EVENT_TYPES


@dataclass(frozen=True)
class DaySummary:
    day: date
    changed: dict[str, int]  # rows inserted or updated per table
    moved_batch_id: str
    from_sponsor: str
    to_sponsor: str


def simulate_day(
    db: Path, *, seed: int = 7, progress: Callable[[str], None] | None = None
) -> DaySummary:
    """Apply one day of plant activity to `db` in one transaction; deterministic for a seed."""
    conn = sqlite3.connect(db)
    try:
        with conn:
            summary = _Day(conn, seed, Path(db)).run()
    finally:
        conn.close()
    if progress:
        progress(f"day {summary.day}: " + ", ".join(f"{k} {v}" for k, v in summary.changed.items()))
    return summary


class _Day:
    def __init__(self, conn: sqlite3.Connection, seed: int, db: Path) -> None:
        self.conn = conn
        # Over tables with rows (an optional table may be empty or absent in an older file).
        present = {
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        marks = (
            conn.execute(f"SELECT max(updated_at) FROM {t.name}").fetchone()[0]
            for t in TABLES
            if t.name in present
        )
        watermark = max(mark for mark in marks if mark is not None)
        self.day = date.fromisoformat(watermark[:10]) + timedelta(days=1)
        self.rng = random.Random(f"{seed}:{self.day}")
        self.changed: dict[str, int] = {}
        truth = db.with_suffix(".ground_truth.json")
        self.flagged_batches = set()
        if truth.exists():
            anomalies = json.loads(truth.read_text())["anomalies"]
            self.flagged_batches = {a.get("batch_id") for a in anomalies}

    def at(self, hour: float) -> str:
        instant = datetime.combine(self.day, time(6)) + timedelta(hours=hour)
        return instant.isoformat(timespec="seconds")

    def count(self, table: str, n: int = 1) -> None:
        self.changed[table] = self.changed.get(table, 0) + n

    def one(self, sql: str, *args) -> tuple:
        return self.conn.execute(sql, args).fetchone()

    def run(self) -> DaySummary:
        self.new_entries()
        self.transitions()
        self.new_deviation()
        self.close_capa()
        moved, old, new = self.correct_product()
        return DaySummary(self.day, dict(sorted(self.changed.items())), moved, old, new)

    def new_entries(self) -> None:
        """Four entries per in-flight batch, by its own crew, verified by a colleague."""
        batches = self.conn.execute("""
            SELECT b.batch_id, p.modality FROM batch b JOIN product p USING (product_id)
            WHERE b.status IN ('DISPENSED', 'IN_PROCESS') ORDER BY b.batch_id""").fetchall()
        serial = self.one("SELECT max(event_id) FROM batch_event")[0]
        n = int(serial.split("-")[1])
        for batch_id, modality in batches:
            last = self.one("SELECT max(seq) FROM batch_event WHERE batch_id = ?", batch_id)[0]
            crew = self.crew(batch_id)
            for k in range(4):
                seq = last + 1 + k
                name, etype = mfg_step(modality, seq)
                who = self.rng.choice(crew)
                checker = self.rng.choice([c for c in crew if c != who])
                hour = 2 * k + self.rng.random()
                performed = self.at(hour)
                # Recorded within the hour and verified after it: nothing late, nothing early.
                recorded = self.at(hour + self.rng.uniform(0.05, 0.6))
                checked = self.at(hour + 0.7) if etype in VERIFIED_EVENT_TYPES else None
                n += 1
                self.conn.execute(
                    "INSERT INTO batch_event VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        f"EV-{n:09d}",
                        batch_id,
                        seq,
                        f"Step {seq}: {name}",
                        etype,
                        who,
                        performed,
                        recorded,
                        checker if checked else None,
                        checked,
                        None,
                        max(recorded, checked or recorded),
                    ),
                )
                self.count("batch_event")

    def crew(self, batch_id: str) -> list[str]:
        """Who made this batch so far; a batch just dispensed borrows its train's last crew."""
        sql = (
            "SELECT DISTINCT performed_by FROM batch_event WHERE batch_id = ? AND "
            "event_type IN ('DISPENSE', 'STEP') ORDER BY performed_by"
        )
        crew = [r[0] for r in self.conn.execute(sql, (batch_id,))]
        if len(crew) < 2:
            previous = self.one(
                "SELECT p.batch_id FROM batch b JOIN batch p USING (equipment_train) "
                "WHERE b.batch_id = ? AND p.mfg_end < b.mfg_start ORDER BY p.mfg_end DESC",
                batch_id,
            )[0]
            crew = sorted({*crew, *(r[0] for r in self.conn.execute(sql, (previous,)))})
        return crew

    def transitions(self) -> None:
        """QC finishes on one batch; the sponsor releases the most recent disposition."""
        row = self.one("SELECT batch_id FROM batch WHERE status = 'QC_TESTING' ORDER BY mfg_end")
        if row:
            self.conn.execute(
                "UPDATE batch SET status = 'BR_REVIEW', updated_at = ? WHERE batch_id = ?",
                (self.at(3), row[0]),
            )
            self.count("batch")
        row = self.one(
            "SELECT batch_id, units_produced FROM batch WHERE status = "
            "'CMO_DISPOSITIONED' ORDER BY cmo_decided_at DESC"
        )
        if row:
            self.conn.execute(
                "UPDATE batch SET status = 'SPONSOR_RELEASED', sponsor_decision = 'APPROVED', "
                "sponsor_decided_at = ?, units_distributed = ?, updated_at = ? WHERE batch_id = ?",
                (self.at(4), int(row[1] * 0.9), self.at(4), row[0]),
            )
            self.count("batch")

    def new_deviation(self) -> None:
        """A minor deviation on an in-flight batch, notified within the hour."""
        batch_id, sponsor_id, product_id = self.one(
            "SELECT batch_id, sponsor_id, product_id FROM batch WHERE status = 'IN_PROCESS' "
            "ORDER BY batch_id"
        )
        n = int(self.one("SELECT max(deviation_id) FROM deviation")[0].split("-")[1]) + 1
        aware = self.at(1)
        self.conn.execute(
            "INSERT INTO deviation VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                f"DEV-{n:06d}",
                f"DEV-{self.day:%Y}-{n:05d}",
                "RDG",
                "Documentation error in batch record",
                "MINOR",
                "OPEN",
                aware,
                (self.day + timedelta(days=30)).isoformat(),
                (self.day + timedelta(days=30)).isoformat(),
                0,
                None,
                None,
                None,
                aware,
            ),
        )
        link = int(self.one("SELECT max(link_id) FROM deviation_link")[0].split("-")[1]) + 1
        self.conn.execute(
            "INSERT INTO deviation_link VALUES (?,?,?,?,?,?,?,?)",
            (
                f"DL-{link:06d}",
                f"DEV-{n:06d}",
                sponsor_id,
                product_id,
                batch_id,
                None,
                self.at(2),
                self.at(2),
            ),
        )
        self.count("deviation")
        self.count("deviation_link")

    def close_capa(self) -> None:
        """The open CAPA nearest its due date closes on time after an effective check."""
        capa_id = self.one(
            "SELECT capa_id FROM capa WHERE status NOT IN ('CLOSED', 'CANCELLED') "
            "AND current_due >= ? ORDER BY current_due, capa_id",
            self.day.isoformat(),
        )[0]
        self.conn.execute(
            "UPDATE capa SET status = 'CLOSED', closed_at = ?, updated_at = ? WHERE capa_id = ?",
            (self.at(6), self.at(6), capa_id),
        )
        self.conn.execute(
            "INSERT INTO capa_effectiveness VALUES (?,?,?,?,?)",
            (f"CE-D{self.day:%Y%m%d}", capa_id, self.at(5), "EFFECTIVE", self.at(5)),
        )
        self.count("capa")
        self.count("capa_effectiveness")

    def correct_product(self) -> tuple[str, str, str]:
        """Rebook a clean released batch to another sponsor's product made on the same train."""
        candidates = self.conn.execute("""
            SELECT b.batch_id, b.sponsor_id, b.equipment_train FROM batch b
            WHERE b.status = 'SPONSOR_RELEASED'
              AND b.batch_id NOT IN (
                SELECT batch_id FROM deviation_link WHERE batch_id IS NOT NULL
                UNION SELECT batch_id FROM complaint WHERE batch_id IS NOT NULL
                UNION SELECT batch_id FROM oos_investigation WHERE batch_id IS NOT NULL
                UNION SELECT c.batch_id FROM material_consumption c
                  JOIN material_lot l USING (lot_id) JOIN supplier s USING (supplier_id)
                  WHERE c.batch_id IS NOT NULL AND s.status <> 'APPROVED')
            ORDER BY b.batch_id""").fetchall()  # one set, not a scan per batch: large plant
        self.rng.shuffle(candidates)
        for batch_id, sponsor_id, train in candidates:
            if batch_id in self.flagged_batches:
                continue
            other = self.one(
                "SELECT DISTINCT product_id, sponsor_id FROM batch WHERE equipment_train = ? "
                "AND sponsor_id <> ? ORDER BY product_id",
                train,
                sponsor_id,
            )
            if other:
                self.conn.execute(
                    "UPDATE batch SET product_id = ?, sponsor_id = ?, updated_at = ? "
                    "WHERE batch_id = ?",
                    (other[0], other[1], self.at(7), batch_id),
                )
                self.count("batch")
                return batch_id, sponsor_id, other[1]
        raise LookupError("no clean released batch can be rebooked")
