"""The data-integrity forms of DOMAIN.md that used to slip through: steps out of sequence, an
entry outside its batch, equipment used after a failed calibration, and a change impact
recorded with a weaker obligation than the sponsor's quality agreement sets.

On the demo plant the ETL flags exactly what the generator planted. Then each form is put by
hand, with plain SQL, into a copy of the demo source (not by the generator): the ETL must flag
those rows and no other, for their own sponsor only, and the batch record, change control,
compliance and overview queries must show each of them there and nowhere else.
"""

from __future__ import annotations

import shutil
import sqlite3
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import NamedTuple

import duckdb
import pytest

from etl.run import run_etl
from tests.conftest import AS_OF, DemoPlant
from warehouse.filters import Filters
from warehouse.queries import compliance, overview
from warehouse.queries.batch_record import batch_record, review_by_exception
from warehouse.queries.change_control import below_agreement_sentences, change_impacts
from warehouse.scope import open_sponsor_scope, sponsor_ids

# Published flags: (table, key, condition that sets it); a use's verdicts are flags negated.
FLAGS = {
    "batch_event": ("event_id", ("late_entry", "sign_off_gap", "self_verification",
                                 "out_of_order", "training_gap", "out_of_sequence",
                                 "outside_batch_window", "di_exception")),
    "equipment_usage": ("usage_id", ("NOT calibration_valid_at_use",
                                     "NOT qualification_valid_at_use")),
    "change_impact": ("impact_id", ("violation", "effective_early",
                                    "obligation_below_agreement")),
    "batch": ("batch_id", ("disposed_with_open_deviation", "qa_review_missing")),
}  # fmt: skip
# Ground-truth kinds and the flag that must mark exactly their rows.
PLANTED = {
    "OUT_OF_SEQUENCE": ("batch_event", "out_of_sequence"),
    "OUTSIDE_BATCH_WINDOW": ("batch_event", "outside_batch_window"),
    "CALIBRATION_FAILED_IN_USE": ("equipment_usage", "NOT calibration_valid_at_use"),
    "CHANGE_OBLIGATION_BELOW_AGREEMENT": ("change_impact", "obligation_below_agreement"),
    "LATE_ENTRY": ("batch_event", "late_entry"),
    "OUT_OF_ORDER": ("batch_event", "out_of_order"),
    "TRAINING_GAP": ("batch_event", "training_gap"),
    "CHANGE_EFFECTIVE_BEFORE_APPROVAL": ("change_impact", "effective_early"),
}
WHOLE_HISTORY = Filters(date(2000, 1, 1), AS_OF)
EVENTS_OF, USE_OF, CHANGE_OF = "CTB", "FBK", "TSP"  # whose records get each form by hand
SECONDS = "%Y-%m-%dT%H:%M:%S"


def flags(warehouse: Path) -> set[tuple[str, str, str, str]]:
    """Every flag set in the published snapshot: (table, flag, partition, key)."""
    found = set()
    for table, (key, conditions) in FLAGS.items():
        files = warehouse / "current" / table / "*" / "*.parquet"
        for condition in conditions:
            rows = duckdb.sql(
                f"SELECT sponsor_id, {key} FROM read_parquet('{files}', hive_partitioning = true)"
                f" WHERE {condition}"
            ).fetchall()
            found |= {(table, condition, sponsor, value) for sponsor, value in rows}
    return found


@pytest.mark.parametrize("kind", sorted(PLANTED))
def test_the_etl_flags_exactly_what_the_demo_plant_planted(kind, demo_plant, demo_warehouse):
    table, flag = PLANTED[kind]
    planted = {(a["sponsor_id"], a["key"]) for a in demo_plant.ground_truth["anomalies"]
               if a["kind"] in _same_flag(flag)}  # fmt: skip
    assert {a["sponsor_id"] for a in demo_plant.ground_truth["anomalies"] if a["kind"] == kind}
    found = {(s, key) for t, f, s, key in flags(demo_warehouse) if (t, f) == (table, flag)}
    assert found == planted


