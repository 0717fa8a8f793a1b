"""Bad input of every kind reaches quarantine with its key and a readable reason; nothing is
lost (per table: extracted = valid + quarantined, and every valid row is published)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import polars as pl
import pytest

from etl.extract import _declared, open_source
from etl.run import EtlError, run_etl
from tests.source_fixtures import Plant, U, base_plant, write_csv, write_sqlite
from warehouse.contract import TABLES, TABLES_BY_NAME
from warehouse.layout import MANIFEST, QUARANTINE, current_snapshot


def _batch(**changes: object) -> dict[str, object]:
    row = dict(base_plant()["batch"][0])
    return {**row, "batch_id": "B-BAD", "batch_number": "ACME-0099", **changes}


def _event(**changes: object) -> dict[str, object]:
    return {**base_plant()["batch_event"][0], "event_id": "E-BAD", **changes}


def _add(table: str, row: dict[str, object]) -> Callable[[Plant], None]:
    return lambda plant: plant[table].append(row)


def _no_agreement_sponsor(plant: Plant) -> None:
    plant["sponsor"].append({"sponsor_id": "GAMMA", "name": "Gamma", "updated_at": U})
    plant["change_impact"].append(
        {
            **plant["change_impact"][0],
            "impact_id": "CI-BAD",
            "sponsor_id": "GAMMA",
            "product_id": None,
        }  # fmt: skip
    )


def _duplicate(plant: Plant) -> None:
    plant["batch_event"] += [_event(event_id="E-DUP"), _event(event_id="E-DUP", seq=7)]


def _cascade(plant: Plant) -> None:
    plant["batch"].append(_batch(sponsor_id="GAMMA"))
    plant["batch_event"].append(_event(batch_id="B-BAD"))


# (case id, mutation, quarantined table, key, expected reason text)
CASES = [
    ("missing sponsor", _add("batch", _batch(sponsor_id=None)), "batch", "B-BAD",
     "sponsor_id is missing"),
    ("empty sponsor id", _add("batch", _batch(sponsor_id="")), "batch", "B-BAD",
     "sponsor_id is missing"),
    ("unknown sponsor", _add("batch", _batch(sponsor_id="GAMMA")), "batch", "B-BAD",
     "sponsor_id 'GAMMA' has no sponsor"),
    ("unsafe sponsor ../B", _add("batch", _batch(sponsor_id="../B")), "batch", "B-BAD",
     "unsafe sponsor id '../B'"),
    ("unsafe sponsor A/B", _add("batch", _batch(sponsor_id="A/B")), "batch", "B-BAD",
     "unsafe sponsor id 'A/B'"),
    ("unsafe sponsor *", _add("batch", _batch(sponsor_id="*")), "batch", "B-BAD",
     "unsafe sponsor id '*'"),
    ("reserved sponsor SITE", _add("sponsor", {"sponsor_id": "SITE", "name": "x", "updated_at": U}),
     "sponsor", "SITE", "unsafe sponsor id 'SITE'"),
    ("unsafe sponsor registry row", _add("sponsor", {"sponsor_id": "../B", "name": "x",
                                                     "updated_at": U}),
     "sponsor", "../B", "unsafe sponsor id '../B'"),
    ("product of another sponsor", _add("batch", _batch(product_id="P-BETA")), "batch", "B-BAD",
     "product 'P-BETA' belongs to sponsor BETA, not to this row's sponsor ACME"),
    ("orphan batch of an event", _add("batch_event", _event(batch_id="B-NONE")), "batch_event",
     "E-BAD", "batch_id 'B-NONE' has no batch"),
    ("orphan supplier of a lot", _add("material_lot", {**base_plant()["material_lot"][0],
                                                        "lot_id": "LOT-BAD",
                                                        "supplier_id": "SUP-NONE"}),
     "material_lot", "LOT-BAD", "supplier_id 'SUP-NONE' has no supplier"),
    ("parent quarantined", _cascade, "batch_event", "E-BAD", "parent batch 'B-BAD' quarantined"),
    ("duplicate key", _duplicate, "batch_event", "E-DUP",
     "duplicate key 'E-DUP' (all 2 copies quarantined)"),
    ("unparseable datetime", _add("batch_event", _event(performed_at="yesterday")), "batch_event",
     "E-BAD", "performed_at is not a valid datetime: 'yesterday'"),
    ("unparseable date", _add("batch", _batch(mfg_end="2026-02-30T08:00:00")), "batch", "B-BAD",
     "mfg_end is not a valid datetime: '2026-02-30T08:00:00'"),
    ("unparseable int", _add("batch", _batch(units_produced="lots")), "batch", "B-BAD",
     "units_produced is not a valid int: 'lots'"),
    # An INTEGER column keeps a fraction as REAL: the driver refuses it as an integer.
    ("fractional int", _add("batch", _batch(units_produced=1.5)), "batch", "B-BAD",
     "units_produced is not a valid int: '1.5'"),
    ("fractional entry seq", _add("batch_event", _event(seq=2.5)), "batch_event", "E-BAD",
     "seq is not a valid int: '2.5'"),
    # A REAL column keeps text that is no number as text: the driver refuses it as a double.
    ("text in a real column", _add("test_result", {**base_plant()["test_result"][0],
                                                   "test_id": "TEST-BAD", "result_value": "n/a"}),
     "test_result", "TEST-BAD", "result_value is not a valid float: 'n/a'"),
    ("recorded years before performed",
     _add("batch_event", _event(recorded_at="2019-01-01T06:12:00")), "batch_event", "E-BAD",
     "recorded_at 2019-01-01T06:12:00 is more than a day before performed_at"),
    ("recorded over a year after",
     _add("batch_event", _event(performed_at="2024-01-01T06:00:00",
                                verified_at="2024-01-01T07:00:00")),
     "batch_event", "E-BAD", "is more than a year after performed_at 2024-01-01T06:00:00"),
    ("future date", _add("batch_event", _event(performed_at="2031-01-01T06:00:00",
                                              recorded_at="2031-01-01T06:01:00")),
     "batch_event", "E-BAD", "performed_at 2031-01-01T06:00:00 is in the future"),
    ("enum out of range", _add("batch", _batch(status="SHIPPED")), "batch", "B-BAD",
     "status 'SHIPPED' is not an allowed value"),
    ("negative quantity", _add("material_consumption", {**base_plant()["material_consumption"][0],
                                                        "consumption_id": "MC-BAD",
                                                        "quantity": -5}),
     "material_consumption", "MC-BAD", "quantity -5.0 is below the minimum 0"),
    ("impact for sponsor without agreement", _no_agreement_sponsor, "change_impact", "CI-BAD",
     "sponsor 'GAMMA' has no quality agreement"),
    # SQLite keeps a BLOB in a TEXT column: the driver refuses it as text, so the read casts.
    ("sponsor id stored as bytes", _add("batch", _batch(sponsor_id=b"GAMMA")), "batch", "B-BAD",
     "sponsor_id 'GAMMA' has no sponsor"),
]  # fmt: skip


def _assert_reconciled(snapshot: Path) -> dict:
    manifest = json.loads((snapshot / MANIFEST).read_text())
    for table in TABLES:
        counts = manifest["tables"][table.name]
        assert counts["extracted"] == counts["valid"] + counts["quarantined"], table.name
        published = pl.read_parquet(snapshot / table.name / "*/*.parquet", hive_partitioning=True)
        assert published.get_column(table.key).n_unique() == counts["valid"], table.name
        assert sum(counts["published_rows"].values()) == published.height
    return manifest


@pytest.mark.parametrize(
    ("mutate", "table", "key", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_row_is_quarantined_with_reason(
    tmp_path: Path, mutate: Callable[[Plant], None], table: str, key: str, reason: str
) -> None:
    plant = base_plant()
    mutate(plant)
    result = run_etl(write_sqlite(plant, tmp_path / "plant.sqlite"), tmp_path / "wh")
    manifest = _assert_reconciled(result.snapshot)
    quarantine = pl.read_parquet(result.snapshot / QUARANTINE / f"{table}.parquet")
    rows = quarantine.filter(pl.col("key") == key)
    assert rows.height >= 1, quarantine
    assert all(reason in text for text in rows.get_column("reason")), rows.get_column("reason")
    assert json.loads(rows.get_column("values")[0])[TABLES_KEY[table]] == key
    assert manifest["tables"][table]["quarantined"] == quarantine.height
    assert sum(manifest["quarantine_reasons"].values()) >= quarantine.height


TABLES_KEY = {t.name: t.key for t in TABLES}


def test_clean_plant_quarantines_nothing(tmp_path: Path) -> None:
    result = run_etl(write_sqlite(base_plant(), tmp_path / "plant.sqlite"), tmp_path / "wh")
    assert sum(result.quarantined.values()) == 0
    _assert_reconciled(result.snapshot)


def test_text_stored_as_bytes_is_read_as_its_text(tmp_path: Path) -> None:
    """A TEXT, INTEGER or REAL column is read as it is, not cast value by value; a BLOB in
    one (which SQLite keeps) fails that read, and its rows are read cast, as text, as before."""
    source = write_sqlite(base_plant(), tmp_path / "clean.sqlite")
    declared = _declared(open_source(source), TABLES_BY_NAME["batch"])
    assert {declared[c] for c in ("batch_number", "sponsor_id", "mfg_end")} == {"TEXT"}
    assert declared["units_produced"] == "INTEGER"

    plant = base_plant()
    status = _batch()["status"]
    plant["batch"].append(_batch(batch_number=b"ACME-0099", status=status.encode()))
    result = run_etl(write_sqlite(plant, tmp_path / "plant.sqlite"), tmp_path / "wh")
    assert sum(result.quarantined.values()) == 0
    _assert_reconciled(result.snapshot)
    published = pl.read_parquet(result.snapshot / "batch" / "*/*.parquet", hive_partitioning=True)
    row = published.filter(pl.col("batch_id") == "B-BAD").select(
        "batch_number", "status", "sponsor_id"
    )
    assert row.rows() == [("ACME-0099", status, "ACME")]


# The bytes "ACME-", 0xFF, "99": no UTF-8 text; SQLite keeps them as given, text or BLOB.
NOT_UTF8 = "X'41434d452dff3939'"


@pytest.mark.parametrize(
    ("table", "column", "kept_as"),
    [("batch", "batch_number", "TEXT"), ("batch", "batch_number", "BLOB"),
     ("batch", "units_produced", "BLOB"), ("batch_event", "step_name", "TEXT"),
     ("batch_event", "event_id", "TEXT")],
    ids=["TEXT column, text", "TEXT column, BLOB", "INTEGER column, BLOB", "an entry's text",
         "an entry's key"],
)  # fmt: skip
def test_text_that_is_not_utf8_is_quarantined_with_its_reason(
    tmp_path: Path, table: str, column: str, kept_as: str
) -> None:
    """A value whose bytes are no UTF-8 text quarantines its row, with the bytes in the
    reason; the driver refused it, and the whole run failed on it."""
    plant = base_plant()
    plant["batch"].append(_batch())
    plant["batch_event"].append(_event())
    source = write_sqlite(plant, tmp_path / "plant.sqlite")
    key = TABLES_BY_NAME[table].key
    with closing(sqlite3.connect(source)) as connection, connection:
        connection.execute(
            f"UPDATE {table} SET {column} = CAST({NOT_UTF8} AS {kept_as}) WHERE {key} = ?",
            ("B-BAD" if table == "batch" else "E-BAD",),
        )
    result = run_etl(source, tmp_path / "wh")
    manifest = _assert_reconciled(result.snapshot)
    assert {name: count for name, count in result.quarantined.items() if count} == {table: 1}
    (reason,) = pl.read_parquet(result.snapshot / QUARANTINE / f"{table}.parquet")["reason"]
    assert f"{column} is not valid UTF-8 text: 'ACME-\\xff99'" in reason
    assert manifest["quarantine_reasons"][f"{table}: {column} not UTF-8"] == 1


def test_a_csv_export_s_text_that_is_not_utf8_is_quarantined_with_its_reason(
    tmp_path: Path,
) -> None:
    """So in a CSV export too: polars' reader refused the whole file."""
    plant = base_plant()
    plant["batch"].append(_batch(batch_number="ACME-@99"))
    folder = write_csv(plant, tmp_path / "csv")
    export = folder / "batch.csv"
    export.write_bytes(export.read_bytes().replace(b"ACME-@99", b"ACME-\xff99"))
    result = run_etl(folder, tmp_path / "wh")
    _assert_reconciled(result.snapshot)
    assert {name: count for name, count in result.quarantined.items() if count} == {"batch": 1}
    (reason,) = pl.read_parquet(result.snapshot / QUARANTINE / "batch.parquet")["reason"]
    assert reason == "batch_number is not valid UTF-8 text: 'ACME-\\xff99'"


