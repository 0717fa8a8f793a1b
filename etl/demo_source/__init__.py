"""Deterministic demo plant: a fictional multi-sponsor CMO site written as a SQLite source.

`generate` builds a clean three-year history (or ten years for the `large` benchmark),
shapes the present (`stories.py`: work in flight for every sponsor, the first sponsor's
Monday from JOURNEYS.md), injects known problems across sponsors and writes them to
`<out stem>.ground_truth.json`, so tests can check that the portal flags exactly those.
Stories that are not problems are there too, marked `"informational": true`. Same seed,
preset and as_of give a byte-identical file. `simulate_day` moves a plant one day forward.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from etl.demo_source.anomalies import Injector
from etl.demo_source.day import DaySummary, simulate_day
from etl.demo_source.events import write_batch_events
from etl.demo_source.plant import Plant
from etl.demo_source.presets import PRESETS
from etl.demo_source.stories import Stories
from warehouse import clock
from warehouse.contract import TABLES, sqlite_ddl, table

__all__ = ["DaySummary", "GenerationSummary", "generate", "ground_truth_path", "simulate_day"]


@dataclass(frozen=True)
class GenerationSummary:
    out: Path
    ground_truth: Path
    rows: dict[str, int]
    anomalies: dict[str, int]
    seconds: float


def ground_truth_path(out: Path) -> Path:
    return Path(out).with_suffix(".ground_truth.json")


def generate(
    out: Path,
    *,
    seed: int = 7,
    preset: str = "demo",
    as_of: date | None = None,
    progress: Callable[[str], None] | None = None,
) -> GenerationSummary:
    """Write a new demo plant SQLite file at `out` and its ground truth beside it."""
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out} exists; remove it first")
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    as_of = as_of or clock.today()
    started = time.perf_counter()
    say = progress or (lambda _line: None)

    plant = Plant(PRESETS[preset], seed, as_of)
    plant.build_master_data()
    inject = Injector(plant)
    story = Stories(plant, inject)
    plant.equipment_history()
    plant.schedule_batches(story.pins)
    say(f"batches: {len(plant.batches):,} scheduled")
    plant.batch_deviations()
    plant.qc_timelines()
    story.qc()
    inject.plan_oos()
    plant.facility_deviations()
    story.deviations()
    plant.decision_timelines()
    story.dispositions()
    inject.batch_outcomes()
    inject.disposition_with_open_deviation()
    plant.finalize_batches()
    plant.equipment_usage()
    plant.materials()
    plant.test_results()
    inject.oos_records()
    plant.finalize_deviations()
    story.friday_status()
    inject.notification_late()
    plant.deviation_capas()
    plant.complaints()
    plant.self_inspections()
    story.open_capas()
    inject.capas()
    plant.product_reviews()
    plant.tech_transfers()
    plant.master_batch_records()
    plant.change_controls()
    story.change_awaiting_approval()
    inject.changes()
    inject.calibration()
    inject.failed_calibration()
    inject.suppliers()
    story.recent_exceptions()
    plan = inject.plan_events(story)

    out.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(out)
    try:
        conn.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;")
        creates, indexes = _ddl()
        conn.executescript(creates)
        conn.execute("BEGIN")
        operator_ids = [r["operator_id"] for r in plant.rows["operator"]]
        events, tampered = write_batch_events(
            conn, plant.batches, operator_ids, plant.qa, plant.qc, plant.now, seed, plan, say
        )
        inject.record_events(plan, tampered)
        _recompute_calibration_due(plant)
        counts = {"batch_event": events}
        for t in TABLES:
            if t.name != "batch_event":
                counts[t.name] = _insert(conn, t.name, plant.rows.get(t.name, []))
                say(f"{t.name}: {counts[t.name]:,} written")
        say("indexing")
        conn.executescript(indexes)
        conn.commit()
    finally:
        conn.close()

    anomalies = sorted(inject.found, key=lambda a: (a["kind"], a["sponsor_id"], a["key"]))
    truth = {"seed": seed, "preset": preset, "as_of": as_of.isoformat(),
             "journey": {"late_ph_entry_batch": inject.story_batch},
             "anomalies": anomalies}  # fmt: skip
    gt = ground_truth_path(out)
    gt.write_text(json.dumps(truth, indent=1, default=str) + "\n")
    per_kind: dict[str, int] = {}
    for a in anomalies:
        per_kind[a["kind"]] = per_kind.get(a["kind"], 0) + 1
    return GenerationSummary(out, gt, counts, per_kind, time.perf_counter() - started)


def _ddl() -> tuple[str, str]:
    """Table statements, and index statements to run after loading (faster bulk insert)."""
    statements = [s.strip() + ";" for s in sqlite_ddl().split(";") if s.strip()]
    creates = [s for s in statements if s.startswith("CREATE TABLE")]
    indexes = [s for s in statements if not s.startswith("CREATE TABLE")]
    return "\n".join(creates), "\n".join(indexes)


def _sql_value(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _insert(conn: sqlite3.Connection, name: str, rows: list[dict]) -> int:
    columns = table(name).column_names
    sql = f"INSERT INTO {name} VALUES ({','.join('?' * len(columns))})"
    conn.executemany(sql, ([_sql_value(r.get(c)) for c in columns] for r in rows))
    return len(rows)


def _recompute_calibration_due(plant: Plant) -> None:
    latest: dict[str, dict] = {}
    for e in plant.rows["equipment_event"]:
        if e["event_type"] == "CALIBRATION":
            current = latest.get(e["equipment_id"])
            if current is None or e["performed_at"] > current["performed_at"]:
                latest[e["equipment_id"]] = e
    for eq in plant.rows["equipment"]:
        if eq["equipment_id"] in latest:
            eq["calibration_due"] = latest[eq["equipment_id"]]["next_due"]
