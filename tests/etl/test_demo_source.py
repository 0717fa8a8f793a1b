"""The demo plant: deterministic, contract-clean, and its problems are exactly the ground truth.

The checks below re-derive every flag with plain SQL over the generated SQLite file, apart
from the generator's own code, so a leak in the clean baseline shows up as a set difference.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sqlite3
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from etl.demo_source import generate, ground_truth_path, simulate_day
from etl.demo_source.anomalies import COUNTS, UNSCALED
from etl.demo_source.presets import (
    API_SUPPLIER_NAMES,
    MATERIALS,
    MODALITIES,
    PRESETS,
    PRODUCT_SITE_SOPS,
    SITE_EQUIPMENT,
    SITE_SOPS,
    SUPPLIER_NAMES,
    TRAIN_EQUIPMENT,
)
from warehouse.contract import (
    BOOL,
    CHANGE_TYPES,
    DATE,
    DATETIME,
    FLOAT,
    INT,
    NOTIFIABLE_EVENTS,
    TABLES,
    TECH_TRANSFER_MILESTONES,
)

AS_OF = date(2026, 11, 26)
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")


@pytest.fixture(scope="session")
def plant(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("plant") / "plant.sqlite"
    generate(out, seed=7, preset="demo", as_of=AS_OF)
    return out


@pytest.fixture(scope="session")
def truth(plant) -> dict:
    return json.loads(ground_truth_path(plant).read_text())


@pytest.fixture(scope="session")
def db(plant):
    conn = sqlite3.connect(f"file:{plant}?mode=ro", uri=True)
    yield conn
    conn.close()


def keys(truth: dict, kind: str) -> set[str]:
    return {a["key"] for a in truth["anomalies"] if a["kind"] == kind}


def flagged(db, sql: str) -> set[str]:
    return {row[0] for row in db.execute(sql)}


def test_same_seed_gives_identical_bytes(plant, tmp_path):
    again = tmp_path / "again.sqlite"
    generate(again, seed=7, preset="demo", as_of=AS_OF)
    for a, b in ((plant, again), (ground_truth_path(plant), ground_truth_path(again))):
        assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()


def test_refuses_to_overwrite(plant):
    with pytest.raises(FileExistsError):
        generate(plant, as_of=AS_OF)


DEMO = PRESETS["demo"]
TRAINS = DEMO.trains_per_modality * len(MODALITIES)
TRAIN_EQUIPMENT_PIECES = DEMO.trains_per_modality * sum(map(len, TRAIN_EQUIPMENT.values()))
PRODUCTS = DEMO.tech_transfer_projects + sum(
    DEMO.products_per_sponsor[i % len(DEMO.products_per_sponsor)] for i in range(DEMO.sponsors)
)


def injected(kind: str) -> int:
    """How many problems of `kind` the generator plants at the demo preset's scale."""
    return COUNTS[kind] * (1 if kind in UNSCALED else DEMO.anomaly_scale)


# Rows that follow from the demo preset and the generator's fixed lists, whatever the clock.
DERIVED_ROWS = {
    "sponsor": DEMO.sponsors,
    "site": 1,
    "quality_agreement": DEMO.sponsors,  # one per sponsor, with every term type
    "agreement_term": DEMO.sponsors * (len(NOTIFIABLE_EVENTS) + len(CHANGE_TYPES)),
    "product": PRODUCTS,  # made products, and those still in technology transfer
    "sop": len(SITE_SOPS) + 2 * PRODUCTS,  # site SOPs; each product's instructions and IPCs
    "product_sop": PRODUCTS * (2 + len(PRODUCT_SITE_SOPS)),
    "supplier": len(SUPPLIER_NAMES) + len(API_SUPPLIER_NAMES),
    "equipment": TRAIN_EQUIPMENT_PIECES + len(SITE_EQUIPMENT),
    # QA and QC at their smallest (6 and 5), a crew of five per train, an agency operator
    # per training gap.
    "operator": 6 + 5 + 5 * TRAINS + injected("TRAINING_GAP"),
    "tech_transfer": PRODUCTS,  # completed for made products, in progress for the others
    "tt_milestone": PRODUCTS * len(TECH_TRANSFER_MILESTONES),
    # Every 61 days from day 20 of the history up to 90 days ahead of the clock.
    "self_inspection": len(range(20, 365 * DEMO.years + 90, 61)),
    "oos_investigation": injected("OOS_CONFIRMED") + injected("OOS_INVALIDATED"),
    "capa_extension": injected("CAPA_EXTENDED"),
    # Twenty a year, the site SOP revisions, and the change awaiting the first sponsor's
    # prior approval (stories.py).
    "change_control": 20 * DEMO.years + injected("SITE_SOP_CHANGES") + 1,
    # Only the QMS import of portal decisions writes receipts (qms_import.py), never the plant.
    "decision_receipt": 0,
}
# The rest pin the generator's random draws for seed 7 as of 2026-11-26 (AS_OF): a generator
# change that moves one must update it here on purpose.
PINNED_ROWS = {
    "master_batch_record": 34,
    "material_lot": 1185,
    "equipment_event": 740,
    "equipment_usage": 4987,
    "training_record": 3897,
    "batch": 1136,
    "batch_event": 50394,
    "material_consumption": 6122,
    "test_result": 7018,
    "deviation": 348,
    "deviation_link": 368,
    "complaint": 34,
    "inspection_finding": 33,
    "capa": 87,
    "capa_effectiveness": 49,
    "change_impact": 104,
    "change_market": 206,
    "product_review": 40,
}


