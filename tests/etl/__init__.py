"""Helpers shared by the ETL tests."""

from __future__ import annotations

import hashlib
from pathlib import Path

from warehouse.contract import TABLES
from warehouse.layout import current_snapshot


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