def test_a_column_named_in_other_case_is_read(tmp_path: Path) -> None:
    """SQLite names a result column as its table declares it: a TEXT column read as it is
    still reaches validation under the contract's name."""
    source = write_sqlite(base_plant(), tmp_path / "plant.sqlite")
    with closing(sqlite3.connect(source)) as connection, connection:
        connection.execute("ALTER TABLE batch RENAME COLUMN batch_number TO BATCH_Number")
    assert _declared(open_source(source), TABLES_BY_NAME["batch"])["batch_number"] == "TEXT"
    result = run_etl(source, tmp_path / "wh")
    assert sum(result.quarantined.values()) == 0
    published = pl.read_parquet(result.snapshot / "batch" / "*/*.parquet", hive_partitioning=True)
    expected = {row["batch_id"]: row["batch_number"] for row in base_plant()["batch"]}
    assert dict(zip(published["batch_id"], published["batch_number"], strict=True)) == expected


def test_csv_export_publishes_like_sqlite(tmp_path: Path) -> None:
    from_csv = run_etl(write_csv(base_plant(), tmp_path / "csv"), tmp_path / "wh-csv")
    from_sql = run_etl(write_sqlite(base_plant(), tmp_path / "p.sqlite"), tmp_path / "wh-sql")
    assert from_csv.published == from_sql.published
    assert sum(from_csv.quarantined.values()) == 0