def rows(db, table: str) -> int:
    return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def bom_lines(db) -> int:
    """A product's BOM: its drug substance and every material its modality uses."""
    uses = Counter(m for modalities, *_ in MATERIALS.values() for m in modalities)
    by_modality = db.execute("SELECT modality, count(*) FROM product GROUP BY modality")
    return sum(n * (1 + uses[modality]) for modality, n in by_modality)


def test_every_table_is_counted_once():
    counted = [*DERIVED_ROWS, "bom_item", *PINNED_ROWS]
    assert sorted(counted) == sorted(t.name for t in TABLES)


def test_row_counts_follow_from_the_preset(today):
    _, db, _ = today
    expected = {**DERIVED_ROWS, "bom_item": bom_lines(db)}
    assert {table: rows(db, table) for table in expected} == expected


def test_row_counts_are_the_pinned_ones(db):
    assert {table: rows(db, table) for table in PINNED_ROWS} == PINNED_ROWS


def test_rows_pass_the_contracts(db):
    """Required, enums, types and formats, references resolve, updated_at not after as_of."""
    keys_of = {t.name: flagged(db, f"SELECT {t.key} FROM {t.name}") for t in TABLES}
    for t in TABLES:
        names = t.column_names
        rows = db.execute(f"SELECT {', '.join(names)} FROM {t.name}").fetchall()
        assert len(keys_of[t.name]) == len(rows), f"{t.name} keys not unique"
        for col_no, c in enumerate(t.columns):
            values = [r[col_no] for r in rows]
            present = [v for v in values if v is not None]
            where = f"{t.name}.{c.name}"
            if c.required:
                assert len(present) == len(values), f"{where} has NULLs"
            if c.enum:
                assert set(present) <= set(c.enum), f"{where} outside enum"
            if c.ref:
                assert set(present) <= keys_of[c.ref], f"{where} dangling reference"
            if c.type == DATE:
                assert all(DATE_RE.match(v) for v in present), where
            if c.type == DATETIME:
                assert all(DATETIME_RE.match(v) for v in present), where
            if c.type == BOOL:
                assert set(present) <= {0, 1}, where
            if c.type in (INT, BOOL):
                assert all(isinstance(v, int) for v in present), where
            if c.type == FLOAT:
                assert all(isinstance(v, int | float) for v in present), where
            if c.min_value is not None:
                assert all(v >= c.min_value for v in present), where
        stamp = names.index("updated_at")
        # No rows, no latest: decision_receipt, which the generator leaves empty.
        latest = max((r[stamp] for r in rows), default="")
        assert latest < AS_OF.isoformat(), f"{t.name} updated after as_of"


def test_batch_sponsor_owns_its_product(db):
    assert not db.execute(
        "SELECT 1 FROM batch b JOIN product p USING (product_id) WHERE p.sponsor_id<>b.sponsor_id"
    ).fetchall()


def test_every_kind_is_injected_across_sponsors(truth):
    by_kind: dict[str, set[str]] = {}
    for a in truth["anomalies"]:
        if not a.get("informational"):
            by_kind.setdefault(a["kind"], set()).add(a["sponsor_id"])
    kinds = {
        "LATE_ENTRY",
        "MISSING_VERIFIER",
        "SELF_VERIFICATION",
        "OUT_OF_ORDER",
        "TRAINING_GAP",
        "DISPOSITION_WITH_OPEN_DEVIATION",
        "CAPA_OVERDUE",
        "CAPA_EXTENDED",
        "CAPA_NOT_EFFECTIVE",
        "CHANGE_OBLIGATION_DIFFERS",
        "CHANGE_EFFECTIVE_BEFORE_APPROVAL",
        "CALIBRATION_OVERDUE_IN_USE",
        "CALIBRATION_FAILED_IN_USE",
        "CHANGE_OBLIGATION_BELOW_AGREEMENT",
        "OUT_OF_SEQUENCE",
        "OUTSIDE_BATCH_WINDOW",
        "SUPPLIER_CONDITIONAL",
        "SUPPLIER_DISQUALIFIED",
        "OOS_INVALIDATED",
        "OOS_CONFIRMED",
        "NOTIFICATION_LATE",
    }
    assert set(by_kind) == kinds
    for kind, sponsors in by_kind.items():
        assert len(sponsors) >= 3, kind
    assert {a["sponsor_id"] for a in truth["anomalies"]} == {"NWT", "CTB", "FBK", "TSP", "WGT"}


