"""The on-disk layout shared by the publisher (etl/) and the reader (warehouse/).

<data root>/warehouse/                     real warehouse
<data root>/demo/source/plant.sqlite       demo plant system of record
<data root>/demo/warehouse/                demo warehouse (BD demos), apart from real data
<data root>/portal.sqlite                  users, access log, sign-in failures, saved views
<data root>/s3-staging/<bucket>/<prefix>/  a warehouse on S3, as built before its upload
<warehouse>/snapshots/<run_id>/<table>/sponsor_id=<ID>/part-0.parquet
    (batch_event: part-1 holds the entries of open batches; part-0 and part-2 to part-8
    those of settled batches, by a hash of their batch id: etl.publish.SPLIT)
<warehouse>/snapshots/<run_id>/manifest.json
<warehouse>/snapshots/<run_id>/_quarantine/<table>.parquet
<warehouse>/snapshots/<run_id>/_source/<table>.parquet   extracted rows, for incremental runs
    (batch_event: plus batch_event.delta-<run_id>.parquet per incremental run since the base,
    and batch_event.open.parquet, the base's rows of its open batches: etl.incremental.OpenRows)
<warehouse>/snapshots/<run_id>/_state/                  what the next incremental run reuses
    (fingerprints.json: each partition file's rows, so an unchanged one is kept unread)
<warehouse>/current -> snapshots/<run_id>
"""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from warehouse.s3 import Location

SNAPSHOTS = "snapshots"
CURRENT = "current"
MANIFEST = "manifest.json"
QUARANTINE = "_quarantine"
SOURCE_STATE = "_source"
RUN_STATE = "_state"  # what the next incremental run reuses (etl.incremental, etl.publish)
LOCK = ".etl.lock"
PARTITION_KEY = "sponsor_id"


def data_root() -> Path:
    return Path(os.environ.get("PORTAL_DATA_DIR", "data")).resolve()


def real_warehouse() -> Path | str:
    """The real warehouse: PORTAL_WAREHOUSE (a directory, or s3://bucket/prefix), else the data
    root's `warehouse` folder."""
    named = os.environ.get("PORTAL_WAREHOUSE")
    return as_warehouse(named) if named else data_root() / "warehouse"


def as_warehouse(value: str | Path) -> Path | str:
    """A warehouse root as given: "s3://bucket/prefix" stays a string (a Path would fold its
    "//"), anything else is a directory."""
    text = str(value)
    return text if text.startswith("s3://") else Path(text)


def demo_root() -> Path:
    return data_root() / "demo"


def demo_source() -> Path:
    return demo_root() / "source" / "plant.sqlite"


def demo_warehouse() -> Path:
    return demo_root() / "warehouse"


def portal_db() -> Path:
    return data_root() / "portal.sqlite"


def s3_staging(location: Location) -> Path:
    """Where a warehouse on S3 (warehouse/s3.Location) is built before its upload; it keeps
    the last run, which the next incremental run starts from."""
    return data_root() / "s3-staging" / str(location).removeprefix("s3://")


def snapshot_dir(warehouse: Path, run_id: str) -> Path:
    return warehouse / SNAPSHOTS / run_id


def current_snapshot(warehouse: Path) -> Path | None:
    """The resolved directory `current` points at, or None before the first publish."""
    link = warehouse / CURRENT
    if not link.is_symlink() and not link.exists():
        return None
    target = link.resolve()
    return target if (target / MANIFEST).is_file() else None


def partition_dir(snapshot: Path, table: str, sponsor_id: str) -> Path:
    return snapshot / table / f"{PARTITION_KEY}={sponsor_id}"


@functools.cache
def code_version() -> str:
    """The git description of the code that writes a snapshot or a pack, for its manifest:
    asked once per process (a git call, 8-45 ms: a run asked it twice, once while its
    main thread waited)."""
    try:
        result = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=Path(__file__).parent, capture_output=True, text=True, timeout=10, check=True,
        )  # fmt: skip
        return result.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"