@pytest.mark.parametrize("change", ["missing", "renamed"])
def test_csv_missing_column_fails_and_keeps_current(tmp_path: Path, change: str) -> None:
    warehouse = tmp_path / "wh"
    good = run_etl(write_csv(base_plant(), tmp_path / "good"), warehouse)
    folder = write_csv(base_plant(), tmp_path / "bad")
    events = pl.read_csv(folder / "batch_event.csv", infer_schema=False)
    events = (
        events.drop("verified_by")
        if change == "missing"
        else events.rename({"verified_by": "verifier"})
    )
    events.write_csv(folder / "batch_event.csv")
    with pytest.raises(
        EtlError, match="table batch_event: CSV export is missing column 'verified_by'"
    ):
        run_etl(folder, warehouse)
    assert current_snapshot(warehouse) == good.snapshot.resolve()


def test_empty_source_fails_without_snapshot(tmp_path: Path) -> None:
    empty = {t.name: [] for t in TABLES}
    warehouse = tmp_path / "wh"
    with pytest.raises(EtlError, match="source is empty"):
        run_etl(write_sqlite(empty, tmp_path / "empty.sqlite"), warehouse)
    assert current_snapshot(warehouse) is None
    assert (
        not any((warehouse / "snapshots").glob("*")) if (warehouse / "snapshots").exists() else True
    )