def test_the_sponsors_differ_one_struggling_one_excellent(db, truth):
    """The demo plant tells a story (presets.DEMO_SPONSORS): Contoso struggles, Wingtip excels,
    Fabrikam is the largest; sizes and modalities differ."""
    problems = Counter(a["sponsor_id"] for a in truth["anomalies"] if not a.get("informational"))
    assert problems.most_common(1)[0][0] == "CTB"
    assert problems["CTB"] > 2 * max(problems[s] for s in ("NWT", "FBK", "TSP"))
    # Wingtip has no problem of its own: only what site-wide records bring to every sponsor.
    own = {"CAPA_OVERDUE", "NOTIFICATION_LATE", "DISPOSITION_WITH_OPEN_DEVIATION",
           "OOS_CONFIRMED", "LATE_ENTRY", "MISSING_VERIFIER", "SELF_VERIFICATION"}  # fmt: skip
    assert not [a for a in truth["anomalies"] if a["sponsor_id"] == "WGT" and a["kind"] in own]
    per_batch = dict(
        (s, devs / lots)
        for s, lots, devs in db.execute(
            "SELECT b.sponsor_id, count(DISTINCT b.batch_id), count(DISTINCT l.deviation_id) "
            "FROM batch b LEFT JOIN deviation_link l USING (batch_id) GROUP BY 1"
        )
    )
    assert max(per_batch, key=per_batch.get) == "CTB" and min(per_batch, key=per_batch.get) == "WGT"
    lots = dict(db.execute("SELECT sponsor_id, count(*) FROM batch GROUP BY 1"))
    assert max(lots, key=lots.get) == "FBK"
    modalities = dict(db.execute(
        "SELECT sponsor_id, group_concat(DISTINCT modality) FROM product GROUP BY 1"))  # fmt: skip
    assert modalities["CTB"] == "BIOLOGIC" and modalities["WGT"] == "STERILE_FILL_FINISH"
    assert len(modalities["NWT"].split(",")) == 3


EVENT_RULES = {
    "LATE_ENTRY": "(julianday(recorded_at) - julianday(performed_at)) * 1440 > 60",
    "MISSING_VERIFIER": "event_type IN ('DISPENSE','STEP','IPC','REVIEW') AND verified_by IS NULL",
    "SELF_VERIFICATION": "verified_by = performed_by",
    "OUT_OF_ORDER": "verified_at < performed_at",
    # Performed before an entry of a lower seq of its batch (the later-seq one is flagged).
    "OUT_OF_SEQUENCE": """event_id IN (SELECT event_id FROM (
        SELECT event_id, performed_at < max(performed_at) OVER (PARTITION BY batch_id ORDER BY seq
            RANGE BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS early FROM batch_event)
        WHERE early)""",
    "OUTSIDE_BATCH_WINDOW": """event_id IN (SELECT o.event_id FROM batch_event o
        JOIN batch p ON p.batch_id = o.batch_id WHERE o.performed_at < p.mfg_start
        OR (p.cmo_decision IN ('RELEASED', 'REJECTED') AND o.performed_at > p.cmo_decided_at))""",
}


@pytest.mark.parametrize("kind", sorted(EVENT_RULES))
def test_event_flags_are_exactly_the_injected(db, truth, kind):
    found = flagged(db, f"SELECT event_id FROM batch_event WHERE {EVENT_RULES[kind]}")
    assert found == keys(truth, kind)


def test_training_gaps_are_exactly_the_injected(db, truth):
    """No training record on a product SOP covers the performer on the day of the entry."""
    covered: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for op, sop, start, end in db.execute(
        "SELECT operator_id, sop_id, trained_at, due_at FROM training_record"
    ):
        covered.setdefault((op, sop), []).append((start, end))
    sops: dict[str, list[str]] = {}
    for product, sop in db.execute("SELECT product_id, sop_id FROM product_sop"):
        sops.setdefault(product, []).append(sop)
    found = set()
    for event_id, op, performed, product in db.execute(
        "SELECT e.event_id, e.performed_by, substr(e.performed_at, 1, 10), b.product_id "
        "FROM batch_event e JOIN batch b USING (batch_id)"
    ):
        for sop in sops[product]:
            if not any(s <= performed <= e for s, e in covered.get((op, sop), ())):
                found.add(event_id)
    assert found == keys(truth, "TRAINING_GAP")


