"""Helpers shared by the ETL tests."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

from tests.conftest import AS_OF
from warehouse.contract import TABLES
from warehouse.layout import MANIFEST, QUARANTINE, current_snapshot


def published_files(warehouse: Path) -> dict[str, str]:
    """Every published partition file of the live snapshot -> its sha256, from the bytes."""
    live = current_snapshot(warehouse)
    return {
        path.relative_to(live).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for table in TABLES
        for path in (live / table.name).glob("sponsor_id=*/*.parquet")
    }


def partition_folders(warehouse: Path) -> set[str]:
    """Every partition folder of the live snapshot: one without files names a partition
    to readers too."""
    live = current_snapshot(warehouse)
    return {
        path.relative_to(live).as_posix()
        for table in TABLES
        for path in (live / table.name).glob("sponsor_id=*")
    }


def later_than_every_change(connection: sqlite3.Connection) -> str:
    """An instant after every change in the plant (so the next run's watermark sees it),
    leaving out an updated_at a year past the suite's day or no date-time ("y..." sorts
    after it): quarantined, and no watermark."""
    ahead = f"{AS_OF + timedelta(days=365)}"
    latest = max(
        connection.execute(
            f"SELECT max(updated_at) FROM {t.name} WHERE updated_at <= ?", (ahead,)
        ).fetchone()[0]
        or ""
        for t in TABLES
        if t.name != "decision_receipt"
    )
    return (datetime.fromisoformat(latest) + timedelta(hours=1)).isoformat(timespec="seconds")


def live_facts(warehouse: Path) -> tuple[dict, dict, dict[str, pl.DataFrame]]:
    live = current_snapshot(warehouse)
    manifest = json.loads((live / MANIFEST).read_text())
    quarantine = {
        table.name: pl.read_parquet(live / QUARANTINE / f"{table.name}.parquet") for table in TABLES
    }
    return manifest["tables"], manifest["quarantine_reasons"], quarantine


def masked_values(warehouse: Path) -> list[dict]:
    """The live manifest's masked free-text values (etl.redact)."""
    manifest = json.loads((current_snapshot(warehouse) / MANIFEST).read_text())
    return manifest["masked_free_text"]


def assert_as_a_full_build(warehouse: Path, full: Path) -> None:
    """The live snapshot of `warehouse` is the one of `full` (a full build of the same
    source): its files and partition folders, its counts, quarantine reasons and rows, and
    the masked values it reports."""
    assert published_files(warehouse) == published_files(full)
    assert partition_folders(warehouse) == partition_folders(full)
    assert masked_values(warehouse) == masked_values(full)
    tables, reasons, quarantine = live_facts(warehouse)
    full_tables, full_reasons, full_quarantine = live_facts(full)
    assert tables == full_tables
    assert reasons == full_reasons
    for table in TABLES:
        assert quarantine[table.name].equals(full_quarantine[table.name]), table.name