def _same_flag(flag: str) -> set[str]:
    return {kind for kind, (_, other) in PLANTED.items() if other == flag} | (
        {"CALIBRATION_OVERDUE_IN_USE"} if flag == "NOT calibration_valid_at_use" else set()
    )


# --- each form put by hand into a copy of the source ---------------------------------------


class Injected(NamedTuple):
    warehouse: Path
    batch_id: str  # the events' batch (EVENTS_OF)
    early_event: str  # performed before the step above it
    outside_event: str  # performed before its batch started
    use_batch_id: str  # the failed calibration's batch (USE_OF)
    usage_id: str
    impact_id: str  # recorded NOTIFY where the agreement requires PRIOR_APPROVAL (CHANGE_OF)
    change_number: str


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _move(db: sqlite3.Connection, event_id: str, to: datetime) -> None:
    """An entry moved whole: performed, recorded and verified by the same amount."""
    performed, recorded, verified = db.execute(
        "SELECT performed_at, recorded_at, verified_at FROM batch_event WHERE event_id = ?",
        (event_id,),
    ).fetchone()
    shift = to - _at(performed)
    moved = [f"{_at(t) + shift:{SECONDS}}" if t else None for t in (recorded, verified)]
    db.execute(
        "UPDATE batch_event SET performed_at = ?, recorded_at = ?, verified_at = ? "
        "WHERE event_id = ?",
        (f"{to:{SECONDS}}", *moved, event_id),
    )


def _inject_events(db: sqlite3.Connection, since: str) -> tuple[str, str, str]:
    """Step 5 of a recent batch moved before step 4 (still after step 3); step 0 moved to
    half an hour before the batch started."""
    batch_id, started = db.execute(
        "SELECT batch_id, mfg_start FROM batch WHERE sponsor_id = ? AND mfg_start >= ? "
        "AND (SELECT count(*) FROM batch_event e WHERE e.batch_id = batch.batch_id) > 10 "
        "ORDER BY mfg_start, batch_id LIMIT 1",
        (EVENTS_OF, since),
    ).fetchone()
    steps = dict(db.execute(
        "SELECT seq, event_id FROM batch_event WHERE batch_id = ? AND seq <= 5", (batch_id,)
    ).fetchall())  # fmt: skip
    times = dict(db.execute(
        "SELECT seq, performed_at FROM batch_event WHERE batch_id = ? AND seq IN (3, 4)",
        (batch_id,),
    ).fetchall())  # fmt: skip
    before_four = _at(times[4]) - min(timedelta(minutes=5), (_at(times[4]) - _at(times[3])) / 2)
    _move(db, steps[5], before_four)
    _move(db, steps[0], _at(started) - timedelta(minutes=30))
    return batch_id, steps[5], steps[0]


def _inject_failed_calibration(db: sqlite3.Connection, since: str) -> tuple[str, str]:
    """A calibration that FAILED an hour before a recent use of a shared vessel, between the
    previous use (another sponsor's) and this one; it passes again an hour after the use."""
    rows = db.execute(
        """
        WITH uses AS (
            SELECT u.*, b.sponsor_id, lag(b.sponsor_id) OVER w AS previous_sponsor,
                   lag(u.ended_at) OVER w AS previous_end, lead(u.started_at) OVER w AS next_start
            FROM equipment_usage u JOIN batch b USING (batch_id)
            WINDOW w AS (PARTITION BY u.equipment_id ORDER BY u.started_at, u.usage_id))
        SELECT usage_id, batch_id, equipment_id, started_at, ended_at, previous_end, next_start
        FROM uses
        WHERE sponsor_id = ? AND previous_sponsor <> sponsor_id AND started_at >= ?
          AND ended_at < ? ORDER BY started_at, usage_id""",
        (USE_OF, since, f"{AS_OF - timedelta(days=2)}"),
    ).fetchall()

    def room(row: tuple) -> tuple[datetime, datetime] | None:
        """(failed, passed again) if both fit between this use's neighbours."""
        _, _, equipment_id, started, ended, previous_end, next_start = row
        failed, passed = _at(started) - timedelta(hours=1), _at(ended) + timedelta(hours=1)
        (last,) = db.execute(
            "SELECT max(performed_at) FROM equipment_event WHERE equipment_id = ? "
            "AND event_type = 'CALIBRATION' AND performed_at <= ?",
            (equipment_id, started),
        ).fetchone()
        between = _at(previous_end) < failed and (next_start is None or passed < _at(next_start))
        return (failed, passed) if between and _at(last) < failed else None

    chosen = next((row for row in rows if room(row)), None)
    assert chosen, f"no recent use of a shared vessel by {USE_OF} to fail a calibration before"
    usage_id, batch_id, equipment_id = chosen[:3]
    failed, passed = room(chosen)
    for n, (at, result, due) in enumerate(
        ((failed, "FAIL", None), (passed, "PASS", f"{passed.date() + timedelta(182)}"))
    ):
        db.execute(
            "INSERT INTO equipment_event VALUES (?, ?, 'CALIBRATION', ?, ?, ?, ?)",
            (f"EE-BY-HAND-{n}", equipment_id, f"{at:{SECONDS}}", due, result, f"{at:{SECONDS}}"),
        )  # fmt: skip
    return batch_id, usage_id