def test_dispositions_with_open_deviation_are_exactly_the_injected(db, truth):
    found = flagged(
        db,
        """
        SELECT DISTINCT b.batch_id FROM batch b JOIN deviation_link l ON l.batch_id = b.batch_id
        JOIN deviation d USING (deviation_id)
        WHERE b.cmo_decided_at IS NOT NULL
          AND (d.closed_at IS NULL OR d.closed_at > b.cmo_decided_at)
    """,
    )
    assert found == keys(truth, "DISPOSITION_WITH_OPEN_DEVIATION")


def test_capa_flags_are_exactly_the_injected(db, truth):
    overdue = flagged(
        db,
        f"""SELECT capa_id FROM capa WHERE status NOT IN ('CLOSED','CANCELLED')
                              AND current_due < '{AS_OF}'""",
    )
    extended = flagged(db, "SELECT capa_id FROM capa_extension")
    assert extended == flagged(db, "SELECT capa_id FROM capa WHERE current_due > original_due")
    not_effective = flagged(
        db, "SELECT capa_id FROM capa_effectiveness WHERE result = 'NOT_EFFECTIVE'"
    )
    assert overdue == keys(truth, "CAPA_OVERDUE")
    assert extended == keys(truth, "CAPA_EXTENDED")
    assert not_effective == keys(truth, "CAPA_NOT_EFFECTIVE")
    late_closures = flagged(
        db,
        "SELECT capa_id FROM capa WHERE status = 'CLOSED' "
        "AND substr(closed_at, 1, 10) > original_due",
    )
    assert late_closures <= extended


def test_change_flags_are_exactly_the_injected(db, truth):
    differs = flagged(
        db,
        """
        SELECT i.impact_id FROM change_impact i JOIN change_control c USING (change_id)
        WHERE c.change_type = 'SOP' AND change_id IN (
            SELECT change_id FROM change_impact GROUP BY change_id
            HAVING sum(obligation = 'NOTIFY') > 0 AND sum(obligation = 'PRIOR_APPROVAL') > 0)
    """,
    )
    before = flagged(
        db,
        """
        SELECT i.impact_id FROM change_impact i JOIN change_control c USING (change_id)
        WHERE i.obligation = 'PRIOR_APPROVAL' AND c.actual_effective IS NOT NULL
          AND (i.decision <> 'APPROVED' OR i.decided_at IS NULL
               OR substr(i.decided_at, 1, 10) > c.actual_effective)
    """,
    )
    unnotified = flagged(
        db,
        """
        SELECT i.impact_id FROM change_impact i JOIN change_control c USING (change_id)
        WHERE i.obligation = 'NOTIFY' AND c.actual_effective IS NOT NULL
          AND (i.notified_at IS NULL OR substr(i.notified_at, 1, 10) > c.actual_effective)
    """,
    )
    below_agreement = flagged(
        db,
        """
        SELECT i.impact_id FROM change_impact i JOIN change_control c USING (change_id)
        JOIN quality_agreement q ON q.sponsor_id = i.sponsor_id
        JOIN agreement_term t ON t.agreement_id = q.agreement_id AND t.term_type = 'CHANGE'
             AND t.subject = c.change_type
        WHERE instr('NONE NOTIFY PRIOR_APPROVAL', i.obligation)
            < instr('NONE NOTIFY PRIOR_APPROVAL', t.obligation)
    """,
    )
    assert differs == keys(truth, "CHANGE_OBLIGATION_DIFFERS")
    assert below_agreement == keys(truth, "CHANGE_OBLIGATION_BELOW_AGREEMENT")
    assert before == keys(truth, "CHANGE_EFFECTIVE_BEFORE_APPROVAL")
    assert not unnotified


def test_calibration_flags_are_exactly_the_injected(db, truth):
    found = flagged(
        db,
        """
        SELECT u.usage_id FROM equipment_usage u
        JOIN equipment_event e ON e.equipment_event_id = (
            SELECT e2.equipment_event_id FROM equipment_event e2
            WHERE e2.equipment_id = u.equipment_id AND e2.event_type = 'CALIBRATION'
              AND e2.performed_at < u.started_at ORDER BY e2.performed_at DESC LIMIT 1)
        WHERE e.next_due < substr(u.started_at, 1, 10)
    """,
    )
    assert found == keys(truth, "CALIBRATION_OVERDUE_IN_USE")
    failed = flagged(
        db,
        """
        SELECT u.usage_id FROM equipment_usage u
        JOIN equipment_event e ON e.equipment_event_id = (
            SELECT e2.equipment_event_id FROM equipment_event e2
            WHERE e2.equipment_id = u.equipment_id AND e2.event_type = 'CALIBRATION'
              AND e2.performed_at <= u.started_at
            ORDER BY e2.performed_at DESC, e2.result = 'PASS' DESC LIMIT 1)
        WHERE e.result <> 'PASS'
    """,
    )
    assert failed == keys(truth, "CALIBRATION_FAILED_IN_USE")
    never_calibrated = flagged(
        db,
        """
        SELECT usage_id FROM equipment_usage u WHERE NOT EXISTS (
            SELECT 1 FROM equipment_event e WHERE e.equipment_id = u.equipment_id
            AND e.event_type = 'CALIBRATION' AND e.performed_at < u.started_at)""",
    )
    assert not never_calibrated