def test_a_table_read_in_rowid_ranges_publishes_as_one_read(tmp_path: Path, monkeypatch) -> None:
    """A table of PARALLEL_READ_MIN_ROWS rows or more is read in rowid ranges on parallel
    connections, and a range holding a value the typed read refuses (a fraction or a BLOB in
    an INTEGER column, text in a REAL one, bytes that are no UTF-8) is read again alone: the
    snapshot is the one read in one query per table, file for file, quarantine and all."""
    from etl import extract
    from tests.etl import assert_as_a_full_build

    plant = base_plant()
    plant["batch"] += [_batch(batch_id=f"B-{n}", units_produced=n) for n in range(12)]
    plant["batch"] += [_batch(units_produced=1.5), _batch(batch_id="B-BLOB")]
    plant["batch_event"] += [_event(event_id=f"E-{n}", seq=n) for n in range(12)]
    plant["batch_event"].append(_event(seq=2.5))
    plant["test_result"].append(
        {**base_plant()["test_result"][0], "test_id": "TEST-BAD", "result_value": "n/a"}
    )
    source = write_sqlite(plant, tmp_path / "plant.sqlite")
    with closing(sqlite3.connect(source)) as connection, connection:
        connection.execute(
            f"UPDATE batch SET units_produced = CAST({NOT_UTF8} AS BLOB) WHERE batch_id = 'B-BLOB'"
        )
        connection.execute(
            f"UPDATE batch_event SET step_name = CAST({NOT_UTF8} AS TEXT) WHERE event_id = 'E-3'"
        )
    whole = run_etl(source, tmp_path / "whole", full=True)
    batch = TABLES_BY_NAME["batch"]
    assert extract.rowid_ranges(open_source(source), batch) == [""]
    monkeypatch.setattr(extract, "PARALLEL_READ_MIN_ROWS", 2)
    assert len(extract.rowid_ranges(open_source(source), batch)) > 4
    ranged = run_etl(source, tmp_path / "ranged", full=True)
    # Files, partition folders, counts, quarantine reasons and quarantined rows.
    assert_as_a_full_build(tmp_path / "ranged", tmp_path / "whole")
    assert ranged.quarantined == whole.quarantined
    assert {name: n for name, n in whole.quarantined.items() if n} == {
        "batch": 2, "batch_event": 2, "test_result": 1,
    }  # fmt: skip
