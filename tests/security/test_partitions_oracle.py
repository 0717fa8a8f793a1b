"""Every published sponsor partition holds only records its sponsor may see, on every key
and every reference column, with ownership decided from the source (tests/ownership.py),
never from what the job published."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import polars as pl
import pytest

from tests.ownership import OWNED_TABLES, record_sponsors
from warehouse.contract import SITE_PARTITION, TABLES
from warehouse.layout import current_snapshot

# Derived columns that name a sponsor's record (equipment_usage keeps the previous batch only
# when it was the same sponsor's).
DERIVED_REFS = {("equipment_usage", "previous_batch_id"): "batch"}


def _checks() -> list[tuple[str, str, str]]:
    """(table, column, the owned table whose record the column names)."""
    checks = []
    for table in TABLES:
        if table.key != "sponsor_id":
            checks.append((table.name, table.key, table.name))
        # sponsor_id is the partition itself (a Hive directory, checked by the file labels).
        checks += [
            (table.name, c.name, c.ref) for c in table.columns if c.ref and c.name != "sponsor_id"
        ]
    checks += [(t, c, ref) for (t, c), ref in DERIVED_REFS.items()]
    return [check for check in checks if check[2] in OWNED_TABLES]


@pytest.fixture(scope="module")
def visible(demo_plant) -> dict[str, dict[str, frozenset[str]]]:
    return record_sponsors(demo_plant.path)


def _in_source(plant: Path, table: str, column: str) -> int:
    """Values of the column in the source: what the partitions must account for."""
    with sqlite3.connect(f"file:{plant}?mode=ro", uri=True) as db:
        return db.execute(f"SELECT count({column}) FROM {table}").fetchone()[0]


@pytest.mark.parametrize(("table", "column", "names"), _checks(), ids=lambda v: str(v))
def test_no_partition_holds_a_record_its_sponsor_may_not_see(
    demo_warehouse: Path, demo_plant, visible, table: str, column: str, names: str
) -> None:
    snapshot = current_snapshot(demo_warehouse)
    checked = 0
    for folder in sorted((snapshot / table).glob("sponsor_id=*")):
        sponsor = folder.name.removeprefix("sponsor_id=")
        if sponsor == SITE_PARTITION:
            continue
        values = pl.read_parquet(folder, columns=[column]).get_column(column).drop_nulls()
        strangers = sorted(v for v in values.unique() if sponsor not in visible[names].get(v, ()))
        assert not strangers, f"{table}.{column} in {sponsor}'s partition: {strangers[:5]}"
        checked += values.len()
    # A table the demo plant leaves empty (decision_receipt: only the QMS import of portal
    # decisions writes it; tests/etl/test_decision_receipts.py checks it with rows) publishes
    # nothing; any other empty check is a wrong column or a lost table.
    assert checked or not _in_source(demo_plant.path, table, column), (
        f"nothing to check in {table}.{column}"
    )


def test_each_sponsor_partition_of_the_registry_holds_its_own_row_only(
    demo_warehouse, demo_plant
) -> None:
    names = record_sponsors(demo_plant.path)["sponsor"]
    snapshot = current_snapshot(demo_warehouse)
    for folder in sorted((snapshot / "sponsor").glob("sponsor_id=*")):
        sponsor = folder.name.removeprefix("sponsor_id=")
        rows = pl.read_parquet(folder).height
        assert rows == (0 if sponsor == SITE_PARTITION else 1) and (
            sponsor == SITE_PARTITION or sponsor in names
        ), sponsor