def test_supplier_flags_are_exactly_the_injected(db, truth):
    for status in ("CONDITIONAL", "DISQUALIFIED"):
        found = {
            (supplier, sponsor)
            for supplier, sponsor in db.execute(f"""
                SELECT DISTINCT s.supplier_id, b.sponsor_id FROM supplier s
                JOIN material_lot l USING (supplier_id)
                JOIN material_consumption c USING (lot_id) JOIN batch b USING (batch_id)
                WHERE s.status = '{status}'""")
        }
        expected = {
            (a["key"], a["sponsor_id"])
            for a in truth["anomalies"]
            if a["kind"] == f"SUPPLIER_{status}"
        }
        assert found == expected


def test_oos_are_exactly_the_injected(db, truth):
    assert flagged(db, "SELECT test_id FROM test_result WHERE is_oos = 1") == flagged(
        db, "SELECT test_id FROM oos_investigation"
    )
    for kind, outcome in (
        ("OOS_INVALIDATED", "INVALIDATED_LAB_ERROR"),
        ("OOS_CONFIRMED", "CONFIRMED"),
    ):
        found = flagged(db, f"SELECT oos_id FROM oos_investigation WHERE outcome = '{outcome}'")
        assert found == keys(truth, kind)
    open_at_disposition = db.execute("""
        SELECT count(*) FROM oos_investigation o JOIN batch b USING (batch_id)
        WHERE b.cmo_decided_at IS NOT NULL AND o.closed_at > b.cmo_decided_at""").fetchone()[0]
    assert open_at_disposition == 0


def test_notification_flags_are_exactly_the_injected(db, truth):
    found = flagged(
        db,
        """
        SELECT l.link_id FROM deviation_link l JOIN deviation d USING (deviation_id)
        JOIN quality_agreement q ON q.sponsor_id = l.sponsor_id
        JOIN agreement_term t ON t.agreement_id = q.agreement_id
             AND t.subject = 'DEVIATION_' || d.classification
        WHERE l.notified_at IS NOT NULL
          AND julianday(l.notified_at) > julianday(d.awareness_at) + t.deadline_hours / 24.0
    """,
    )
    assert found == keys(truth, "NOTIFICATION_LATE")
    terms = db.execute(
        "SELECT agreement_id, subject FROM agreement_term WHERE term_type = 'NOTIFICATION'"
    ).fetchall()
    assert len(terms) == DEMO.sponsors * len(NOTIFIABLE_EVENTS)


def test_sop_obligation_differs_between_sponsors(db):
    obligations = flagged(db, "SELECT DISTINCT obligation FROM agreement_term WHERE subject='SOP'")
    assert obligations == {"NOTIFY", "PRIOR_APPROVAL"}


# Batches per status for seed 7 as of 2026-11-26, pinned like PINNED_ROWS: nearly all
# released, and every stage of the lifecycle present.
BATCH_STATUSES = {
    "PLANNED": 6, "DISPENSED": 2, "IN_PROCESS": 3, "MFG_COMPLETE": 1, "QC_TESTING": 2,
    "BR_REVIEW": 7, "ON_HOLD": 1, "CMO_DISPOSITIONED": 2, "REJECTED": 16,
    "SPONSOR_RELEASED": 1096,
}  # fmt: skip


def test_batches_cover_the_lifecycle(db):
    statuses = dict(db.execute("SELECT status, count(*) FROM batch GROUP BY status"))
    assert statuses == BATCH_STATUSES
    recorded, fewest, most = db.execute(
        "SELECT count(*), min(n), max(n) FROM (SELECT count(*) n FROM batch_event e"
        " JOIN batch b USING (batch_id) WHERE b.status = 'SPONSOR_RELEASED' GROUP BY batch_id)"
    ).fetchone()
    assert recorded == statuses["SPONSOR_RELEASED"]  # every released batch has its record
    assert DEMO.events_per_batch[0] <= fewest and most <= DEMO.events_per_batch[1]
    assert 0.2 <= rows(db, "deviation") / rows(db, "batch") <= 0.4