def _inject_weaker_obligation(db: sqlite3.Connection) -> tuple[str, str]:
    """A process change effective ten days ago whose one impact was recorded as NOTIFY
    (notified in time), where the sponsor's agreement requires PRIOR_APPROVAL."""
    (required,) = db.execute(
        "SELECT t.obligation FROM agreement_term t JOIN quality_agreement q USING (agreement_id)"
        " WHERE q.sponsor_id = ? AND t.term_type = 'CHANGE' AND t.subject = 'PROCESS'",
        (CHANGE_OF,),
    ).fetchone()
    assert required == "PRIOR_APPROVAL"
    (site_id,) = db.execute("SELECT site_id FROM site ORDER BY site_id LIMIT 1").fetchone()
    (product_id,) = db.execute(
        "SELECT product_id FROM product WHERE sponsor_id = ? ORDER BY product_id LIMIT 1",
        (CHANGE_OF,),
    ).fetchone()
    opened, effective = AS_OF - timedelta(days=40), AS_OF - timedelta(days=10)
    notified = f"{AS_OF - timedelta(days=35)}T09:00:00"
    number = "CC-2026-9901"
    db.execute(
        "INSERT INTO change_control VALUES ('CC-BY-HAND', ?, ?, 'Granulation end point moved', "
        "'PROCESS', 'MEDIUM', 'IMPLEMENTED', ?, ?, ?, ?)",
        (number, site_id, f"{opened}T10:00:00", f"{effective}", f"{effective}",
         f"{effective}T10:00:00"),
    )  # fmt: skip
    db.execute(
        "INSERT INTO change_impact VALUES ('CC-BY-HAND-I001', 'CC-BY-HAND', ?, ?, 'NOTIFY', ?, "
        "NULL, NULL, ?)",
        (CHANGE_OF, product_id, notified, notified),
    )
    return "CC-BY-HAND-I001", number


@pytest.fixture(scope="module")
def injected(demo_plant: DemoPlant, tmp_path_factory) -> Injected:
    folder = tmp_path_factory.mktemp("by-hand")
    source = Path(shutil.copy(demo_plant.path, folder / "plant.sqlite"))
    since = f"{AS_OF - timedelta(days=25)}"
    with sqlite3.connect(source) as db:
        batch_id, early, outside = _inject_events(db, since)
        use_batch, usage_id = _inject_failed_calibration(db, since)
        impact_id, number = _inject_weaker_obligation(db)
    warehouse = folder / "warehouse"
    run_etl(source, warehouse, full=True)
    return Injected(warehouse, batch_id, early, outside, use_batch, usage_id, impact_id, number)


def test_each_form_is_flagged_and_nothing_else_is(injected, demo_warehouse) -> None:
    new = flags(injected.warehouse) - flags(demo_warehouse)
    assert new == {
        ("batch_event", "out_of_sequence", EVENTS_OF, injected.early_event),
        ("batch_event", "di_exception", EVENTS_OF, injected.early_event),
        ("batch_event", "outside_batch_window", EVENTS_OF, injected.outside_event),
        ("batch_event", "di_exception", EVENTS_OF, injected.outside_event),
        ("equipment_usage", "NOT calibration_valid_at_use", USE_OF, injected.usage_id),
        ("change_impact", "obligation_below_agreement", CHANGE_OF, injected.impact_id),
        ("change_impact", "violation", CHANGE_OF, injected.impact_id),
    }
    assert flags(demo_warehouse) <= flags(injected.warehouse)