def test_the_journeys_late_ph_entry(db, truth):
    late = [
        a
        for a in truth["anomalies"]
        if a["kind"] == "LATE_ENTRY" and a["batch_id"] == truth["journey"]["late_ph_entry_batch"]
    ]
    step, reason = db.execute(
        "SELECT step_name, late_entry_reason FROM batch_event WHERE event_id = ?", (late[0]["key"],)
    ).fetchone()
    assert step == "Step 7: pH check" and reason
    assert "recorded 3 h 40 min after" in late[0]["detail"]


def test_every_disposition_has_a_prior_qa_review(db):
    missing = db.execute("""
        SELECT count(*) FROM batch b WHERE cmo_decided_at IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM batch_event e WHERE e.batch_id = b.batch_id
            AND e.event_type = 'REVIEW' AND e.performed_at < b.cmo_decided_at)""").fetchone()[0]
    assert missing == 0


def test_shared_vessels_see_cross_sponsor_changeovers(db):
    changeovers = db.execute("""
        WITH u AS (
            SELECT u.equipment_id, b.sponsor_id, LAG(b.sponsor_id) OVER (
                PARTITION BY u.equipment_id ORDER BY u.started_at) AS previous
            FROM equipment_usage u JOIN batch b USING (batch_id))
        SELECT equipment_id, count(*) FROM u WHERE previous <> sponsor_id GROUP BY equipment_id
    """).fetchall()
    # Every train hosts several sponsors' products (plant.py interleaves them): each of its
    # pieces of equipment sees a changeover between sponsors.
    trained = flagged(db, "SELECT equipment_id FROM equipment WHERE train IS NOT NULL")
    assert {equipment for equipment, _ in changeovers} == trained
    assert len(trained) == TRAIN_EQUIPMENT_PIECES
    uncleaned = db.execute(
        "SELECT count(*) FROM equipment_usage WHERE cleaning_verified_at IS NULL"
        " OR cleaning_verified_at >= started_at"
    ).fetchone()[0]
    assert uncleaned == 0


def test_simulate_day_moves_the_clock_and_one_batch(plant, tmp_path):
    copy = tmp_path / "plant.sqlite"
    shutil.copy(plant, copy)
    before = sqlite3.connect(copy)
    marks = (before.execute(f"SELECT max(updated_at) FROM {t.name}").fetchone()[0] for t in TABLES)
    watermark = max(mark for mark in marks if mark is not None)  # decision_receipt is empty
    owners = dict(before.execute("SELECT batch_id, sponsor_id FROM batch"))
    (in_flight,) = before.execute(
        "SELECT count(*) FROM batch WHERE status IN ('DISPENSED', 'IN_PROCESS')"
    ).fetchone()
    before.close()

    summary = simulate_day(copy, seed=7)

    after = sqlite3.connect(copy)
    # Nothing is recorded on the as-of date itself: the day after the last record is that date.
    assert summary.day == AS_OF
    touched = {
        t.name: after.execute(
            f"SELECT count(*) FROM {t.name} WHERE updated_at > ?", (watermark,)
        ).fetchone()[0]
        for t in TABLES
    }
    # day.py: four entries per in-flight batch; QC done on one batch, the sponsor's release
    # of another and one rebooked; a deviation raised with its link; a CAPA closed with its
    # effectiveness check. Nothing else.
    day = {"batch_event": 4 * in_flight, "batch": 3, "deviation": 1, "deviation_link": 1,
           "capa": 1, "capa_effectiveness": 1}  # fmt: skip
    assert touched == {t.name: day.get(t.name, 0) for t in TABLES}
    assert summary.changed == day
    moved = dict(after.execute("SELECT batch_id, sponsor_id FROM batch"))
    changed = [b for b in owners if owners[b] != moved[b]]
    assert changed == [summary.moved_batch_id]
    assert not after.execute(
        "SELECT 1 FROM batch b JOIN product p USING (product_id) WHERE p.sponsor_id<>b.sponsor_id"
    ).fetchall()
    after.close()


# --- today at the plant: the stories (JOURNEYS.md, Priya's Monday) ------------------------

IN_FLIGHT = ("PLANNED", "DISPENSED", "IN_PROCESS", "MFG_COMPLETE", "QC_TESTING", "BR_REVIEW",
             "CMO_DISPOSITIONED", "ON_HOLD")  # fmt: skip
# A Thursday (the module's plant), a Monday, and a Friday whose next month is in a new year.
OTHER_DAYS = (date(2026, 11, 30), date(2026, 12, 25))
# Entry types a batch may have at each status: the record stops at the stage it is in.
ALLOWED_EVENTS = {
    "PLANNED": set(),
    "DISPENSED": {"DISPENSE"},
    "IN_PROCESS": {"DISPENSE", "STEP", "IPC", "SAMPLE"},
    "MFG_COMPLETE": {"DISPENSE", "STEP", "IPC", "SAMPLE"},
    "QC_TESTING": {"DISPENSE", "STEP", "IPC", "SAMPLE", "RESULT"},
    "BR_REVIEW": {"DISPENSE", "STEP", "IPC", "SAMPLE", "RESULT", "REVIEW"},
    "ON_HOLD": {"DISPENSE", "STEP", "IPC", "SAMPLE", "RESULT", "REVIEW"},
}


@pytest.fixture(scope="session")
def plant_on(tmp_path_factory):
    """The demo plant generated with another clock, once per day asked for."""
    made: dict[date, tuple[date, sqlite3.Connection, dict]] = {}

    def on(day: date) -> tuple[date, sqlite3.Connection, dict]:
        if day not in made:
            out = tmp_path_factory.mktemp("plant-day") / "plant.sqlite"
            generate(out, seed=7, preset="demo", as_of=day)
            conn = sqlite3.connect(f"file:{out}?mode=ro", uri=True)
            made[day] = (day, conn, json.loads(ground_truth_path(out).read_text()))
        return made[day]

    yield on
    for _, conn, _ in made.values():
        conn.close()


@pytest.fixture(params=(AS_OF, *OTHER_DAYS), ids=str)
def today(request, db, truth, plant_on) -> tuple[date, sqlite3.Connection, dict]:
    return (AS_OF, db, truth) if request.param == AS_OF else plant_on(request.param)


def informational(truth: dict, kind: str) -> list[dict]:
    return [a for a in truth["anomalies"] if a["kind"] == kind and a.get("informational")]


def test_batches_in_flight_spread_over_the_lifecycle(today):
    as_of, db, _ = today
    rows = db.execute(
        f"SELECT sponsor_id, status FROM batch WHERE status IN {IN_FLIGHT}"
    ).fetchall()
    assert {status for _, status in rows} == set(IN_FLIGHT)
    for sponsor in ("NWT", "CTB", "FBK", "TSP", "WGT"):
        stages = {status for s, status in rows if s == sponsor}
        assert len(stages) >= 3, (sponsor, stages)
    planned = sum(status == "PLANNED" for _, status in rows)
    assert 0 < planned < len(rows) / 2


def test_events_stop_at_the_stage_a_batch_is_in(today):
    as_of, db, _ = today
    for status, allowed in ALLOWED_EVENTS.items():
        seen = flagged(
            db,
            f"""SELECT DISTINCT e.event_type FROM batch_event e
                               JOIN batch b USING (batch_id) WHERE b.status = '{status}'""",
        )
        assert seen <= allowed, status
    unsigned = db.execute("""
        SELECT count(*) FROM batch b WHERE status = 'CMO_DISPOSITIONED' AND NOT EXISTS (
            SELECT 1 FROM batch_event e WHERE e.batch_id = b.batch_id AND e.event_type = 'SIGN')
    """).fetchone()[0]
    assert unsigned == 0
    early_release_tests = db.execute("""
        SELECT count(*) FROM test_result t JOIN batch b USING (batch_id)
        WHERE t.test_type = 'RELEASE' AND b.status IN ('PLANNED', 'DISPENSED', 'IN_PROCESS')
    """).fetchone()[0]
    assert early_release_tests == 0


def test_two_batches_await_the_first_sponsors_release(today):
    as_of, db, truth = today
    waits = dict(
        db.execute(f"""SELECT batch_id, julianday('{as_of}') - julianday(date(cmo_decided_at))
                       FROM batch WHERE sponsor_id = 'NWT' AND status = 'CMO_DISPOSITIONED'""")
    )
    assert sorted(waits.values())[-1] == 9 and len(waits) == 2
    entries = informational(truth, "BATCH_AWAITING_RELEASE")
    assert {a["key"] for a in entries} == set(waits)
    longest = max(waits, key=waits.get)
    assert {a["detail"] for a in entries if a["key"] == longest} == {"waiting 9 days"}
    assert longest == truth["journey"]["late_ph_entry_batch"]
    outcome = db.execute(
        "SELECT outcome, summary FROM oos_investigation WHERE batch_id = ?", (longest,)
    ).fetchall()
    assert [o for o, _ in outcome] == ["INVALIDATED_LAB_ERROR"] and outcome[0][1]


def test_one_major_deviation_opened_last_friday_on_the_biologic(today):
    as_of, db, truth = today
    rows = db.execute("""
        SELECT DISTINCT d.deviation_id, d.status, substr(d.awareness_at, 1, 10), p.modality
        FROM deviation d JOIN deviation_link l USING (deviation_id)
        JOIN product p ON p.product_id = l.product_id
        WHERE l.sponsor_id = 'NWT' AND d.classification IN ('MAJOR', 'CRITICAL')
          AND d.status NOT IN ('CLOSED', 'CANCELLED')""").fetchall()
    assert len(rows) == 1
    deviation_id, status, aware, modality = rows[0]
    friday = date.fromisoformat(aware)
    assert friday.weekday() == 4 and 1 <= (as_of - friday).days <= 7
    assert status in ("OPEN", "INVESTIGATION") and modality == "BIOLOGIC"
    assert [a["key"] for a in informational(truth, "MAJOR_DEVIATION_OPEN")] == [deviation_id]