@pytest.mark.parametrize(
    ("owner", "batch", "expected"),
    [(EVENTS_OF, "batch_id", {"OUT_OF_SEQUENCE": "early_event",
                              "OUTSIDE_BATCH_WINDOW": "outside_event"}),
     (USE_OF, "use_batch_id", {"CALIBRATION_FAILED_IN_USE": "usage_id"})],
)  # fmt: skip
def test_the_batch_record_explains_each_in_one_sentence_for_its_sponsor_only(
    injected, owner, batch, expected
) -> None:
    batch_id = getattr(injected, batch)
    for sponsor in sponsor_ids(injected.warehouse):
        record = batch_record(open_sponsor_scope(injected.warehouse, sponsor), batch_id)
        found = {f.kind: f for f in review_by_exception(record)}
        if sponsor != owner:
            assert record.header.height == 0 and not found
            continue
        for kind, ref in expected.items():
            assert found[kind].ref == getattr(injected, ref)
            sentence = found[kind].sentence
            assert sentence.endswith(".") and sentence.count(". ") == 0, sentence
            assert "_" not in sentence.replace(found[kind].ref, ""), sentence
    failed = review_by_exception(batch_record(open_sponsor_scope(injected.warehouse, USE_OF),
                                              injected.use_batch_id))  # fmt: skip
    [use] = [f for f in failed if f.ref == injected.usage_id]
    assert "failed" in use.sentence


def test_the_change_is_a_breach_on_its_sponsors_change_control_and_compliance_only(
    injected,
) -> None:
    for sponsor in sponsor_ids(injected.warehouse):
        scope = open_sponsor_scope(injected.warehouse, sponsor)
        impacts = change_impacts(scope, WHOLE_HISTORY, AS_OF)
        changes = compliance.change_obligations(scope, WHOLE_HISTORY)
        events = compliance.notifiable_events(scope, WHOLE_HISTORY, AS_OF)
        breaches = compliance.breaches(events, changes, datetime.combine(AS_OF, time()))
        mine = breaches.filter(breaches["record_key"] == injected.impact_id)
        if sponsor != CHANGE_OF:
            assert injected.change_number not in impacts["change_number"].to_list()
            assert mine.height == 0
            continue
        row = impacts.filter(impacts["impact_id"] == injected.impact_id).row(0, named=True)
        assert row["violation"] and row["obligation_below_agreement"]
        assert row["obligation_required"] == "PRIOR_APPROVAL"
        [sentence] = [s for s in below_agreement_sentences(impacts)
                      if injected.change_number in s]  # fmt: skip
        assert "needing only a notification from the sponsor" in sentence
        assert "requires prior approval for process changes." in sentence
        assert mine["kind"].to_list() == ["CHANGE_OBLIGATION_BELOW_AGREEMENT"]
        assert mine["broken_by"].to_list() == ["recorded as needing only a notification"]


def test_each_counts_in_its_own_sponsors_data_integrity_exceptions_only(
    injected, demo_warehouse
) -> None:
    added = {EVENTS_OF: 2, USE_OF: 1, CHANGE_OF: 1}
    for sponsor in sponsor_ids(injected.warehouse):
        counts = [
            overview.data_integrity_exceptions(
                open_sponsor_scope(warehouse, sponsor), WHOLE_HISTORY, AS_OF
            ).height
            for warehouse in (demo_warehouse, injected.warehouse)
        ]
        assert counts[1] - counts[0] == added.get(sponsor, 0), sponsor
    listed = overview.data_integrity_exceptions(
        open_sponsor_scope(injected.warehouse, CHANGE_OF), WHOLE_HISTORY, AS_OF
    )
    assert f"change {injected.change_number}" in listed["step_name"].to_list()