def test_one_change_awaits_the_first_sponsors_prior_approval(today):
    as_of, db, truth = today
    rows = db.execute("""
        SELECT i.impact_id, i.change_id, c.status, c.planned_effective, i.notified_at
        FROM change_impact i JOIN change_control c USING (change_id)
        WHERE i.sponsor_id = 'NWT' AND i.obligation = 'PRIOR_APPROVAL'
          AND coalesce(i.decision, 'PENDING') = 'PENDING'
          AND c.status NOT IN ('REJECTED', 'CLOSED')""").fetchall()
    assert len(rows) == 1
    impact_id, change_id, status, planned, notified = rows[0]
    month = as_of.month % 12 + 1
    assert planned == date(as_of.year + (month == 1), month, 14).isoformat()
    assert status == "SPONSOR_REVIEW" and notified
    others = db.execute(
        "SELECT sponsor_id, obligation FROM change_impact "
        "WHERE change_id = ? AND sponsor_id <> 'NWT'",
        (change_id,),
    ).fetchall()
    assert [o for _, o in others] == ["NOTIFY"]
    assert [a["key"] for a in informational(truth, "CHANGE_AWAITING_APPROVAL")] == [impact_id]


def test_three_data_integrity_exceptions_this_month_for_the_first_sponsor(today):
    as_of, db, truth = today
    since = date.fromordinal(as_of.toordinal() - 30).isoformat()
    found: dict[str, set[str]] = {}
    for kind, rule in EVENT_RULES.items():
        found[kind] = flagged(
            db,
            f"""SELECT e.event_id FROM batch_event e
            JOIN batch b USING (batch_id) WHERE b.sponsor_id = 'NWT'
            AND e.performed_at >= '{since}' AND ({rule})""",
        )
    assert {k: len(v) for k, v in found.items() if v} == {
        "LATE_ENTRY": 1, "MISSING_VERIFIER": 1, "SELF_VERIFICATION": 1
    }  # fmt: skip
    for kind, events in found.items():
        assert events <= keys(truth, kind)
    (late,) = found["LATE_ENTRY"]
    step, reason, batch_id = db.execute(
        "SELECT step_name, late_entry_reason, batch_id FROM batch_event WHERE event_id = ?", (late,)
    ).fetchone()
    assert step == "Step 7: pH check" and reason
    assert batch_id == truth["journey"]["late_ph_entry_batch"]


def test_every_sponsor_has_open_work_and_recent_activity(today):
    as_of, db, _ = today
    since = date.fromordinal(as_of.toordinal() - 30).isoformat()
    open_deviations = db.execute("""
        SELECT DISTINCT l.sponsor_id, d.deviation_id, d.classification FROM deviation d
        JOIN deviation_link l USING (deviation_id)
        WHERE d.status NOT IN ('CLOSED', 'CANCELLED')""").fetchall()
    classes = [c for _, _, c in open_deviations]
    assert classes.count("MINOR") > len(classes) / 2 and "MAJOR" in classes
    capas_in_due = db.execute(f"""
        SELECT DISTINCT l.sponsor_id FROM capa c JOIN deviation_link l USING (deviation_id)
        WHERE c.status NOT IN ('CLOSED', 'CANCELLED') AND c.current_due >= '{as_of}'""")
    recent = {
        "event": "SELECT b.sponsor_id FROM batch_event e JOIN batch b USING (batch_id) "
        f"WHERE e.performed_at >= '{since}'",
        "test": "SELECT b.sponsor_id FROM test_result t JOIN batch b USING (batch_id) "
        f"WHERE t.tested_at >= '{since}'",
        "deviation": "SELECT l.sponsor_id FROM deviation d JOIN deviation_link l "
        f"USING (deviation_id) WHERE d.awareness_at >= '{since}'",
    }
    sponsors = {"NWT", "CTB", "FBK", "TSP", "WGT"}
    for sponsor in sponsors:
        assert sum(s == sponsor for s, _, _ in open_deviations) >= 2, sponsor
    assert {s for (s,) in capas_in_due} == sponsors
    for what, sql in recent.items():
        assert flagged(db, sql) == sponsors, what


@pytest.mark.parametrize("day", OTHER_DAYS, ids=str)
def test_other_days_keep_the_clean_baseline(day, plant_on):
    """On other clocks too, every event flag is an injected one."""
    _, db, truth = plant_on(day)
    for kind, rule in EVENT_RULES.items():
        assert flagged(db, f"SELECT event_id FROM batch_event WHERE {rule}") == keys(truth, kind)
